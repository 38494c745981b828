//! The right-hand side of a filter (`[not.]op[(mod)].value`), outside and
//! inside logic trees: what parses must re-parse, written canonically, to
//! the same operation.
#![no_main]

use dbapi_runtime::grammar::{Condition, LogicOp, parse_filter_value, parse_query};
use dbapi_runtime_fuzz::write_filter_value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    match parse_filter_value(raw) {
        Ok((negated, op)) => {
            let written = write_filter_value(negated, &op, false);
            let again =
                parse_filter_value(&written).unwrap_or_else(|e| panic!("{raw:?} parsed, {written:?} did not: {e:?}"));
            assert_eq!((negated, op), again, "{raw:?} and {written:?} differ");
        }
        Err(e) => assert!(e.message.starts_with("failed to parse filter"), "{raw:?}: {e:?}"),
    }
    // The same text as a logic tree's only condition (`or=(c.<raw>)`),
    // through the query string as a client would send it.
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("or", &format!("(c.{raw})")).finish();
    if let Ok(q) = parse_query(&query) {
        let [(path, Condition::Group { op: LogicOp::Or, negated: false, children })] = q.conditions.as_slice() else {
            panic!("or=(...) parsed to {:?}", q.conditions);
        };
        assert!(path.is_empty());
        assert!(!children.is_empty());
    }
});
