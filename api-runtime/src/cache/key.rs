//! What a cached answer is filed under: everything that changes the answer
//! (the request, the caller's role and claims, the headers a read honours)
//! and the tables it reads.

use axum::http::{HeaderMap, header};

use crate::auth::Identity;
use crate::plan::{PlannedItem, ReadPlan};
use crate::schema::Table;

use super::generations::{EVERYTHING, VIEWS};

/// Request headers that change a read's answer; they are also its `Vary`.
pub const ANSWER_HEADERS: [&str; 5] = ["accept", "accept-profile", "prefer", "range", "range-unit"];

/// The request part of a cache key: [`request_text`] hashed, so no claim
/// or header value is stored.
pub fn request_key(request_text: &str) -> String {
    dbapi_crds::keys::sha256_hex(request_text)
}

/// Everything about a read request that changes its answer: path and
/// query as sent, the caller's role (and its claims, which row filters may
/// read), and the headers in [`ANSWER_HEADERS`].
pub fn request_text(identity: &Identity, path: &str, query: &str, headers: &HeaderMap) -> String {
    let mut text = String::with_capacity(256);
    text.push_str(path);
    text.push('?');
    text.push_str(query);
    text.push('\n');
    text.push_str(identity.role.as_deref().unwrap_or("-"));
    text.push('\n');
    if identity.role.is_some() {
        text.push_str(&identity.claims.to_string());
    }
    // One look at each header the request has (a handful) per name,
    // rather than hashing each name to look it up.
    for name in ANSWER_HEADERS {
        text.push('\n');
        for (_, value) in headers.iter().filter(|(n, _)| n.as_str() == name) {
            text.push_str(&String::from_utf8_lossy(value.as_bytes()));
            text.push(',');
        }
    }
    text
}

/// The generation key of a table.
pub fn table_key(table: &Table) -> String {
    format!("{}.{}", table.schema, table.name)
}

/// The generation keys an answer depends on: every table it reads (embeds
/// and junctions included), [`VIEWS`] when it reads a view, and
/// [`EVERYTHING`].
pub fn dependencies(plan: &ReadPlan) -> Vec<String> {
    let mut keys = vec![EVERYTHING.to_string()];
    let mut reads_view = false;
    collect(plan, &mut keys, &mut reads_view);
    if reads_view {
        keys.push(VIEWS.to_string());
    }
    keys.sort();
    keys.dedup();
    keys
}

fn collect(plan: &ReadPlan, keys: &mut Vec<String>, reads_view: &mut bool) {
    *reads_view |= plan.table.is_view;
    keys.push(table_key(plan.table));
    for item in &plan.items {
        if let PlannedItem::Embed(embed) = item {
            if let Some((junction, _)) = &embed.junction {
                *reads_view |= junction.is_view;
                keys.push(table_key(junction));
            }
            collect(&embed.plan, keys, reads_view);
        }
    }
}

/// Whether the answer depends on who asks beyond their role: a caller with
/// a key or token gets `Cache-Control: private`.
pub fn is_personal(identity: &Identity, headers: &HeaderMap) -> bool {
    identity.principal_name().is_some()
        || headers.contains_key(header::AUTHORIZATION)
        || crate::auth::KEY_HEADERS.iter().any(|name| headers.contains_key(name))
}
