//! `GET /{table}` answered in NDJSON or CSV: streamed, row by row as the
//! database produces them, so an export of millions of rows costs the
//! runtime a few batches of memory (PostgREST builds every answer whole).
//! Such answers are not cached and carry no `Content-Range` (the number of
//! rows is known only at the end); a client that disconnects stops the
//! query (see `db::stream`).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::db::replica::Reads;
use crate::db::{RowStream, Statement, Tx};
use crate::plan::ReadPlan;
use crate::schema::Engine;
use crate::sql::render_rows;

use super::formats::RowWriter;
use super::negotiate::Negotiated;
use super::zone::{Zoned, in_zone};
use crate::error::ApiError;

/// The read streamed in `negotiated`'s representation (NDJSON or CSV),
/// with `Prefer: timezone` applied as for any read.
pub(super) async fn streamed_read(
    reads: Reads<'_>,
    engine: Engine,
    plan: &ReadPlan<'_>,
    zone: Option<&str>,
    negotiated: Negotiated,
) -> Result<Response, ApiError> {
    let mut writer = RowWriter::new(negotiated.representation, plan).expect("only row-by-row answers are streamed");
    let (tx, statement) = open(&reads, engine, plan, zone).await?;
    let mut rows = tx.stream_rows(statement);
    // The first batch is awaited before the head goes out, so that what
    // fails at once (a value the column's type rejects, a permission the
    // database refuses) is answered with its own status and error.
    let mut head = Vec::new();
    let rest = match rows.next_batch().await {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(batch)) => {
            for row in &batch {
                writer.row(row, &mut head)?;
            }
            Some((rows, writer))
        }
        None => {
            writer.finish(&mut head)?;
            None
        }
    };
    // Fused: a finished body may be polled once more (the HTTP server does
    // on some connections), which would make `unfold` panic.
    let body = stream::once(async move { Ok(Bytes::from(head)) }).chain(stream::unfold(rest, next_chunk)).fuse();
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(negotiated.content_type()));
    Ok(response)
}

/// The connection and statement: the time zone set for the transaction
/// (PostgreSQL) or written into the statement (MySQL), else one statement
/// on its own.
async fn open(
    reads: &Reads<'_>,
    engine: Engine,
    plan: &ReadPlan<'_>,
    zone: Option<&str>,
) -> Result<(Tx, Statement), ApiError> {
    let Some(zone) = zone else { return Ok((reads.autocommit().await?, render_rows(plan, engine, None))) };
    Ok(match in_zone(reads, engine, zone).await? {
        Zoned::Transaction(tx) => (tx, render_rows(plan, engine, None)),
        Zoned::Statement => (reads.autocommit().await?, render_rows(plan, engine, Some(zone))),
    })
}

type Rest = Option<(RowStream, RowWriter)>;

/// The body's next chunk: a batch of rows in the representation, then
/// what ends it. A failure after the head went out (the statement timeout
/// struck, the connection was lost) can no longer change the status: the
/// body is cut off, which the client sees as an incomplete answer, never
/// as a complete shorter one.
async fn next_chunk(rest: Rest) -> Option<(Result<Bytes, std::io::Error>, Rest)> {
    let (mut rows, mut writer) = rest?;
    let mut out = Vec::new();
    let written = match rows.next_batch().await {
        Some(Ok(batch)) => batch.iter().try_for_each(|row| writer.row(row, &mut out)).map(|()| true),
        Some(Err(e)) => Err(e.into()),
        None => writer.finish(&mut out).map(|()| false),
    };
    match written {
        Ok(more) => Some((Ok(Bytes::from(out)), more.then_some((rows, writer)))),
        Err(e) => {
            tracing::warn!(code = %e.code, message = %e.message, "a streamed read failed after its first rows; cutting the answer off");
            Some((Err(std::io::Error::other(e.message)), None))
        }
    }
}
