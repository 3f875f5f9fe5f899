//! The announcement log: every write is also appended to a Redis Stream
//! (`<prefix>revocations:log`), in the same `MULTI` as the write itself on
//! a single server or Sentinel master, so a write that landed is always
//! logged. Pub/sub is the fast path (milliseconds) but gives no loss signal:
//! a `PUBLISH` that failed on the writer, or one stuck behind a slow
//! fan-out, reaches nobody and nobody knows. Each replica therefore reads
//! the log from the last entry it applied on every heartbeat and on every
//! re-subscription, and applies what it finds; a lost or delayed
//! announcement is made good within one heartbeat round.
//!
//! Bounded: `MAXLEN ~` [`MAX_ENTRIES`] (Redis keeps at least that many, in
//! whole macro nodes). A replica whose last entry was trimmed away may have
//! missed entries: it is told ([`Batch::gap`]) and empties its cache, as on
//! a lost subscription. Detecting it: trimming removes the oldest entries
//! first and nothing else deletes any, so the last applied entry still
//! being there after the read means nothing after it was trimmed before the
//! read. With no entry applied yet (the log was empty), a log shorter than
//! [`MAX_ENTRIES`] has never been trimmed.

use super::StoreError;
use redis::Value;

/// Entries kept: a replica reading every heartbeat misses some only when
/// more revocations than this are made fleet-wide within one heartbeat (or
/// while it is away). About 200 bytes each.
pub const MAX_ENTRIES: usize = 10_000;

/// Entries per read; a full batch is followed by another read at once.
pub const READ_BATCH: usize = 500;

/// The one field of an entry: the announced [`super::Change`] as JSON, the
/// same bytes as the pub/sub message.
const FIELD: &str = "change";

/// A stream entry id (`<ms>-<seq>`), as Redis gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogId(String);

impl LogId {
    /// Before every entry: what an empty log's tail is.
    pub fn start() -> Self {
        LogId("0-0".into())
    }

    fn is_start(&self) -> bool {
        self.0 == "0-0"
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An entry's id and its `change` field (absent in a foreign entry).
pub type Entry = (LogId, Option<Vec<u8>>);

/// Entries read after an id, in log order.
#[derive(Debug, Default)]
pub struct Batch {
    pub entries: Vec<Entry>,
    /// Entries after the id read from may have been trimmed unread.
    pub gap: bool,
}

/// `XADD <log> MAXLEN ~ N * change <message>`.
pub fn append(log: &str, message: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(log).arg("MAXLEN").arg("~").arg(MAX_ENTRIES).arg("*").arg(FIELD).arg(message);
    cmd
}

/// The id of the log's last entry (`XREVRANGE <log> + - COUNT 1`).
pub fn tail(log: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(log).arg("+").arg("-").arg("COUNT").arg(1);
    cmd
}

pub fn parse_tail(reply: Value) -> Result<LogId, StoreError> {
    Ok(entries(reply)?.into_iter().next().map_or_else(LogId::start, |(id, _)| id))
}

/// Up to [`READ_BATCH`] entries after `after` (`XRANGE <log> (<after> +`,
/// non-blocking), then the gap check: `XRANGE <log> <after> <after>` (still
/// there?) or, from the start, `XLEN` (ever trimmed?). Run in this order
/// in one pipeline: the check must see the log no younger than the read.
pub fn read_after(log: &str, after: &LogId) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("XRANGE").arg(log).arg(format!("({after}")).arg("+").arg("COUNT").arg(READ_BATCH);
    if after.is_start() {
        pipe.cmd("XLEN").arg(log);
    } else {
        pipe.cmd("XRANGE").arg(log).arg(after.to_string()).arg(after.to_string());
    }
    pipe
}

pub fn parse_read(reply: (Value, Value), after: &LogId) -> Result<Batch, StoreError> {
    let (read, check) = reply;
    let entries = entries(read)?;
    let gap = match (after.is_start(), check) {
        (true, Value::Int(len)) => usize::try_from(len).unwrap_or(0) >= MAX_ENTRIES,
        (false, Value::Array(anchor)) => anchor.is_empty(),
        (_, other) => return Err(malformed(&other)),
    };
    Ok(Batch { entries, gap })
}

/// An `XRANGE` reply: `[[id, [field, value, …]], …]`.
fn entries(reply: Value) -> Result<Vec<Entry>, StoreError> {
    let Value::Array(items) = reply else { return Err(malformed(&reply)) };
    items
        .into_iter()
        .map(|item| {
            let (id, fields): (String, Vec<Vec<u8>>) =
                redis::from_redis_value(item).map_err(|e| StoreError::command(e.into()))?;
            let change = fields.chunks(2).find(|kv| kv.len() == 2 && kv[0] == FIELD.as_bytes()).map(|kv| kv[1].clone());
            Ok((LogId(id), change))
        })
        .collect()
}

fn malformed(reply: &Value) -> StoreError {
    let message = format!("unexpected reply reading the revocation log: {reply:?}");
    StoreError::command(redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "revocation log", message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, change: &str) -> Value {
        Value::Array(vec![bulk(id), Value::Array(vec![bulk(FIELD), bulk(change)])])
    }

    #[test]
    fn a_read_returns_entries_in_order_and_no_gap_while_the_anchor_is_there() {
        let after = LogId("5-0".into());
        let read = Value::Array(vec![entry("6-0", "{a}"), entry("7-1", "{b}")]);
        let batch = parse_read((read, Value::Array(vec![entry("5-0", "{x}")])), &after).unwrap();
        let ids: Vec<String> = batch.entries.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["6-0", "7-1"]);
        assert_eq!(batch.entries[1].1.as_deref(), Some(&b"{b}"[..]));
        assert!(!batch.gap);
    }

    #[test]
    fn a_trimmed_anchor_is_a_gap() {
        let after = LogId("5-0".into());
        let batch = parse_read((Value::Array(vec![entry("9-0", "{a}")]), Value::Array(vec![])), &after).unwrap();
        assert!(batch.gap);
    }

    #[test]
    fn from_the_start_a_log_that_may_have_been_trimmed_is_a_gap() {
        let start = LogId::start();
        assert!(!parse_read((Value::Array(vec![]), Value::Int(3)), &start).unwrap().gap);
        let full = Value::Int(MAX_ENTRIES as i64);
        assert!(parse_read((Value::Array(vec![]), full), &start).unwrap().gap);
    }

    #[test]
    fn an_empty_log_has_the_start_as_its_tail_and_a_foreign_entry_no_change() {
        assert_eq!(parse_tail(Value::Array(vec![])).unwrap(), LogId::start());
        let foreign = Value::Array(vec![Value::Array(vec![bulk("3-0"), Value::Array(vec![bulk("x"), bulk("y")])])]);
        let batch = parse_read((foreign, Value::Int(1)), &LogId::start()).unwrap();
        assert_eq!(batch.entries, vec![(LogId("3-0".into()), None)]);
        assert!(parse_read((Value::Nil, Value::Int(1)), &LogId::start()).is_err());
    }
}
