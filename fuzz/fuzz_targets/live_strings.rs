//! Live changes carry operator strings (registration names) into the
//! config through a TOML round trip (`config::parse_with` serialises them
//! and parses the result with the file). Any string must survive it: on top
//! of the lab config, a live prefix with any registration is accepted and
//! keeps the registration exactly, and so does the desired-state file's
//! JSON form of the live changes.
#![no_main]

use edge_userspace::config::{self, Live, PrefixSpec};
use libfuzzer_sys::fuzz_target;

const LAB: &str = include_str!("../../tests/lab.toml");

fuzz_target!(|data: &[u8]| {
    let registration = String::from_utf8_lossy(data).into_owned();
    let live = Live {
        added: vec![PrefixSpec {
            prefix: "198.51.100.0/24".into(),
            registration: Some(registration.clone()),
            pop: Some("pop-b".into()),
            ..PrefixSpec::default()
        }],
        removed: vec!["203.0.113.128/25".parse().unwrap()],
        removed_private: Vec::new(),
    };
    let json = serde_json::to_string(&live).expect("live changes encode");
    let back: Live = serde_json::from_str(&json).expect("live changes decode");
    assert_eq!(back, live, "desired-state JSON round trip");

    let plan = config::parse_with(LAB, &live)
        .unwrap_or_else(|e| panic!("registration {registration:?} rejected: {e}"));
    let p = plan
        .prefixes
        .iter()
        .find(|p| p.net.to_string() == "198.51.100.0/24")
        .expect("live prefix in the plan");
    assert_eq!(p.origin, edge_userspace::plan::Origin::Live);
    assert_eq!(
        p.registration, registration,
        "registration changed on the way"
    );
    assert!(
        !plan
            .prefixes
            .iter()
            .any(|p| p.net.to_string() == "203.0.113.128/25"),
        "removed prefix still in the plan"
    );
});
