//! A request's writes: a leased connection inside a transaction (or in
//! autocommit for a one-statement request), rolled back at once when the
//! request lets go of it unfinished.

use sqlx::{Database, Executor, MySql, Postgres, Row, Sqlite};

use super::pool::{self, Lease, Pool};
use super::{DbError, ReadOutput, Statement, bound, read_output, text_at};

/// The connection a request's writes run on: an open transaction on one of
/// the engines, or (for a request that is one statement) a plain pooled
/// connection in autocommit, since a single statement is atomic by itself.
pub enum Tx {
    Postgres(Conn<Postgres>),
    MySql(Conn<MySql>),
    Sqlite(Conn<Sqlite>),
}

/// A leased connection, inside a transaction or in autocommit.
pub struct Conn<DB: Database>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Taken only by `drop` and `discard`.
    pub(super) lease: Option<Lease<DB>>,
}

impl<DB: Database> Conn<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    pub(super) async fn begin(pool: &Pool<DB>, begin: &'static str) -> Result<Self, sqlx::Error> {
        let mut conn = Conn::autocommit(pool).await?;
        conn.pooled().begin(begin).await?;
        Ok(conn)
    }

    /// Saves the BEGIN and COMMIT round trips (two of three for a one-row
    /// insert); commit and rollback are no-ops, so it is only for requests
    /// that run exactly one statement and keep its effect.
    pub(super) async fn autocommit(pool: &Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(Conn { lease: Some(pool::lease(pool).await?) })
    }

    pub(super) fn pooled(&mut self) -> &mut pool::Pooled<DB> {
        self.lease.as_mut().expect("a connection is leased until dropped")
    }

    pub(super) async fn end(mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        self.pooled().end(sql).await
    }
}

impl<DB: Database> Drop for Conn<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// A transaction left open (the request was dropped, a `?` left early,
    /// COMMIT failed) is rolled back now, not when the connection is next
    /// taken, so its locks go at once. Without a runtime to do that, the
    /// connection is closed, which rolls back as well.
    fn drop(&mut self) {
        let Some(mut lease) = self.lease.take().filter(|l| l.in_transaction()) else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if lease.end("ROLLBACK").await.is_err() {
                        drop(Lease::take(lease));
                    }
                });
            }
            Err(_) => drop(Lease::take(lease)),
        }
    }
}

impl Tx {
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_read(&mut self, stmt: &Statement) -> Result<ReadOutput, DbError> {
        Ok(per_engine!(self, Tx, t => read_output(&t.pooled().run(|c| bound(stmt).fetch_one(c)).await?)?))
    }

    /// The first column of the first row as bytes, whatever its type
    /// (`bytea`, `text`, `xml`): a media type handler's body.
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_bytes(&mut self, stmt: &Statement) -> Result<Option<Vec<u8>>, DbError> {
        let row = per_engine!(self, Tx, t => t.pooled().run(|c| bound(stmt).fetch_optional(c)).await?
            .map(|r| r.try_get_unchecked::<Option<Vec<u8>>, _>(0)).transpose()?);
        Ok(row.flatten())
    }

    /// Every row of the statement, each column as text (NULL as `None`):
    /// the keys a write returned or selected.
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_text_rows(&mut self, stmt: &Statement) -> Result<Vec<Vec<Option<String>>>, DbError> {
        fn texts<R: Row>(rows: Vec<R>) -> Result<Vec<Vec<Option<String>>>, sqlx::Error>
        where
            Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter().map(|r| (0..r.len()).map(|i| text_at(r, i)).collect()).collect()
        }
        Ok(per_engine!(self, Tx, t => texts(t.pooled().run(|c| bound(stmt).fetch_all(c)).await?)?))
    }

    /// Runs a statement whose first column of the first row is a count.
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn fetch_read_count(&mut self, stmt: &Statement) -> Result<u64, DbError> {
        let count: Option<i64> =
            per_engine!(self, Tx, t => t.pooled().run(|c| bound(stmt).fetch_one(c)).await?.try_get_unchecked(0)?);
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    /// Runs a statement and returns the number of rows it changed.
    #[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(db.query.text = %stmt.sql))]
    pub async fn execute(&mut self, stmt: &Statement) -> Result<u64, DbError> {
        Ok(per_engine!(self, Tx, t => t.pooled().run(|c| bound(stmt).execute(c)).await?.rows_affected()))
    }

    #[tracing::instrument(level = "debug", name = "db.commit", skip_all)]
    pub async fn commit(self) -> Result<(), DbError> {
        Ok(per_engine!(self, Tx, t => t.end("COMMIT").await)?)
    }

    #[tracing::instrument(level = "debug", name = "db.rollback", skip_all)]
    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(per_engine!(self, Tx, t => t.end("ROLLBACK").await)?)
    }

    /// COMMIT when the request's effect is to be kept, ROLLBACK when not
    /// (`Prefer: tx=rollback`).
    pub async fn finish(self, keep: bool) -> Result<(), DbError> {
        if keep { self.commit().await } else { self.rollback().await }
    }
}
