//! The request span's fields, written once as the span opens, in the text
//! the log layer's field formatter would give them.
//!
//! The log layer formats a span's fields when the span opens, so that each
//! log line inside it can show them. Every request opens one span, and
//! formatting its three fields through `fmt::Debug` and the formatter's
//! visitor cost ~2.7k instructions a request in text and ~5.9k in JSON, for
//! lines that are almost never written (bench/README.md, "2026-12-07,
//! fifth"). Those fields are plain text already (an id of letters, digits
//! and `-_.:`, a method, a path), so this layer, under the log layer, writes
//! them itself; the log layer finds them written and leaves them. Any other
//! span, or a request span whose fields are not all text, is left to the
//! log layer.

use std::marker::PhantomData;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::text_fields::LogFields;

/// A log layer's field formatter, for fields whose values are text.
pub trait TextFields: Send + Sync + 'static {
    /// Appends the field `name` with the text `value` to `fields`, as the
    /// formatter writes it after the fields already there.
    fn push(fields: &mut String, name: &str, value: &str);
    /// Ends the fields (at least one was pushed).
    fn close(fields: &mut String);
}

/// `id=7f… method=GET path=/orders`: what `LogFields` (and `DefaultFields`)
/// write for values recorded with `%` when the log has no colours.
impl TextFields for LogFields {
    fn push(fields: &mut String, name: &str, value: &str) {
        if !fields.is_empty() {
            fields.push(' ');
        }
        fields.push_str(name);
        fields.push('=');
        fields.push_str(value);
    }

    fn close(_: &mut String) {}
}

/// `{"id":"7f…","method":"GET","path":"/orders"}`: a JSON object, as
/// `JsonFields` writes one (the JSON log line reads it back).
impl TextFields for JsonFields {
    fn push(fields: &mut String, name: &str, value: &str) {
        fields.push(if fields.is_empty() { '{' } else { ',' });
        push_json_string(fields, name);
        fields.push(':');
        push_json_string(fields, value);
    }

    fn close(fields: &mut String) {
        fields.push('}');
    }
}

fn push_json_string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).expect("a string serializes"));
    }
}

/// Writes the fields of the spans `is_written_here` picks for the log layer
/// above it, whose field formatter is `N`.
pub struct WrittenFields<N> {
    is_written_here: fn(&Metadata<'_>) -> bool,
    format: PhantomData<fn(N)>,
}

impl<N> WrittenFields<N> {
    pub fn new(is_written_here: fn(&Metadata<'_>) -> bool) -> WrittenFields<N> {
        WrittenFields { is_written_here, format: PhantomData }
    }
}

impl<S, N> Layer<S> for WrittenFields<N>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: TextFields,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !(self.is_written_here)(attrs.metadata()) {
            return;
        }
        let mut visitor = Writer::<N> { fields: String::with_capacity(96), plain: true, format: PhantomData };
        attrs.record(&mut visitor);
        if !visitor.plain || visitor.fields.is_empty() {
            return;
        }
        N::close(&mut visitor.fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(FormattedFields::<N>::new(visitor.fields));
        }
    }
}

struct Writer<N> {
    fields: String,
    /// Every field so far was text.
    plain: bool,
    format: PhantomData<fn(N)>,
}

impl<N: TextFields> Visit for Writer<N> {
    fn record_str(&mut self, field: &Field, value: &str) {
        N::push(&mut self.fields, field.name(), value);
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {
        self.plain = false;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    pub(crate) struct Lines(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// A log layer without colours or time, writing to `lines`.
    fn log<S>(lines: &Lines) -> tracing_subscriber::fmt::Layer<S, LogFields, Untimed, Lines> {
        tracing_subscriber::fmt::layer()
            .with_writer(lines.clone())
            .with_ansi(false)
            .without_time()
            .fmt_fields(LogFields)
    }

    type Untimed = tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, ()>;

    fn any_request(meta: &Metadata<'_>) -> bool {
        meta.name() == "request"
    }

    fn inside_a_request(path: &str, written_here: bool) {
        let span = if written_here {
            tracing::info_span!("request", id = "abc-1", method = "GET", path)
        } else {
            tracing::info_span!("request", id = %"abc-1", method = %"GET", path = %path)
        };
        span.in_scope(|| tracing::warn!(rows = 3, "a line"));
    }

    /// The log line of an event inside a request span, its fields written by
    /// this layer or (as before it) by the log layer from `%` values.
    fn line(json: bool, path: &str, written_here: bool) -> String {
        let lines = Lines::default();
        if json {
            let subscriber = tracing_subscriber::registry()
                .with(WrittenFields::<JsonFields>::new(any_request))
                .with(log(&lines).json());
            tracing::subscriber::with_default(subscriber, || inside_a_request(path, written_here));
        } else {
            let subscriber =
                tracing_subscriber::registry().with(WrittenFields::<LogFields>::new(any_request)).with(log(&lines));
            tracing::subscriber::with_default(subscriber, || inside_a_request(path, written_here));
        }
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_text_line_shows_the_request_fields_as_the_log_layer_wrote_them() {
        let line = line(false, "/orders", true);
        assert!(line.contains("request{id=abc-1 method=GET path=/orders}: "), "{line}");
        assert_eq!(line, self::line(false, "/orders", false));
    }

    #[test]
    fn a_json_line_shows_the_request_fields_as_the_log_layer_wrote_them() {
        for path in ["/orders", "/odd\"path\\"] {
            let line = line(true, path, true);
            let parsed: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
            assert_eq!(
                parsed["span"],
                serde_json::json!({"id": "abc-1", "method": "GET", "path": path, "name": "request"})
            );
            assert_eq!(parsed["fields"]["rows"], 3);
            assert_eq!(line, self::line(true, path, false));
        }
    }

    #[test]
    fn fields_that_are_not_all_text_are_left_to_the_log_layer() {
        let lines = Lines::default();
        let subscriber =
            tracing_subscriber::registry().with(WrittenFields::<LogFields>::new(any_request)).with(log(&lines));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request", id = "abc", status = 200).in_scope(|| tracing::warn!("x"));
            tracing::info_span!("other", id = "abc").in_scope(|| tracing::warn!("y"));
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("request{id=\"abc\" status=200}: "), "{text}");
        assert!(text.contains("other{id=\"abc\"}: "), "{text}");
    }
}
