//! The BMP ingest path on any byte stream: framed as a session frames it
//! (`bmp::frame_len`), each message decoded (`bmp::decode`) and applied to
//! a view with a registration, as the ingest thread does. Never panics; a
//! framing error or a malformed message ends the stream (the session
//! would be closed); the view stays consistent: every active anomaly a
//! path shows has a peer that shows it, and nothing is kept that the
//! registration does not cover.
#![no_main]

use edge_userspace::{
    analytics::{
        Engine,
        bmp::{self, HEADER_LEN, Session},
    },
    plan::PlannedRegistration,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registered: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
    let mut engine = Engine::default();
    engine.configure(
        &[PlannedRegistration {
            name: "contoso".into(),
            origin_asns: vec![64500],
            upstream_asns: vec![64496],
            rtt_p90: None,
            hold_on_hijack: vec![],
            continent: None,
            scope: Default::default(),
        }],
        [(registered, "contoso")],
        0.0,
    );
    let router = "127.0.0.1".parse().unwrap();
    let mut session = Session::new(router);
    let mut at = 0;
    let mut t = 1.0;
    while data.len() - at >= HEADER_LEN {
        let header: [u8; HEADER_LEN] = data[at..at + HEADER_LEN].try_into().unwrap();
        let Ok(len) = bmp::frame_len(&header) else {
            break;
        };
        let Some(frame) = data.get(at..at + len) else {
            break;
        };
        let Ok(actions) = bmp::decode(router, frame) else {
            break;
        };
        session.apply(actions, &mut engine, t);
        at += len;
        t += 1.0;
    }
    engine.session_down(router, t);
    let (active, _) = engine.anomalies(None);
    for a in &active {
        if let Some(p) = a.prefix {
            assert!(registered.contains(&p), "anomaly outside the registration: {a:?}");
        }
        if a.prefix.is_some() && a.kind != edge_userspace::analytics::Kind::VisibilityLoss {
            assert!(!a.peers.is_empty(), "an active path anomaly without a peer: {a:?}");
        }
    }
    for row in engine.routes("0.0.0.0/0".parse().unwrap()) {
        assert!(registered.contains(&row.prefix), "kept outside the registration: {row:?}");
    }
    engine.sweep(t + edge_userspace::analytics::engine::STALE_HOLD);
    assert_eq!(engine.path_count(), 0, "stale paths outlive the hold");
});
