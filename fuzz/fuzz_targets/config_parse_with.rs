//! `config::parse_with` with a fuzzed live overlay. Input: the config text,
//! a NUL byte, then the live changes as JSON (`{"added": [PrefixSpec...],
//! "removed": ["192.0.2.0/24", ...]}`, the format of the desired-state
//! file). Never panics; problem lines are inside the config text (live
//! problems carry none); an accepted plan is consistent, holds every live
//! prefix (marked live) and none of the removed ones.
#![no_main]

use edge_fuzz::{check_plan, check_problems};
use edge_userspace::config::{self, Live};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (text, live) = input.split_once('\0').unwrap_or((input, "{}"));
    let Ok(live) = serde_json::from_str::<Live>(live) else {
        return;
    };
    match config::parse_with(text, &live) {
        Ok(plan) => {
            check_plan(&plan);
            let added: Vec<IpNet> = live
                .added
                .iter()
                .map(|s| s.prefix.parse().expect("an accepted live prefix parses"))
                .collect();
            for net in &added {
                assert!(
                    plan.prefixes.iter().any(|p| p.net == *net && p.origin == edge_userspace::plan::Origin::Live),
                    "live prefix {net} missing from the plan"
                );
            }
            for net in &live.removed {
                if !added.contains(net) {
                    assert!(
                        !plan.prefixes.iter().any(|p| p.net == *net),
                        "removed prefix {net} still in the plan"
                    );
                }
            }
        }
        Err(invalid) => check_problems(text, &invalid),
    }
});
