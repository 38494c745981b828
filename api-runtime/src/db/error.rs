//! What a failed statement means for the HTTP layer, from either driver:
//! the database is unavailable (503), it refused the statement (with the
//! SQLSTATE PostgreSQL would use, on every engine), or something else.

/// A failure while running a statement, classified for the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had (database down, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The connection closed under the statement (the server restarted,
    /// failed over, or ended the session): a read may be run again on
    /// another connection.
    #[error("database connection lost: {0}")]
    Lost(String),
    /// The database refused the statement; `code` is its SQLSTATE (or
    /// MySQL error number).
    #[error("{message}")]
    Rejected { code: String, message: String, detail: Option<String>, hint: Option<String> },
    #[error("unexpected database error: {0}")]
    Other(String),
}

/// Whether the error says the connection under it is gone, so that what
/// ran on it may be run again elsewhere and its siblings are suspect.
pub fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            lost_sqlstate(&code) || (code == "HY000" && is_connection_message(d.message()))
        }
        _ => false,
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if connection_lost(&e) {
            return DbError::Lost(match &e {
                sqlx::Error::Database(d) => d.message().to_string(),
                other => other.to_string(),
            });
        }
        match e {
            sqlx::Error::PoolTimedOut => {
                DbError::Unavailable("timed out waiting for a free database connection".into())
            }
            sqlx::Error::PoolClosed => DbError::Unavailable("the connection pool is closed".into()),
            sqlx::Error::Tls(e) => DbError::Unavailable(e.to_string()),
            sqlx::Error::Database(d) => {
                if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    return postgres_error(pg.code(), pg.message(), pg.detail(), pg.constraint(), pg.hint());
                }
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                let unavailable = unavailable_sqlstate(&code);
                // SQLite: busy or locked past the busy timeout.
                let sqlite_busy = d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && matches!(code.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6));
                if unavailable || sqlite_busy {
                    return DbError::Unavailable(d.message().to_string());
                }
                rejected(d.as_ref(), code)
            }
            other => DbError::Other(other.to_string()),
        }
    }
}

/// A connection that went away (class 08, 57P0x) or could not be made
/// (3D000 no such database, 28xxx authentication, 53300 too many
/// connections): the database is unavailable, not the request wrong.
fn unavailable_sqlstate(code: &str) -> bool {
    lost_sqlstate(code) || ["3D000", "28", "53300"].iter().any(|p| code.starts_with(p))
}

/// The server ended the session: connection failures (class 08) and
/// administrator shutdowns (57P01 terminated, 57P02 crash, 57P03 starting).
fn lost_sqlstate(code: &str) -> bool {
    ["08", "57P0"].iter().any(|p| code.starts_with(p))
}

impl DbError {
    /// The database cancelled a statement that ran past its time
    /// (`database.statementTimeoutMs`), whatever the engine calls that.
    pub(crate) fn statement_timeout(reason: &str) -> Self {
        DbError::Rejected {
            code: "57014".into(),
            message: "The statement took longer than the database allows and was cancelled".into(),
            detail: Some(reason.to_string()),
            hint: Some("Narrow the request (filters, a smaller limit) or raise database.statementTimeoutMs.".into()),
        }
    }

    /// The same failure met while getting a connection, not while using
    /// one: nothing ran, so there is nothing a retry would repeat, and a
    /// database that cannot be reached is unavailable.
    pub(crate) fn while_connecting(self) -> Self {
        match self {
            DbError::Lost(reason) => DbError::Unavailable(reason),
            other => other,
        }
    }
}

/// A PostgreSQL error, from either driver.
fn postgres_error(
    code: &str,
    message: &str,
    detail: Option<&str>,
    constraint: Option<&str>,
    hint: Option<&str>,
) -> DbError {
    if lost_sqlstate(code) {
        return DbError::Lost(message.to_string());
    }
    if unavailable_sqlstate(code) {
        return DbError::Unavailable(message.to_string());
    }
    if code == "57014" {
        return DbError::statement_timeout(message);
    }
    let detail = match (detail, constraint) {
        (Some(detail), Some(c)) => Some(format!("{detail} (constraint {c})")),
        (None, Some(c)) => Some(format!("constraint {c}")),
        (detail, None) => detail.map(str::to_string),
    };
    DbError::Rejected { code: code.to_string(), message: message.to_string(), detail, hint: hint.map(str::to_string) }
}

/// A refused MySQL or SQLite statement, with their codes for constraint and
/// value errors translated to the SQLSTATEs PostgreSQL uses, so that every
/// engine answers the same status and code; the constraint involved goes in
/// the details.
fn rejected(d: &dyn sqlx::error::DatabaseError, code: String) -> DbError {
    let message = d.message().to_string();
    let translated = if let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // SIGNAL in a stored function: the application's own message, as
        // RAISE EXCEPTION is on PostgreSQL.
        if my.number() == 1644 {
            return DbError::Rejected { code: "P0001".into(), message, detail: None, hint: None };
        }
        // MariaDB's max_statement_time (1969), MySQL's max_execution_time
        // (3024).
        if matches!(my.number(), 1969 | 3024) {
            return DbError::statement_timeout(&message);
        }
        match my.number() {
            1062 => Some("23505"),
            1451 | 1452 | 1216 | 1217 => Some("23503"),
            1048 | 1364 => Some("23502"),
            3819 | 4025 => Some("23514"),
            1406 => Some("22001"),
            1264 => Some("22003"),
            1292 | 1366 | 1265 => Some("22P02"),
            _ => None,
        }
    } else {
        // SQLITE_INTERRUPT: the progress handler's deadline passed.
        if code == "9" {
            return DbError::statement_timeout(&message);
        }
        // SQLITE_READONLY and its extended codes (264, 520, …): a file
        // opened read-only, as the demo serves its sample, refuses a write
        // as PostgreSQL's read-only transactions do (405 `25006`).
        if code.parse::<u32>().is_ok_and(|c| c & 0xff == 8) {
            return DbError::Rejected {
                code: "25006".into(),
                message: "cannot write: the database is open read-only".into(),
                detail: Some(message),
                hint: Some("a sqlite:// URL with mode=ro (as `dbapi-runtime demo` serves its sample) is only read; serve the file without it to write".into()),
            };
        }
        // SQLite's extended result codes.
        match code.as_str() {
            "2067" | "1555" => Some("23505"),
            "787" => Some("23503"),
            "1299" => Some("23502"),
            "275" => Some("23514"),
            _ => None,
        }
    };
    match translated {
        Some(pg_code) => DbError::Rejected {
            code: pg_code.to_string(),
            detail: Some(match constraint_in(&message) {
                Some(c) => format!("{message} (constraint {c})"),
                None => message.clone(),
            }),
            message: constraint_message(pg_code).to_string(),
            hint: None,
        },
        None => DbError::Rejected { code, message, detail: None, hint: None },
    }
}

/// What a constraint violation means, in the words of its SQLSTATE.
fn constraint_message(pg_code: &str) -> &'static str {
    match pg_code {
        "23505" => "duplicate key value violates a unique constraint",
        "23503" => "insert or update violates a foreign key constraint",
        "23502" => "null value violates a not-null constraint",
        "23514" => "new row violates a check constraint",
        "22001" => "value too long for the column's type",
        "22003" => "numeric value out of range",
        _ => "invalid input value",
    }
}

/// The constraint a MySQL or SQLite message names: MySQL's `for key 'x'`
/// and `CONSTRAINT `x``, SQLite's `failed: table.column`.
fn constraint_in(message: &str) -> Option<String> {
    let between = |start: &str, end: char| {
        let i = message.find(start)? + start.len();
        let rest = &message[i..];
        Some(rest[..rest.find(end)?].to_string())
    };
    between("for key '", '\'')
        .or_else(|| between("CONSTRAINT `", '`'))
        .or_else(|| message.split_once("failed: ").map(|(_, c)| c.trim().to_string()))
}

/// MySQL reports lost connections under the generic HY000.
fn is_connection_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("connection") || m.contains("server has gone away")
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            // FATAL and PANIC end the session, whatever the code.
            Some(d) if matches!(d.severity(), "FATAL" | "PANIC") => DbError::Lost(d.message().to_string()),
            Some(d) => postgres_error(d.code().code(), d.message(), d.detail(), d.constraint(), d.hint()),
            // The connection is gone.
            None if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
                DbError::Lost(e.to_string())
            }
            None => DbError::Other(e.to_string()),
        }
    }
}
