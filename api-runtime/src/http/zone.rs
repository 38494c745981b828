//! `Prefer: timezone`: where each engine applies it, for the reads that
//! build a page and those that stream it.

use axum::http::StatusCode;

use crate::db::Tx;
use crate::db::replica::Reads;
use crate::schema::Engine;
use crate::sql::{render_set_time_zone, render_time_zone_check};

use crate::error::ApiError;

/// Where `Prefer: timezone` takes effect.
pub(super) enum Zoned {
    /// In this transaction, which has the zone set (PostgreSQL).
    Transaction(Tx),
    /// In the statement, written for the zone (MySQL).
    Statement,
}

/// `Prefer: timezone` applied as PostgREST applies it: PostgreSQL writes
/// timestamptz values in the transaction's zone (an unknown zone fails
/// there with 22023); MySQL converts its TIMESTAMP values in the
/// statement, once the server has shown it knows the zone. SQLite stores
/// no zones.
pub(super) async fn in_zone(reads: &Reads<'_>, engine: Engine, zone: &str) -> Result<Zoned, ApiError> {
    match engine {
        Engine::Postgres => {
            let mut tx = reads.begin().await?;
            tx.fetch_text_rows(&render_set_time_zone(zone)).await?;
            Ok(Zoned::Transaction(tx))
        }
        Engine::MySql => {
            if reads.fetch_text(&render_time_zone_check(zone)).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "22023",
                    format!("invalid value for parameter \"TimeZone\": \"{zone}\""),
                )
                .hint("Use an offset such as +05:30, or a zone name the server knows (MySQL/MariaDB know names once their time zone tables are loaded with mysql_tzinfo_to_sql)."));
            }
            Ok(Zoned::Statement)
        }
        Engine::Sqlite => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "DBAPI100", "Prefer: timezone is not supported on SQLite")
                .hint("SQLite stores timestamps as written, without a zone: convert them on the client."))
        }
    }
}
