//! The row-by-row representations, NDJSON and CSV, written from each row's
//! JSON object: one writer for a streamed read (rows as the database sends
//! them) and for an answer held whole (a function's result, HEAD).

use axum::http::StatusCode;
use serde_json::value::RawValue;

use crate::plan::{PlannedItem, ReadPlan};

use super::negotiate::Representation;
use crate::error::ApiError;

/// Turns JSON objects, one per row, into the body of an NDJSON or CSV
/// answer.
pub(super) enum RowWriter {
    /// `application/x-ndjson`: each object on a line of its own.
    Ndjson,
    /// `text/csv`: a header line of the labels, then one line per row;
    /// lines are separated, not terminated, as in PostgREST's CSV.
    Csv(Box<CsvRows>),
}

pub(super) struct CsvRows {
    /// The header: the first row's keys, or the plan's labels when there
    /// is no row.
    labels: Option<Vec<String>>,
    labels_when_empty: Vec<String>,
    writer: csv::Writer<Line>,
}

/// What the CSV writer writes into: one line at a time, taken out after
/// each (the writer keeps its sink, so the line lives behind a cell).
#[derive(Default)]
struct Line(std::cell::RefCell<Vec<u8>>);

impl std::io::Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RowWriter {
    /// The writer for `representation`, `None` for the JSON ones.
    pub fn new(representation: Representation, plan: &ReadPlan) -> Option<RowWriter> {
        match representation {
            Representation::Ndjson => Some(RowWriter::Ndjson),
            Representation::Csv => Some(RowWriter::Csv(Box::new(CsvRows::new(top_level_labels(plan))))),
            Representation::Json | Representation::SingleObject => None,
        }
    }

    /// Appends one row, the text of its JSON object.
    pub fn row(&mut self, object: &str, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            RowWriter::Ndjson => {
                // A stored `json` value keeps the line breaks it was written
                // with; a line must hold the whole object.
                if object.contains(['\n', '\r']) {
                    let value: serde_json::Value = serde_json::from_str(object).map_err(unreadable)?;
                    out.extend_from_slice(value.to_string().as_bytes());
                } else {
                    out.extend_from_slice(object.as_bytes());
                }
                out.push(b'\n');
                Ok(())
            }
            RowWriter::Csv(csv) => csv.row(object, out),
        }
    }

    /// What ends the body: for CSV without rows, the header line.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            RowWriter::Ndjson => Ok(()),
            RowWriter::Csv(csv) if csv.labels.is_none() => {
                write_line(&mut csv.writer, csv.labels_when_empty.iter().map(String::as_str), out)?;
                out.push(b'\n');
                Ok(())
            }
            RowWriter::Csv(_) => Ok(()),
        }
    }

    /// The whole body from a JSON array of objects (an answer the database
    /// built whole).
    pub fn convert(mut self, array: &str) -> Result<Vec<u8>, ApiError> {
        let rows: Vec<&RawValue> = serde_json::from_str(array).map_err(unreadable)?;
        let mut out = Vec::with_capacity(array.len());
        for row in rows {
            self.row(row.get(), &mut out)?;
        }
        self.finish(&mut out)?;
        Ok(out)
    }
}

impl CsvRows {
    fn new(labels_when_empty: Vec<String>) -> CsvRows {
        let writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Line::default());
        CsvRows { labels: None, labels_when_empty, writer }
    }

    fn row(&mut self, object: &str, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(object).map_err(unreadable)?;
        let CsvRows { labels, writer, .. } = self;
        if labels.is_none() {
            let keys: Vec<String> = row.keys().cloned().collect();
            write_line(writer, keys.iter().map(String::as_str), out)?;
            *labels = Some(keys);
        }
        // After the header, or after the row before.
        out.push(b'\n');
        let values: Vec<std::borrow::Cow<str>> = labels
            .iter()
            .flatten()
            .map(|l| match row.get(l) {
                None | Some(serde_json::Value::Null) => "".into(),
                Some(serde_json::Value::String(s)) => s.as_str().into(),
                Some(other) => other.to_string().into(),
            })
            .collect();
        write_line(writer, values.iter().map(|v| v.as_ref()), out)
    }
}

/// One CSV line, without its line break.
fn write_line<'a>(
    writer: &mut csv::Writer<Line>,
    fields: impl Iterator<Item = &'a str>,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let failed = |e: csv::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Could not write CSV").details(e.to_string())
    };
    writer.write_record(fields).map_err(failed)?;
    writer.flush().map_err(|e| failed(e.into()))?;
    let mut line = writer.get_ref().0.borrow_mut();
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    out.append(&mut line);
    Ok(())
}

/// The top level's labels, in the order of `select`: the CSV header of an
/// answer without rows.
fn top_level_labels(plan: &ReadPlan) -> Vec<String> {
    plan.items
        .iter()
        .filter_map(|i| match i {
            PlannedItem::Column { label, .. } => Some(label.clone()),
            PlannedItem::Aggregate(a) => Some(a.label.clone()),
            PlannedItem::Embed(e) if !e.spread && !e.hidden => Some(e.label.clone()),
            PlannedItem::Embed(_) => None,
        })
        .collect()
}

fn unreadable(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Could not read a row the database sent")
        .details(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(labels: &[&str]) -> RowWriter {
        RowWriter::Csv(Box::new(CsvRows::new(labels.iter().map(|l| l.to_string()).collect())))
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn csv_lines_are_separated_and_quoted() {
        let body = csv(&["id"]).convert(r#"[{"id": 1, "name": "a, \"b\""}, {"id": 2, "name": null}]"#).unwrap();
        assert_eq!(text(body), "id,name\n1,\"a, \"\"b\"\"\"\n2,");
    }

    #[test]
    fn csv_without_rows_is_the_header_line() {
        assert_eq!(text(csv(&["id", "name"]).convert("[]").unwrap()), "id,name\n");
    }

    #[test]
    fn csv_writes_nested_values_as_json() {
        let body = csv(&[]).convert(r#"[{"tags": ["a", "b"], "owner": {"id": 1}}]"#).unwrap();
        assert_eq!(text(body), "tags,owner\n\"[\"\"a\"\",\"\"b\"\"]\",\"{\"\"id\"\":1}\"");
    }

    #[test]
    fn ndjson_puts_each_object_on_one_line() {
        let body = RowWriter::Ndjson.convert("[{\"a\": 1},\n {\"doc\": {\n  \"b\": 2\n}}]").unwrap();
        assert_eq!(text(body), "{\"a\": 1}\n{\"doc\":{\"b\":2}}\n");
        assert_eq!(text(RowWriter::Ndjson.convert("[]").unwrap()), "");
    }
}
