//! The text log's field formatter: the text `DefaultFields` writes, with
//! the plain cases written directly.
//!
//! `DefaultFields` writes every field through `write!("{}{}{:?}", name,
//! "=", value)`, ~1k instructions a field; an audit line (one for every
//! write) has eight, ~9k of the ~14k the line cost (bench/README.md,
//! "2026-12-08"). Here a string that needs no escaping, an integer or a
//! boolean is written as it is, and any other value with one `{:?}`: the
//! same text. What `DefaultFields` treats apart (the message, `r#` names,
//! errors, and every field when the log has colours) is handed to its own
//! visitor; `log.` fields (from the `log` crate's records) are left out,
//! as it leaves them.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// The text log layer's field formatter.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFields;

impl<'a> MakeVisitor<Writer<'a>> for LogFields {
    type Visitor = LogVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> LogVisitor<'a> {
        LogVisitor { writer, is_empty: true, result: Ok(()) }
    }
}

/// Writes one event's or span's fields.
pub struct LogVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl LogVisitor<'_> {
    /// Whether `field` is written here rather than by `DefaultFields`.
    fn is_plain(&self, field: &Field) -> bool {
        let name = field.name();
        self.result.is_ok() && !self.writer.has_ansi_escapes() && name != "message" && !name.starts_with("r#")
    }

    /// ` name=`: what precedes a value.
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.is_empty) {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        self.result = self.name(field).and_then(|()| value(&mut self.writer));
    }

    /// A number or boolean: `text` is its `{:?}`.
    fn record_scalar(&mut self, field: &Field, value: impl fmt::Debug, text: &str) {
        if is_log_metadata(field) {
            return;
        }
        if !self.is_plain(field) {
            return self.by_default(|v| v.record_debug(field, &value));
        }
        self.write(field, |w| w.write_str(text));
    }

    /// The field as `DefaultFields` writes it, by its own visitor.
    fn by_default(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        self.is_empty = false;
    }
}

/// `log.` fields are the `log` crate's metadata, already on the line.
fn is_log_metadata(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl Visit for LogVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if is_log_metadata(field) {
            return;
        }
        if !self.is_plain(field) {
            return self.by_default(|v| v.record_str(field, value));
        }
        // `{:?}` of a string escapes only `"`, `\` and what is not
        // printable ASCII.
        if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
            self.write(field, |w| {
                w.write_char('"')?;
                w.write_str(value)?;
                w.write_char('"')
            });
        } else {
            self.write(field, |w| write!(w, "{value:?}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_scalar(field, value, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_scalar(field, value, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_scalar(field, value, if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !is_log_metadata(field) {
            self.by_default(|v| v.record_error(field, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if is_log_metadata(field) {
            return;
        }
        if !self.is_plain(field) {
            return self.by_default(|v| v.record_debug(field, value));
        }
        self.write(field, |w| write!(w, "{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for LogVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for LogVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::format::DefaultFields;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::span_fields::tests::Lines;

    #[derive(Debug)]
    struct Shape {
        _sides: u8,
    }

    fn events() {
        let error = std::io::Error::other("disk \"full\"");
        let span = tracing::info_span!("request", id = %"abc-1", method = "GET", n = 3u64);
        span.in_scope(|| {
            tracing::info!(
                target: "audit",
                request_id = %"abc-1",
                principal = Some("bench"),
                role = Option::<&str>::None,
                odd = "quote \" back\\slash tab\t é ✓ \u{7f}",
                empty = "",
                status = 201u16,
                rows = Some(1u64),
                delta = -5i64,
                ok = true,
                ratio = 0.25f64,
                big = u128::MAX,
                shape = ?Shape { _sides: 3 },
                r#type = "raw",
                error = &error as &(dyn std::error::Error + 'static),
                "audit {}", 7
            );
            tracing::warn!("only \"a\" message");
            tracing::warn!(message = "a str message", after = "x");
            tracing::error!(first = 1, "then the message");
        });
    }

    /// The lines `events` gives with `fields` as the log's field formatter.
    fn lines<N>(fields: N, ansi: bool) -> String
    where
        N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(lines.clone())
            .with_ansi(ansi)
            .without_time()
            .fmt_fields(fields);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), events);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn writes_what_the_default_formatter_writes() {
        for ansi in [false, true] {
            let ours = lines(LogFields, ansi);
            assert_eq!(ours, lines(DefaultFields::new(), ansi), "colours: {ansi}");
            assert_eq!(ours.lines().count(), 4);
        }
        let plain = lines(LogFields, false);
        assert!(plain.contains("principal=\"bench\" odd=\"quote \\\" back\\\\slash tab\\t é ✓ \\u{7f}\""), "{plain}");
        assert!(plain.contains("status=201 rows=1 delta=-5 ok=true ratio=0.25"), "{plain}");
        assert!(plain.contains("request{id=abc-1 method=\"GET\" n=3}"), "{plain}");
    }
}
