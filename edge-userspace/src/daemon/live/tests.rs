//! Live changes as deltas give exactly what the whole pipeline gives: a
//! random walk of adds, batches and dels, each applied as a delta where it
//! can be, and compared after every step with compiling the changed config
//! as a whole: plan, layout, map contents, view rows, counter slots, and
//! the problems of an invalid change. Counter slots run out early (a limit
//! of 12), so slots are given, taken back and handed on.

use std::net::IpAddr;

use rand::{Rng, SeedableRng, rngs::SmallRng};

use super::*;
use crate::{
    desired::{
        Host,
        delta::{SLOT_LIMIT, Slots},
        memory::Memory,
    },
    policy::{Choices, PopView},
};

const CONFIG: &str = r#"
[forwarding]
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:00:01"

[[pops]]
name = "west"
interface = "bb0"
mac = "02:00:00:00:00:02"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:00:03"

[[pops]]
name = "east"
interface = "bb0"
mac = "02:00:00:00:00:04"
region = "world > asia"

[[policies]]
name = "spread"
method = "weighted"
members = [{ pop = "core", weight = 1 }, { pop = "west", weight = 1 }]

[[policies]]
name = "near"
method = "geographic"
members = [{ pop = "core", region = "world > europe" }, { pop = "east" }]

[[prefixes]]
prefix = "198.51.100.0/28"
policy = "spread"
registration = "contoso"

[[prefixes]]
prefix = "198.51.100.16/28"
pop = "core"

[[prefixes]]
prefix = "198.51.100.32/28"
pop = "west"
dscp = "ef"

[[prefixes]]
prefix = "2001:db8:1::/48"
preference = "internet"

[[prefixes]]
prefix = "2001:db8:2::/48"
policy = "near"
region = "world > asia"

[[prefixes]]
prefix = "198.51.100.48/28"
policy = "near"
"#;

/// Interfaces peer0, bb0 and tr0 (ifindex 2, 3, 4).
struct Lab;

impl Host for Lab {
    fn ifindex(&self, interface: &str) -> Result<u32> {
        match interface {
            "peer0" => Ok(2),
            "bb0" => Ok(3),
            "tr0" => Ok(4),
            _ => anyhow::bail!("no interface {interface}"),
        }
    }
    fn mac(&self, interface: &str) -> Result<[u8; 6]> {
        Ok([2, 0xee, 0, 0, 0, self.ifindex(interface)? as u8])
    }
    fn mtu(&self, interface: &str) -> Result<u32> {
        self.ifindex(interface).map(|_| 1500)
    }
    fn local_addresses(&self) -> Result<Vec<IpAddr>> {
        Ok(vec!["192.0.2.1".parse().unwrap()])
    }
    fn neighbour(&self, _: &str, _: u32, _: IpAddr) -> Result<Option<[u8; 6]>> {
        Ok(None)
    }
}

fn up(_: u32) -> PopView {
    PopView::UP
}

/// What a running edged keeps: the last change's pieces, its view rows
/// and the maps.
struct Running {
    applied: Applied,
    rows: Vec<desired::PrefixView>,
    maps: Memory,
}

/// The whole pipeline's answer to `state` over what `current` holds.
fn whole(state: &State, current: &Desired) -> Result<desired::Compiled> {
    let plan = config::parse_with(CONFIG, &state.live)?;
    desired::compile_on(&Lab, &plan, state, current, &up, &Choices::default())
}

fn running(c: desired::Compiled, state: State, maps: Memory) -> Running {
    let rows = c.view.prefixes.to_vec();
    Running {
        applied: Applied {
            plan: config::parse_with(CONFIG, &state.live).unwrap(),
            state: State {
                ids: c.ids.clone(),
                ..state
            },
            current: c.desired,
            layout: c.layout,
            resolved: c.resolved,
            pop_ids: c.pop_ids,
            table_ids: c.table_ids,
            slots: Slots::of(&rows),
        },
        rows,
        maps,
    }
}

/// `plan` with its `pop:NAME` policies in name order and prefixes naming
/// their policy: a delta leaves those policies in the order they were
/// first used in, which a whole validation of the changed plan may not
/// (ids within one plan are consistent either way; maps and table ids go
/// by name).
fn canonical(plan: &crate::plan::Plan) -> String {
    let mut p = plan.clone();
    let names: Vec<String> = p.policies.iter().map(|x| x.name.clone()).collect();
    p.policies.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<String> = p
        .prefixes
        .iter()
        .map(|x| {
            format!("{x:?} {:?}", x.policy.map(|i| names[i as usize].as_str()))
                .replace(&format!("policy: {:?}", x.policy), "")
        })
        .collect();
    p.prefixes.clear();
    format!("{p:?} {rows:?}")
}

/// One random change: a few adds (distinct networks), or a del.
fn change(rng: &mut SmallRng, r: &Running) -> (Vec<PrefixSpec>, Vec<IpNet>) {
    let registered: Vec<IpNet> = r.rows.iter().map(|p| p.prefix).collect();
    if rng.random_bool(0.35) && !registered.is_empty() {
        return (
            Vec::new(),
            vec![registered[rng.random_range(0..registered.len())]],
        );
    }
    let n = if rng.random_bool(0.3) {
        rng.random_range(2..6)
    } else {
        1
    };
    let mut nets: Vec<String> = Vec::new();
    while nets.len() < n {
        let net = match rng.random_range(0..3) {
            0 => format!("198.51.100.{}/28", 16 * rng.random_range(0..16)),
            1 => format!("203.0.113.{}/28", 16 * rng.random_range(0..8)),
            _ => format!("2001:DB8:{:x}::/48", rng.random_range(1..6)),
        };
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    let specs = nets
        .into_iter()
        .map(|prefix| {
            let mut s = PrefixSpec {
                prefix,
                ..PrefixSpec::default()
            };
            match rng.random_range(0..9) {
                0 => s.pop = Some("core".into()),
                1 => s.pop = Some("west".into()),
                2 => s.pop = Some("east".into()),
                3 => s.preference = Some("internet".into()),
                4 => s.policy = Some("near".into()),
                5 => s.policy = Some("nope".into()),
                _ => s.policy = Some("spread".into()),
            }
            if rng.random_bool(0.2) {
                s.dscp = Some("af41".into());
            }
            if rng.random_bool(0.2) {
                s.protect = vec![if rng.random_bool(0.9) { "peer0" } else { "bb0" }.into()];
            }
            if rng.random_bool(0.3) {
                s.registration = Some(format!("r{}", rng.random_range(0..4)));
            }
            if rng.random_bool(0.25) {
                // A region the geographic policy has a table for, a new
                // one, the root, and one that is no region path.
                let regions = ["world > asia", "world > europe > ie", "world", "world >"];
                s.region = Some(regions[rng.random_range(0..regions.len())].into());
            }
            s
        })
        .collect();
    (specs, Vec::new())
}

#[test]
fn live_changes_as_deltas_equal_whole_compiles() {
    SLOT_LIMIT.with(|l| l.set(12));
    let mut rng = SmallRng::seed_from_u64(15);
    let mut maps = Memory::holding(&Desired::default());
    let c = whole(&State::default(), &Desired::default()).unwrap();
    desired::apply_to(&mut maps, &Desired::default(), &c.desired).unwrap();
    let mut r = running(c, State::default(), maps);
    let (mut deltas, mut wholes, mut invalid) = (0, 0, 0);
    for step in 0..600 {
        let (add, del) = change(&mut rng, &r);
        let in_file = |n: &IpNet| {
            r.applied.plan.shadowed.contains(n)
                || r.rows
                    .iter()
                    .any(|p| p.prefix == *n && p.source == crate::plan::Origin::Config)
        };
        let before = r.applied.state.clone();
        let current = r.applied.current.clone();
        let mut state = std::mem::take(&mut r.applied.state);
        let undo = change_state(&mut state, &add, &del, &in_file, &|n| {
            current.prefixes.contains_key(n)
        });
        let unremoved = undo.unremoved();
        // The undo puts the state back exactly.
        let mut back = state.clone();
        undo.revert(&mut back);
        assert_eq!(back, before, "step {step}");
        r.applied.state = before;
        let want = whole(&state, &r.applied.current);
        let what = format!("step {step}: add {add:?} del {del:?}");
        match work_out(&r.applied, &r.rows, &add, &del, &unremoved) {
            Err(e) => {
                let want = want.err().unwrap_or_else(|| panic!("{what}: {e:#}"));
                assert_eq!(format!("{e:#}"), format!("{want:#}"), "{what}");
                invalid += 1;
                continue;
            }
            Ok(None) => {
                let c = want.unwrap_or_else(|e| panic!("{what}: {e:#}"));
                desired::apply_to(&mut r.maps, &r.applied.current, &c.desired).unwrap();
                let maps = std::mem::take(&mut r.maps);
                r = running(c, state, maps);
                wholes += 1;
                continue;
            }
            Ok(Some(d)) => {
                let want = want.unwrap_or_else(|e| panic!("{what}: {e:#}"));
                let before = r.maps.maps.clone();
                let changes = desired::apply_prefixes(&mut r.maps, &d.writes, &d.removals).unwrap();
                let whole_changes = {
                    let mut m = Memory::holding(&before);
                    desired::apply_to(&mut m, &before, &want.desired).unwrap()
                };
                assert_eq!(changes, whole_changes, "{what}");
                d.commit(Target {
                    plan: &mut r.applied.plan,
                    layout: &mut r.applied.layout,
                    current: &mut r.applied.current,
                    prefixes: &mut r.rows,
                    slots: &mut r.applied.slots,
                });
                r.applied.state = state.clone();
                let plan = config::parse_with(CONFIG, &state.live).unwrap();
                assert_eq!(canonical(&r.applied.plan), canonical(&plan), "{what}");
                assert_eq!(r.applied.layout, want.layout, "{what}");
                assert_eq!(r.applied.current, want.desired, "{what}");
                assert_eq!(r.maps.maps, want.desired, "{what}");
                assert_eq!(r.rows, *want.view.prefixes, "{what}");
                assert_eq!(r.applied.slots, Slots::of(&want.view.prefixes), "{what}");
                assert_eq!(state.ids, want.ids, "{what}");
                deltas += 1;
            }
        }
    }
    println!("{deltas} deltas, {wholes} whole compiles, {invalid} invalid");
    assert!(
        deltas > 250 && wholes > 20 && invalid > 20,
        "{deltas} {wholes} {invalid}"
    );
    let zero = r.rows.iter().filter(|p| p.counter_slot == 0).count();
    assert!(zero > 0, "the slots ran out at some point: {zero}");
}

/// A state file that cannot be written: the maps are put back.
#[test]
fn undone_when_the_state_cannot_be_recorded() {
    let mut maps = Memory::holding(&Desired::default());
    let c = whole(&State::default(), &Desired::default()).unwrap();
    desired::apply_to(&mut maps, &Desired::default(), &c.desired).unwrap();
    let r = running(c, State::default(), maps);
    let add = vec![PrefixSpec {
        prefix: "203.0.113.0/28".into(),
        policy: Some("spread".into()),
        ..PrefixSpec::default()
    }];
    let del = vec!["198.51.100.0/28".parse().unwrap()];
    let d = work_out(&r.applied, &r.rows, &add, &del, &Default::default())
        .unwrap()
        .unwrap();
    let mut m = Memory::holding(&r.maps.maps);
    desired::apply_prefixes(&mut m, &d.writes, &d.removals).unwrap();
    assert_ne!(m.maps, r.maps.maps);
    desired::undo_prefixes(&mut m, &d.writes, &d.removals).unwrap();
    assert_eq!(m.maps, r.maps.maps);
}
