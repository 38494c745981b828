//! The document as a role sees it. The role's view of the schema already
//! leaves out the tables, columns, functions and relationships it has no
//! rule for; this takes out the operations its rules do not grant.

use utoipa::openapi::OpenApi;

use crate::plan::access::{Scope, Verb};

use super::path_segment;

/// Removes from `doc` (built from `scope.schema`) every operation the
/// role may not use. No change on an open API.
pub fn only_granted(mut doc: OpenApi, scope: &Scope, profile: &str) -> OpenApi {
    if !scope.is_restricted() {
        return doc;
    }
    let paths = &mut doc.paths.paths;
    for table in scope.schema.tables_in(profile) {
        let Some(item) = paths.get_mut(&format!("/{}", path_segment(&table.name))) else { continue };
        let Some(verbs) = scope.grants(table).map(|g| g.verbs()) else { continue };
        let keep = |verb: Verb, op: &mut Option<utoipa::openapi::path::Operation>| {
            if !verbs.contains(verb) {
                *op = None;
            }
        };
        keep(Verb::Get, &mut item.get);
        keep(Verb::Head, &mut item.head);
        keep(Verb::Post, &mut item.post);
        keep(Verb::Put, &mut item.put);
        keep(Verb::Patch, &mut item.patch);
        keep(Verb::Delete, &mut item.delete);
    }
    for function in scope.schema.functions_in(profile) {
        let Some(item) = paths.get_mut(&format!("/rpc/{}", path_segment(&function.name))) else { continue };
        let Some(verbs) = scope.function_verbs(function) else { continue };
        if !verbs.contains(Verb::Get) {
            item.get = None;
        }
        if !verbs.contains(Verb::Post) {
            item.post = None;
        }
    }
    // A path with no operation left is not one the role can call.
    paths.retain(|_, item| {
        item.get.is_some()
            || item.post.is_some()
            || item.put.is_some()
            || item.patch.is_some()
            || item.delete.is_some()
            || item.head.is_some()
    });
    doc
}
