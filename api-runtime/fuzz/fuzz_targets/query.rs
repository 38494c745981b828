//! The whole query string: `parse_query`, and `parse_select` on its own.
//! A query that parses must keep the planner's invariants and re-parse,
//! written back canonically, to the same AST; an error must say something.
#![no_main]

use dbapi_runtime::grammar::{MAX_QUERY_LEN, parse_query, parse_select};
use dbapi_runtime_fuzz::{check_query, write_query, write_select};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The runtime hands the grammar the URI's query, which is a str.
    let Ok(raw) = std::str::from_utf8(data) else { return };
    match parse_query(raw) {
        Ok(q) => {
            check_query(&q);
            let written = write_query(&q);
            if written.len() <= MAX_QUERY_LEN {
                let again = parse_query(&written)
                    .unwrap_or_else(|e| panic!("{raw:?} parsed, its canonical form {written:?} did not: {e:?}"));
                assert_eq!(q, again, "{raw:?} and its canonical form {written:?} differ");
            }
        }
        Err(e) => assert!(!e.message.is_empty(), "an error without a message for {raw:?}"),
    }
    // The select grammar directly, without form decoding in the way.
    if let Ok(items) = parse_select(raw) {
        let written = write_select(&items);
        let again =
            parse_select(&written).unwrap_or_else(|e| panic!("select {raw:?} parsed, {written:?} did not: {e:?}"));
        assert_eq!(items, again, "select {raw:?} and {written:?} differ");
    }
});
