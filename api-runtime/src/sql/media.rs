//! A read answered by a media type handler (PostgreSQL): the handler's
//! aggregate over the page's rows.

use crate::plan::ReadPlan;
use crate::schema::{ComputedBy, Engine, MediaHandler};

use super::read::{call_on_row, from_page, order_by};
use super::{Fragment, Statement, Writer};

/// The statement for a read answered by a media type handler: the
/// handler's aggregate over the page's rows, each passed as the table's
/// row type, in the requested order.
///
/// ```text
/// SELECT "s"."agg"(ROW(t1.*)::"s"."table" ORDER BY …) FROM (<page>) AS t1
/// ```
pub fn render_handler(plan: &ReadPlan, engine: Engine, handler: &MediaHandler) -> Statement {
    let mut w = Writer::new(engine);
    let by = ComputedBy {
        function_schema: handler.aggregate_schema.clone(),
        function: handler.aggregate.clone(),
        row_schema: plan.table.schema.clone(),
        row_type: plan.table.name.clone(),
    };
    w.push("SELECT ");
    // The aggregate sees the rows in the requested order.
    let order = |w: &mut Writer| order_by(w, plan);
    call_on_row(&mut w, &by, &plan.alias, (!plan.order.is_empty()).then_some(&order as &Fragment));
    from_page(&mut w, plan, false);
    w.finish()
}
