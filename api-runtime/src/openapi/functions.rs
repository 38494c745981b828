//! `/rpc/{fn}` in the OpenAPI document: one path per function name (the
//! overloads share it), POST always, GET for functions that do not write.

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, SchemaType};
use utoipa::openapi::{ContentBuilder, PathItem, RefOr, Required, ResponseBuilder, Type};

use crate::schema::{Function, Returns, Schema, ValueKind, Volatility};

use super::{ERROR_RESPONSES, path_segment, query_parameter, row_schema, string, value_schema};

/// The path item of the function(s) named `name`; `components` maps table
/// names to their component schema, for results of a table's type.
pub(super) fn function_path(
    schema: &Schema,
    overloads: &[&Function],
    components: &std::collections::BTreeMap<String, String>,
) -> (String, PathItem) {
    let first = overloads[0];
    let path = format!("/rpc/{}", path_segment(&first.name));
    let mut item = PathItem::new(HttpMethod::Post, operation(schema, overloads, components, HttpMethod::Post));
    if overloads.iter().all(|f| f.volatility != Volatility::Volatile) {
        item.get = Some(operation(schema, overloads, components, HttpMethod::Get));
    }
    (path, item)
}

fn operation(
    schema: &Schema,
    overloads: &[&Function],
    components: &std::collections::BTreeMap<String, String>,
    method: HttpMethod,
) -> Operation {
    let f = overloads[0];
    let verb = if method == HttpMethod::Get { "get" } else { "post" };
    let mut description = String::new();
    if let Some(comment) = f.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        description.push_str(comment);
        description.push_str("\n\n");
    }
    if overloads.len() > 1 {
        let signatures: Vec<String> = overloads.iter().map(|o| format!("`{}`", o.signature())).collect();
        description.push_str(&format!("Overloaded: {}. The argument names choose one.\n\n", signatures.join(", ")));
    }
    description.push_str(match (method == HttpMethod::Get, f.volatility) {
        (true, _) => {
            "Arguments go in the query string (`?name=value`); the other query parameters filter, \
                      order and page the result as for a table."
        }
        (false, Volatility::Volatile) => {
            "Arguments are the members of a JSON object. The call runs in a \
                                          transaction (`Prefer: tx=rollback` undoes it). This function may \
                                          change data, so it has no GET."
        }
        (false, _) => {
            "Arguments are the members of a JSON object; filters, order and paging in the query \
                       string apply to the result."
        }
    });
    let mut op = OperationBuilder::new()
        .tag("rpc")
        .operation_id(Some(format!("{verb}_rpc_{}", path_segment(&f.name))))
        .summary(Some(format!("Call the function `{}`", f.name)))
        .description(Some(description));

    // A parameter is required when every overload requires it.
    let mut params: Vec<&crate::schema::Column> = Vec::new();
    for p in overloads.iter().flat_map(|o| o.params.iter()).filter(|p| !p.name.is_empty()) {
        if !params.iter().any(|q| q.name == p.name) {
            params.push(p);
        }
    }
    let required =
        |name: &str| overloads.iter().all(|o| o.params.iter().any(|p| p.name == name && p.default.is_none()));
    if method == HttpMethod::Get {
        for p in &params {
            let mut parameter = query_parameter(&p.name, format!("Argument `{}` ({})", p.name, p.db_type), string());
            parameter.required = if required(&p.name) { Required::True } else { Required::False };
            // Typed like the parameter (an array as repeated keys); json
            // stays a string holding JSON.
            if p.kind != ValueKind::Json {
                parameter.schema = Some(RefOr::T(value_schema(&p.kind, false, None)));
            }
            op = op.parameter(parameter);
        }
    } else {
        let body = if f.params.len() == 1 && f.params[0].name.is_empty() {
            // The whole body is the single json argument.
            ObjectBuilder::new().schema_type(SchemaType::AnyValue).description(Some("Any JSON: the argument")).build()
        } else {
            let mut object = ObjectBuilder::new().schema_type(Type::Object);
            for p in &params {
                object = object.property(p.name.clone(), value_schema(&p.kind, true, Some(format!("`{}`", p.db_type))));
                if required(&p.name) {
                    object = object.required(p.name.clone());
                }
            }
            object.build()
        };
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                .required(Some(Required::True))
                .build(),
        ));
    }
    if matches!(f.returns, Returns::Rows(_) | Returns::Table(_)) {
        for name in ["order", "limit", "offset", "range", "prefer"] {
            op = op.parameter_ref(Ref::new(format!("#/components/parameters/{name}")));
        }
    }

    op = match &f.returns {
        Returns::Void => op.response("204", ResponseBuilder::new().description("Done; no content.").build()),
        returns => {
            let one: RefOr<utoipa::openapi::Schema> = match returns {
                Returns::Table((s, t)) if s == &f.schema && components.contains_key(t) => {
                    RefOr::Ref(Ref::from_schema_name(components[t].clone()))
                }
                Returns::Scalar(t) => {
                    RefOr::T(value_schema(&t.columns[0].kind, true, Some(t.columns[0].db_type.clone())))
                }
                _ => RefOr::T(row_schema(f.result_table(schema).expect("not void"))),
            };
            let result = if f.set_returning { RefOr::T(ArrayBuilder::new().items(one).build().into()) } else { one };
            op.response(
                "200",
                ResponseBuilder::new()
                    .description(if f.set_returning { "The result rows." } else { "The result." })
                    .content("application/json", ContentBuilder::new().schema(Some(result)).build())
                    .build(),
            )
        }
    };
    for (name, status, _) in ERROR_RESPONSES {
        op = op.response(*status, RefOr::Ref(Ref::from_response_name(*name)));
    }
    op.build()
}
