//! The call plan for `/rpc/{fn}`: which overload the arguments name, the
//! checked argument values, and the read of the result rows.

use serde_json::{Map, Value};

use crate::grammar::ApiQuery;
use crate::schema::{Function, Schema, ValueKind};

use super::nodes::{Call, Page, ReadPlan};
use super::read::plan_rows_of;
use super::{PlanError, check_write_value, closest};

#[derive(Debug, Clone, PartialEq)]
pub enum CallPlan<'s> {
    /// A function returning nothing: called for its effect.
    Void(Call<'s>),
    /// The result rows, read like a table (the root carries the call).
    Read(ReadPlan<'s>),
}

impl CallPlan<'_> {
    /// See [`ReadPlan::cap_embeds`].
    pub fn cap_embeds(&mut self, max: u64) {
        if let CallPlan::Read(read) = self {
            read.cap_embeds(max);
        }
    }
}

impl<'s> CallPlan<'s> {
    pub fn function(&self) -> &'s Function {
        self.call().function
    }

    /// The call itself (the function and its arguments).
    pub fn call(&self) -> &Call<'s> {
        match self {
            CallPlan::Void(call) => call,
            CallPlan::Read(plan) => plan.call.as_ref().expect("a call plan's read carries its call"),
        }
    }
}

/// The arguments of a request.
#[derive(Debug, Clone, Default)]
pub struct CallArgs {
    /// By parameter name: the POST body's members or the GET query's.
    pub named: Map<String, Value>,
    /// The whole POST body, for a function whose only parameter is an
    /// unnamed json/jsonb one.
    pub body: Option<Value>,
    /// `Prefer: params=single-object`: the body goes to the only json
    /// parameter, named or not.
    pub single_object: bool,
}

impl CallArgs {
    fn takes_whole_body(&self, function: &Function) -> bool {
        self.body.is_some()
            && matches!(&function.params[..], [only]
                if only.kind == ValueKind::Json && (only.name.is_empty() || self.single_object))
    }
}

/// Plans a call of `profile.name`.
#[tracing::instrument(level = "debug", name = "plan", skip_all)]
pub fn plan_call<'s>(
    schema: &'s Schema,
    profile: &str,
    name: &str,
    args: &CallArgs,
    query: &ApiQuery,
    page: Page,
) -> Result<CallPlan<'s>, PlanError> {
    let function = choose_overload(schema, profile, name, args)?;
    let call = if args.takes_whole_body(function) {
        let value = args.body.clone().unwrap_or_default();
        Call { function, args: vec![(&function.params[0], value)] }
    } else {
        let mut passed = Vec::with_capacity(args.named.len());
        for param in &function.params {
            let Some(value) = args.named.get(&param.name) else { continue };
            // A PostgreSQL array literal (`{1,2}`, as GET sends it) is
            // checked by the database.
            if !(matches!(param.kind, ValueKind::Array(_)) && value.is_string()) {
                check_write_value(&function.name, param, value)?;
            }
            passed.push((param, value.clone()));
        }
        Call { function, args: passed }
    };
    let Some(result) = function.result_table(schema) else { return Ok(CallPlan::Void(call)) };
    let mut plan = plan_rows_of(schema, result, query, page)?;
    plan.call = Some(call);
    Ok(CallPlan::Read(plan))
}

/// The overloads of `profile.name`; none is 404 `PGRST202` naming the
/// call with `arguments` (or why the routine cannot be called).
pub fn find_functions<'s>(
    schema: &'s Schema,
    profile: &str,
    name: &str,
    arguments: &[&str],
) -> Result<&'s [Function], PlanError> {
    let overloads = schema.functions_named(profile, name);
    if !overloads.is_empty() {
        return Ok(overloads);
    }
    if let Some(reason) = schema.uncallable.get(&(profile.to_string(), name.to_string())) {
        return Err(PlanError::UncallableFunction { name: format!("{profile}.{name}"), reason: reason.clone() });
    }
    let hint = match schema.engine {
        crate::schema::Engine::Sqlite => Some("SQLite has no stored functions to call.".to_string()),
        _ => closest(name, schema.functions_in(profile).map(|f| f.name.as_str()))
            .map(|c| format!("Perhaps you meant to call the function {profile}.{c}")),
    };
    Err(PlanError::UnknownFunction { signature: format!("{profile}.{name}({})", arguments.join(", ")), hint })
}

/// The one overload whose parameters the argument names fit: every name
/// is a parameter, every parameter without a default is named.
fn choose_overload<'s>(
    schema: &'s Schema,
    profile: &str,
    name: &str,
    args: &CallArgs,
) -> Result<&'s Function, PlanError> {
    let names: Vec<&str> = args.named.keys().map(String::as_str).collect();
    let signature = || format!("{profile}.{name}({})", names.join(", "));
    let overloads = find_functions(schema, profile, name, &names)?;
    if args.body.as_ref().is_some_and(|b| !b.is_object()) && !overloads.iter().any(|f| args.takes_whole_body(f)) {
        return Err(PlanError::Payload {
            message: "The arguments must be a JSON object".into(),
            details: format!("{} takes named arguments: send {{\"name\": value, ...}}", overloads[0].signature()),
        });
    }
    let fits = |f: &&Function| {
        if args.takes_whole_body(f) {
            return true;
        }
        let unnamed = f.params.iter().any(|p| p.name.is_empty());
        !unnamed
            && args.named.keys().all(|k| f.params.iter().any(|p| &p.name == k))
            && f.params.iter().all(|p| p.default.is_some() || args.named.contains_key(&p.name))
    };
    let fitting: Vec<&Function> = overloads.iter().filter(fits).collect();
    match fitting[..] {
        [one] => Ok(one),
        [] => Err(PlanError::UnknownFunction {
            signature: signature(),
            hint: Some(format!(
                "Perhaps you meant to call {}",
                overloads.iter().map(Function::signature).collect::<Vec<_>>().join(" or ")
            )),
        }),
        _ => Err(PlanError::AmbiguousFunction {
            signature: signature(),
            candidates: fitting.iter().map(|f| f.signature()).collect(),
        }),
    }
}
