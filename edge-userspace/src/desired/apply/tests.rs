//! `apply` against maps held in memory: the diff reaches the target, writes
//! come in an order that never leaves a prefix pointing at a missing next
//! hop or table, and a write failing at any point is undone completely.

use std::collections::{BTreeMap, BTreeSet};

use edge_common::pop_flags;

use super::*;
use crate::desired::memory::Memory;

fn pop(ifindex: u32, mac: u8) -> Pop {
    Pop {
        ifindex,
        flags: pop_flags::VALID,
        dst_mac: [2, 0, 0, 0, 0, mac],
        ..Pop::default()
    }
}

fn table(pops: &[u16]) -> PolicyTable {
    let mut t = PolicyTable::default();
    for (slot, p) in t.pops.iter_mut().enumerate() {
        *p = pops[slot % pops.len()];
    }
    t
}

fn prefix(slot: u32, policy: u32) -> PrefixEntry {
    PrefixEntry {
        allowed_ports: 0,
        slot,
        policy,
        preference: 0,
        dscp: edge_common::DSCP_KEEP,
        _pad: [0; 6],
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Two configs that differ in every kind of entry: a PoP and a policy
/// replaced, a port and a local address removed and another added,
/// prefixes added, changed (new policy, new slot) and removed, settings.
fn before_after() -> (Desired, Desired) {
    let mut a = Desired::default();
    a.settings.encap_ttl = 64;
    a.ports = BTreeMap::from([
        (
            2,
            PortEntry {
                role: 1,
                id: 0,
                ..PortEntry::default()
            },
        ),
        (
            3,
            PortEntry {
                role: 2,
                id: 1,
                ..PortEntry::default()
            },
        ),
    ]);
    a.pops[0] = pop(3, 1);
    a.pops[1] = pop(3, 2);
    a.policies[0] = table(&[0, 1]);
    a.policies[1] = table(&[1]);
    a.locals = BTreeSet::from(["192.0.2.1".parse().unwrap()]);
    a.prefixes = BTreeMap::from([
        (net("198.51.100.0/24"), prefix(1, 0)),
        (net("203.0.113.0/24"), prefix(2, 1)),
        (net("2001:db8:1::/48"), prefix(3, 0)),
    ]);
    let mut b = a.clone();
    b.settings.encap_ttl = 32;
    b.ports.remove(&3);
    b.ports.insert(
        4,
        PortEntry {
            role: 2,
            id: 1,
            ..PortEntry::default()
        },
    );
    b.pops[1] = Pop::default(); // unused now
    b.pops[2] = pop(4, 3);
    b.policies[0] = table(&[0]);
    b.policies[1] = PolicyTable::default(); // unused now
    b.policies[2] = table(&[2, 0]);
    b.locals = BTreeSet::from(["192.0.2.9".parse().unwrap()]);
    b.prefixes.remove(&net("203.0.113.0/24"));
    b.prefixes.insert(net("198.51.100.0/24"), prefix(4, 2)); // changed: slot and policy
    b.prefixes.insert(net("2001:db8:2::/48"), prefix(5, 2)); // new
    (a, b)
}

#[test]
fn the_diff_reaches_the_target_in_a_safe_order() {
    let (a, b) = before_after();
    let mut m = Memory::holding(&a);
    let changes = apply_to(&mut m, &a, &b).unwrap();
    assert_eq!(m.maps, b);
    assert!(m.order_ok, "a prefix was written before its table or PoPs");
    // New slots start from zero; kept slots keep their counts.
    assert_eq!(m.reset, vec![4, 5]);
    assert_eq!(changes.removed, 3, "a port, a prefix and a local address");
    assert!(changes.written > 0);
    // Nothing to do the second time.
    let again = apply_to(&mut m, &b, &b).unwrap();
    assert!(again.is_empty());
}

#[test]
fn a_write_failing_anywhere_is_undone_completely() {
    let (a, b) = before_after();
    let total = {
        let mut m = Memory::holding(&a);
        apply_to(&mut m, &a, &b).unwrap();
        m.writes
    };
    assert!(total > 10, "{total} writes");
    for k in 0..total {
        let mut m = Memory::holding(&a);
        m.fail_at = Some(k);
        let err = apply_to(&mut m, &a, &b).unwrap_err();
        assert_eq!(
            m.maps, a,
            "failing write {k}: the maps do not hold `from` again"
        );
        let text = format!("{err:#}");
        assert!(text.contains("were undone"), "{text}");
    }
}
