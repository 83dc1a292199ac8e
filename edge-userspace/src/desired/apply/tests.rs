//! `apply` against maps held in memory: the diff reaches the target, writes
//! come in an order that never leaves a prefix pointing at a missing next
//! hop or table, and a write failing at any point is undone completely.

use std::collections::{BTreeMap, BTreeSet};

use edge_common::{NO_POP, pop_flags};

use super::*;

/// Table maps in memory, failing the write numbered `fail_at` (0-based),
/// and recording the order of writes.
#[derive(Default)]
struct Memory {
    maps: Desired,
    writes: usize,
    fail_at: Option<usize>,
    /// Counter slots zeroed.
    reset: Vec<u32>,
    /// Every prefix written, with whether its policy's table and its PoPs
    /// were in place at that moment.
    order_ok: bool,
}

impl Memory {
    fn holding(d: &Desired) -> Self {
        Self {
            maps: d.clone(),
            order_ok: true,
            ..Self::default()
        }
    }

    fn step(&mut self) -> Result<(), MapsError> {
        let n = self.writes;
        self.writes += 1;
        if self.fail_at == Some(n) {
            return Err(MapsError::MapFull {
                map: "memory",
                limit: n as u32,
            });
        }
        Ok(())
    }

    /// A prefix written now finds its table, and the table's PoPs.
    fn check_prefix(&mut self, e: &PrefixEntry) {
        let table = &self.maps.policies[e.policy as usize];
        let pops_ok = table
            .pops
            .iter()
            .filter(|&&p| p != NO_POP)
            .all(|&p| self.maps.pops[p as usize].flags != 0);
        if e.policy != NO_POP as u32 && (*table == PolicyTable::default() || !pops_ok) {
            self.order_ok = false;
        }
    }
}

impl MapWriter for Memory {
    fn set_settings(&mut self, settings: Settings) -> Result<(), MapsError> {
        self.step()?;
        self.maps.settings = settings;
        Ok(())
    }
    fn set_port(&mut self, ifindex: u32, entry: PortEntry) -> Result<(), MapsError> {
        self.step()?;
        self.maps.ports.insert(ifindex, entry);
        Ok(())
    }
    fn del_port(&mut self, ifindex: u32) -> Result<(), MapsError> {
        self.step()?;
        self.maps.ports.remove(&ifindex);
        Ok(())
    }
    fn set_pop(&mut self, id: u32, pop: Pop) -> Result<(), MapsError> {
        self.step()?;
        self.maps.pops[id as usize] = pop;
        Ok(())
    }
    fn set_policy(&mut self, id: u32, table: &PolicyTable) -> Result<(), MapsError> {
        self.step()?;
        self.maps.policies[id as usize] = *table;
        Ok(())
    }
    fn add_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.step()?;
        self.maps.locals.insert(addr);
        Ok(())
    }
    fn del_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.step()?;
        self.maps.locals.remove(&addr);
        Ok(())
    }
    fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        self.step()?;
        self.maps.prefixes.insert(net, entry);
        Ok(())
    }
    fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError> {
        self.step()?;
        Ok(self.maps.prefixes.remove(&net).is_some())
    }
    fn set_prefixes(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        for (i, (net, e)) in items.iter().enumerate() {
            self.check_prefix(e);
            if let Err(err) = self.set_prefix(*net, *e) {
                return (i, Err(err));
            }
        }
        (items.len(), Ok(()))
    }
    fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        for (i, net) in nets.iter().enumerate() {
            if let Err(err) = self.del_prefix(*net) {
                return (i, Err(err));
            }
        }
        (nets.len(), Ok(()))
    }
    fn reset_prefix_slot(&mut self, slot: u32) -> Result<(), MapsError> {
        self.step()?;
        self.reset.push(slot);
        Ok(())
    }
}

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
        (2, PortEntry { role: 1, id: 0 }),
        (3, PortEntry { role: 2, id: 1 }),
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
    b.ports.insert(4, PortEntry { role: 2, id: 1 });
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
