//! `control::decode` on any line: never panics; a decoded request
//! re-encodes (as edgectl sends it, with the protocol version) and decodes
//! to the same value.
#![no_main]

use edge_userspace::control::{self, MAX_REQUEST, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = control::decode(data) else {
        return;
    };
    let line = control::encode(&request);
    let again: Request = if line.len() <= MAX_REQUEST {
        control::decode(&line).unwrap_or_else(|e| panic!("re-encoded request rejected: {e}"))
    } else {
        let mut v: serde_json::Value =
            serde_json::from_slice(&line).expect("re-encoded request is JSON");
        assert_eq!(v["protocol"], control::PROTOCOL, "re-encoded request has the version");
        v.as_object_mut().unwrap().remove("protocol");
        serde_json::from_value(v).expect("re-encoded request decodes")
    };
    assert_eq!(again, request, "round trip changed the request");
});
