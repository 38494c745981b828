//! The log lines' time, in the form tracing-subscriber's own clock writes
//! it (`2026-12-07T23:59:01.000123Z`: UTC, microseconds).
//!
//! Its clock turns the time into a date through `write!` for every line:
//! ~2.4k instructions, a sixth of what an audit line costs (one is logged
//! for every write; bench/README.md, "2026-12-08"). The date and time of
//! day change once a second, so each thread keeps that part, written, for
//! the second it is in, and a line only adds its microseconds.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The log layers' timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogClock;

impl FormatTime for LogClock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        // A clock set before 1970 is logged as 1970.
        write_time(w, SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
    }
}

thread_local! {
    /// The second last written on this thread, and its text up to the
    /// fraction's dot (`2026-12-07T23:59:01.`).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// Writes `since_epoch` as the log's time.
fn write_time(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since_epoch.as_secs() || text.is_empty() {
            *second = since_epoch.as_secs();
            *text = second_text(*second);
        }
        w.write_str(text)?;
        let mut fraction = *b"000000Z";
        let mut micros = since_epoch.subsec_micros();
        for digit in fraction[..6].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        w.write_str(std::str::from_utf8(&fraction).expect("ASCII digits"))
    })
}

/// `2026-12-07T23:59:01.`: jiff's RFC 3339 form of a whole second
/// (`…:01Z`) with the zone's letter turned into the fraction's dot.
fn second_text(second: u64) -> String {
    let whole =
        i64::try_from(second).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()).unwrap_or(jiff::Timestamp::MAX);
    let mut text = whole.to_string();
    text.pop();
    text.push('.');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(seconds: u64, micros: u32) -> String {
        let mut out = String::new();
        write_time(&mut out, Duration::new(seconds, micros * 1_000 + 999)).unwrap();
        out
    }

    /// The expected texts are `date -u -d @<seconds>`'s.
    #[test]
    fn writes_utc_with_microseconds_across_seconds_and_days() {
        assert_eq!(written(1_796_687_941, 123), "2026-12-07T23:59:01.000123Z");
        assert_eq!(written(1_796_687_941, 999_999), "2026-12-07T23:59:01.999999Z");
        assert_eq!(written(1_796_687_999, 0), "2026-12-07T23:59:59.000000Z");
        assert_eq!(written(1_796_688_000, 500_000), "2026-12-08T00:00:00.500000Z");
        assert_eq!(written(0, 7), "1970-01-01T00:00:00.000007Z");
        assert_eq!(written(1_796_687_941, 42), "2026-12-07T23:59:01.000042Z");
    }

    /// The same form as tracing-subscriber's own clock, which it stands in
    /// for: only the digits may differ.
    #[test]
    fn has_the_form_of_the_subscribers_clock() {
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut theirs)).unwrap();
        let mut ours = String::new();
        LogClock.format_time(&mut Writer::new(&mut ours)).unwrap();
        let shape = |s: &str| s.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect::<String>();
        assert_eq!(shape(&ours), shape(&theirs));
        assert_eq!(shape(&ours), "9999-99-99T99:99:99.999999Z");
    }
}
