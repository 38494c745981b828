//! A read streamed as the database produces it (NDJSON and CSV answers):
//! the statement runs in a task of its own on the request's connection and
//! hands its rows over in small batches through a bounded channel, so the
//! runtime holds a few batches whatever the size of the result, and a slow
//! client slows the database down instead of filling memory.
//!
//! When the receiving side goes away (the client disconnected), the task
//! stops reading and closes the connection instead of returning it to the
//! pool: the server, finding its client gone, stops the query, where a
//! connection put back would first have to drain every remaining row.

use futures_util::FutureExt;
use futures_util::stream::{BoxStream, StreamExt};
use sqlx::{Database, Executor, Row};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::tx::Conn;
use super::{DbError, Statement, Tx, bound, text_at};

/// Rows are handed over once a batch holds this many bytes of JSON, or
/// sooner when the database has no next row ready yet.
const BATCH_BYTES: usize = 64 * 1024;
/// Batches in flight between the database task and the response.
const BATCHES_IN_FLIGHT: usize = 4;

/// One result column per row (its JSON text), batch by batch; an error ends
/// the stream.
pub struct RowStream {
    receiver: mpsc::Receiver<Result<Vec<String>, DbError>>,
}

impl RowStream {
    /// The next batch; `None` once every row was handed over and the
    /// transaction, if any, committed.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<String>, DbError>> {
        self.receiver.recv().await
    }
}

/// How the rows' task ended.
enum Sent {
    /// Every row went out.
    All,
    /// The receiver went away first.
    Abandoned,
}

type Batches = mpsc::Sender<Result<Vec<String>, DbError>>;

impl Tx {
    /// Runs `stmt` (a statement whose first column is each row's JSON
    /// text) on this connection in a task of its own, ending the
    /// transaction when every row is out.
    pub fn stream_rows(self, stmt: Statement) -> RowStream {
        let (sender, receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
        let span = tracing::debug_span!("db.query", db.query.text = %stmt.sql);
        tokio::spawn(self.send_rows(stmt, sender).instrument(span));
        RowStream { receiver }
    }

    async fn send_rows(mut self, stmt: Statement, sender: Batches) {
        let sent = per_engine!(&mut self, Tx, t => {
            t.pooled().run(|c| send_batches(bound(&stmt).fetch(c), &sender)).await
        });
        match sent {
            Ok(Sent::All) => {
                if let Err(e) = self.commit().await {
                    let _ = sender.send(Err(e)).await;
                }
            }
            Ok(Sent::Abandoned) => {
                tracing::debug!("the client went away during a streamed read; closing its database connection");
                per_engine!(self, Tx, t => t.discard());
            }
            // Dropping the transaction rolls it back.
            Err(e) => {
                let _ = sender.send(Err(e.into())).await;
            }
        }
    }
}

/// Reads `rows` into batches and sends each, until the rows end or the
/// receiver is gone; a partial batch goes out as soon as the database makes
/// the runtime wait for the next row.
async fn send_batches<R: Row>(
    mut rows: BoxStream<'_, Result<R, sqlx::Error>>,
    sender: &Batches,
) -> Result<Sent, sqlx::Error>
where
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let mut batch = Vec::new();
    let mut bytes = 0;
    loop {
        let next = match rows.next().now_or_never() {
            Some(next) => next,
            None => {
                if !batch.is_empty() && sender.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                    return Ok(Sent::Abandoned);
                }
                bytes = 0;
                tokio::select! {
                    next = rows.next() => next,
                    () = sender.closed() => return Ok(Sent::Abandoned),
                }
            }
        };
        let Some(row) = next.transpose()? else { break };
        let text = text_at(&row, 0)?.unwrap_or_else(|| "null".into());
        bytes += text.len();
        batch.push(text);
        if bytes >= BATCH_BYTES {
            if sender.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                return Ok(Sent::Abandoned);
            }
            bytes = 0;
        }
    }
    if !batch.is_empty() && sender.send(Ok(batch)).await.is_err() {
        return Ok(Sent::Abandoned);
    }
    Ok(Sent::All)
}

impl<DB: Database> Conn<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Closes the connection instead of returning it to the pool: the
    /// statement on it was left unfinished.
    pub(super) fn discard(mut self) {
        if let Some(lease) = self.lease.take() {
            drop(super::pool::Lease::take(lease));
        }
    }
}
