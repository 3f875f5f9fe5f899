//! The standard Prometheus process metrics (`process_*`, as the Go and
//! Python clients name them), read from `/proc/self` when `/metrics` is
//! scraped: a sidecar's cost is judged by its memory, CPU and descriptors.
//! Elsewhere than Linux they are simply absent.

use std::sync::OnceLock;

/// Sets the gauges from `/proc/self`; a file that cannot be read leaves
/// its gauges as they were.
pub fn refresh() {
    if let Some(stat) = read_stat() {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        metrics::gauge!("process_cpu_seconds_total").set((stat.utime + stat.stime) as f64 / ticks);
        metrics::gauge!("process_resident_memory_bytes").set(stat.rss_pages as f64 * page);
        metrics::gauge!("process_virtual_memory_bytes").set(stat.vsize as f64);
        if let Some(boot) = boot_time() {
            metrics::gauge!("process_start_time_seconds").set(boot as f64 + stat.start_ticks as f64 / ticks);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
    if let Some(max) = max_fds() {
        metrics::gauge!("process_max_fds").set(max as f64);
    }
}

pub fn describe() {
    use metrics::{describe_gauge, Unit};
    describe_gauge!("process_cpu_seconds_total", Unit::Seconds, "User and system CPU time spent");
    describe_gauge!("process_resident_memory_bytes", Unit::Bytes, "Resident memory size");
    describe_gauge!("process_virtual_memory_bytes", Unit::Bytes, "Virtual memory size");
    describe_gauge!("process_start_time_seconds", Unit::Seconds, "Start time since the Unix epoch");
    describe_gauge!("process_open_fds", "Open file descriptors");
    describe_gauge!("process_max_fds", "Limit of open file descriptors");
}

struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `/proc/<pid>/stat` (proc(5)): the fields after the command name, which
/// is in parentheses and may itself hold spaces or parentheses.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, after) = text.rsplit_once(')')?;
    // after[0] is field 3 (state): field n is after[n - 3].
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// Boot time (Unix seconds), read once: it does not change.
fn boot_time() -> Option<u64> {
    static BOOT: OnceLock<Option<u64>> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        text.lines().find_map(|line| line.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
    })
}

fn max_fds() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let text = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 5 0 123456 9999360 812 18446744073709551615";
        let stat = parse_stat(text).unwrap();
        assert_eq!((stat.utime, stat.stime), (250, 75));
        assert_eq!(stat.start_ticks, 123456);
        assert_eq!(stat.vsize, 9999360);
        assert_eq!(stat.rss_pages, 812);
    }

    #[test]
    fn this_process_is_readable() {
        let stat = read_stat().expect("/proc/self/stat");
        assert!(stat.rss_pages > 0);
        assert!(boot_time().is_some_and(|b| b > 1_000_000_000));
        assert!(max_fds().is_some_and(|m| m > 0));
    }
}
