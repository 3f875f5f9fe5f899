//! The log subscriber, installed once by `cli::main` before any command
//! runs: the `--log` filter and the format, `text` (tracing's own lines)
//! or `json`. What each event says is left to the code that logs it.

use crate::config::LogFormat;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the process's subscriber: `filter` (EnvFilter syntax;
/// `RUST_LOG` wins) and `format`, on stderr.
pub fn install(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).init(),
    }
}

/// One JSON object per event and line. Not tracing-subscriber's `json()`:
/// that one names the time `timestamp`, and log shippers look for `time`.
/// The event's fields sit at the top level beside `time`, `level`,
/// `target` and `message`; a field spelled like one of those four cannot
/// replace it (it is kept as `fields.<name>`).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert("time".into(), humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string().into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), fields.0.remove("message").unwrap_or_else(|| "".into()));
        for (name, value) in fields.0 {
            let name = if line.contains_key(&name) { format!("fields.{name}") } else { name };
            line.insert(name, value);
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// An event's fields as JSON values: numbers and booleans as such,
/// everything else (`%display`, `?debug`, strings) as its text.
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    /// An error with its causes, as the text format's `%Causes` would say it.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), crate::error::Causes(value).to_string().into());
    }
}

/// The config file's `log_format`, read before the subscriber exists (so
/// before the config is loaded for real); `None` when the file cannot be
/// read or says nothing usable: the real load then reports what is wrong.
pub fn file_format(path: &std::path::Path) -> Option<LogFormat> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    serde_yaml::from_value(doc.get("log_format")?.clone()).ok()
}
