//! `Prefer` and `Range` headers. The preferences a request honours are
//! echoed in `Preference-Applied`; that echo must parse back to the same
//! preferences. A range that parses is ordered and re-parses identically.
#![no_main]

use dbapi_runtime::grammar::{Preferences, parse_prefer, parse_range_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    // Several Prefer headers arrive as several values: split on newlines.
    let headers: Vec<&str> = raw.split('\n').collect();
    match parse_prefer(headers.iter().copied()) {
        Ok(p) => {
            let echoed = p.applied();
            let again = parse_prefer(echoed.as_deref()).unwrap_or_else(|e| panic!("{echoed:?} did not parse: {e:?}"));
            // `max-affected` is echoed only under `handling=strict`, where
            // it is enforced, as PostgREST echoes it.
            let expected = Preferences { max_affected: p.max_affected.filter(|_| p.strict == Some(true)), ..p.clone() };
            assert_eq!(expected, again, "{raw:?} echoed as {echoed:?}");
        }
        Err(e) => {
            assert_eq!(e.message, "Invalid preferences given with handling=strict", "{raw:?}");
            assert!(raw.contains("handling=strict"), "{raw:?} refused without handling=strict");
        }
    }
    match parse_range_header(raw) {
        Ok(Some(r)) => {
            assert!(r.last.is_none_or(|l| l >= r.first), "{raw:?} gave {r:?}");
            let written = match r.last {
                Some(l) => format!("{}-{l}", r.first),
                None => format!("{}-", r.first),
            };
            assert_eq!(parse_range_header(&written), Ok(Some(r)), "{raw:?} written as {written:?}");
        }
        Ok(None) => {}
        Err(e) => assert_eq!(e.message, "Requested range not satisfiable", "{raw:?}"),
    }
});
