//! Limits on one request: its URL's length, how many filters and embeds it
//! asks for, and how long it may run.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dbapi_crds::config::ApiSettings;

use crate::error::ApiError;
use crate::grammar::{ApiQuery, Condition, SelectItem};

/// 414 for a URL longer than `max` bytes (`api.maxUrlBytes`), before
/// anything parses it.
pub fn check_url_length(request: &Request, max: u64) -> Result<(), ApiError> {
    let length = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len()) as u64;
    if length > max {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "DBAPI414",
            format!("The request URL is {length} bytes long; at most {max} are accepted"),
        )
        .hint("Send fewer or shorter filters, or raise api.maxUrlBytes."));
    }
    Ok(())
}

/// How long a request may run (`server.requestTimeoutSeconds`), and the
/// 504 for one still running after it. The request's future is dropped,
/// and with it the query it was waiting for; the database stops the
/// statement itself at its own deadline (`limits::database_deadline`).
pub struct Deadline {
    limit: Duration,
    method: Method,
    /// Shared handles, for the warning only.
    uri: Uri,
}

impl Deadline {
    pub fn of(request: &Request, limit: Duration) -> Deadline {
        Deadline { limit, method: request.method().clone(), uri: request.uri().clone() }
    }

    /// The answer to the request that ran past its deadline.
    pub fn passed(self) -> Response {
        let Deadline { limit, method, uri } = self;
        tracing::warn!(%method, path = uri.path(), seconds = limit.as_secs(), "request timed out");
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "DBAPI504",
            format!("The request took longer than {} s and was stopped", limit.as_secs()),
        )
        .hint("Narrow the request (filters, a smaller limit), or raise server.requestTimeoutSeconds.")
        .into_response()
    }
}

/// 400 for more filter conditions (those inside logic trees and on embedded
/// resources included) or more embedded resources (nested ones included)
/// than configured.
pub fn check_query(query: &ApiQuery, api: &ApiSettings) -> Result<(), ApiError> {
    let filters: usize = query.conditions.iter().map(|(_, c)| conditions_in(c)).sum();
    if filters > api.max_filters as usize {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DBAPI105",
            format!("The request has {filters} filter conditions; at most {} are accepted", api.max_filters),
        )
        .details("Conditions inside or=()/and=() and on embedded resources count too.")
        .hint("Combine conditions (in.(...)), or raise api.maxFilters."));
    }
    let embeds = query.select.as_deref().map_or(0, embeds_in);
    if embeds > api.max_embeds as usize {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DBAPI106",
            format!("The request embeds {embeds} resources; at most {} are accepted", api.max_embeds),
        )
        .details("Embeds nested inside other embeds count too.")
        .hint("Split the request, or raise api.maxEmbeds."));
    }
    // PostgREST's db-aggregates-enabled, off by default: an aggregate over
    // a large table is a full scan for every such request.
    if !api.aggregates && query.select.as_deref().is_some_and(|s| s.iter().any(SelectItem::uses_aggregates)) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "PGRST123", "Use of aggregate functions is not allowed")
            .hint("Set api.aggregates: true to allow count(), sum(), avg(), min() and max() in select."));
    }
    Ok(())
}

fn conditions_in(condition: &Condition) -> usize {
    match condition {
        Condition::Filter(_) => 1,
        Condition::Group { children, .. } => children.iter().map(conditions_in).sum(),
    }
}

fn embeds_in(items: &[SelectItem]) -> usize {
    items
        .iter()
        .map(|item| match item {
            SelectItem::Embed(embed) => 1 + embeds_in(&embed.select),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::parse_query;

    fn counts(q: &str) -> (usize, usize) {
        let query = parse_query(q).unwrap();
        (query.conditions.iter().map(|(_, c)| conditions_in(c)).sum(), query.select.as_deref().map_or(0, embeds_in))
    }

    #[test]
    fn conditions_in_logic_trees_and_embeds_count() {
        assert_eq!(counts("a=eq.1"), (1, 0));
        assert_eq!(counts("a=eq.1&or=(b.eq.2,and(c.eq.3,d.eq.4))&items.qty=gt.1"), (5, 0));
        assert_eq!(counts("select=*,items(*,products(*)),customers(*)"), (0, 3));
    }

    #[test]
    fn limits_are_inclusive() {
        let api = ApiSettings { max_filters: 2, max_embeds: 1, ..ApiSettings::default() };
        assert!(check_query(&parse_query("a=eq.1&b=eq.2&select=*,c(*)").unwrap(), &api).is_ok());
        let e = check_query(&parse_query("a=eq.1&or=(b.eq.2,c.eq.3)").unwrap(), &api).unwrap_err();
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::BAD_REQUEST, "DBAPI105"));
        let e = check_query(&parse_query("select=*,c(*,d(*))").unwrap(), &api).unwrap_err();
        assert_eq!(e.code, "DBAPI106");
    }
}
