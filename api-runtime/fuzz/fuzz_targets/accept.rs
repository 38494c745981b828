//! Content negotiation on `Accept`: the answer is a representation whose
//! own Content-Type negotiates to itself, or 406 `PGRST107`.
#![no_main]

use dbapi_runtime::http::negotiate::negotiate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    match negotiate(Some(raw)) {
        Ok(n) => {
            let ct = n.content_type();
            assert_eq!(negotiate(Some(ct)).ok(), Some(n), "{raw:?} gave {n:?}, whose {ct:?} does not");
        }
        Err(e) => {
            assert_eq!(e.status.as_u16(), 406, "{raw:?}: {e:?}");
            assert_eq!(e.code, "PGRST107", "{raw:?}: {e:?}");
            assert!(!raw.trim().is_empty(), "an empty Accept must mean JSON");
        }
    }
});
