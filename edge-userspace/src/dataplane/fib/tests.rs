use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::SmallRng};

use super::*;

fn entry(slot: u32) -> PrefixEntry {
    PrefixEntry {
        slot,
        ..PrefixEntry::default()
    }
}

/// The plain reference: every registered prefix, longest match by
/// trying each length from /32 down.
#[derive(Default)]
struct Reference(Vec<HashMap<u32, PrefixEntry>>);

impl Reference {
    fn new() -> Self {
        Self(vec![HashMap::new(); 33])
    }
    fn lookup(&self, a: Ipv4Addr) -> Option<PrefixEntry> {
        let a = u32::from(a);
        (0..=32u32).rev().find_map(|l| {
            let n = if l == 0 {
                0
            } else {
                a & (u32::MAX << (32 - l))
            };
            self.0[l as usize].get(&n).copied()
        })
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn longest_match_through_blocks_and_back() {
    let mut fib = Fib4::new(VecStore::new(16, 64));
    let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    fib.insert(net("10.0.0.0/8"), entry(1)).unwrap();
    fib.insert(net("10.1.2.0/24"), entry(2)).unwrap();
    fib.insert(net("10.1.2.128/25"), entry(3)).unwrap();
    fib.insert(net("10.1.2.200/32"), entry(4)).unwrap();
    let slot = |fib: &Fib4<VecStore>, s: &str| fib.lookup(a(s)).map(|e| e.slot);
    assert_eq!(slot(&fib, "10.9.9.9"), Some(1));
    assert_eq!(slot(&fib, "10.1.2.1"), Some(2));
    assert_eq!(slot(&fib, "10.1.2.129"), Some(3));
    assert_eq!(slot(&fib, "10.1.2.200"), Some(4));
    assert_eq!(slot(&fib, "11.0.0.0"), None);
    assert_eq!(fib.blocks_in_use(), 1);
    // A shorter prefix inserted later does not hide longer ones, in blocks too.
    fib.insert(net("10.1.0.0/16"), entry(5)).unwrap();
    assert_eq!(slot(&fib, "10.1.2.200"), Some(4));
    assert_eq!(slot(&fib, "10.1.3.1"), Some(5));
    // Deleting falls back to the next shorter prefix; the block goes
    // when nothing longer than /24 is left in it.
    assert_eq!(fib.remove(net("10.1.2.128/25")).unwrap(), Some(entry(3)));
    assert_eq!(slot(&fib, "10.1.2.129"), Some(2));
    fib.remove(net("10.1.2.200/32")).unwrap();
    assert_eq!(slot(&fib, "10.1.2.200"), Some(2));
    assert_eq!(fib.blocks_in_use(), 0);
    fib.remove(net("10.1.2.0/24")).unwrap();
    assert_eq!(slot(&fib, "10.1.2.1"), Some(5));
    assert_eq!(fib.remove(net("10.1.2.0/24")).unwrap(), None);
    // Replacing an entry changes the answer in place.
    fib.insert(net("10.0.0.0/8"), entry(9)).unwrap();
    assert_eq!(slot(&fib, "10.9.9.9"), Some(9));
    assert_eq!(fib.len(), 2);
}

#[test]
fn equal_entries_share_a_leaf_and_freed_ones_wait_for_a_grace_period() {
    let mut fib = Fib4::new(VecStore::new(4, 4));
    fib.insert(net("192.0.2.0/24"), entry(7)).unwrap();
    fib.insert(net("198.51.100.0/24"), entry(7)).unwrap();
    assert_eq!(fib.leaves_in_use(), 1);
    fib.insert(net("203.0.113.0/24"), entry(8)).unwrap();
    fib.insert(net("203.0.113.0/25"), entry(9)).unwrap();
    assert_eq!(fib.leaves_in_use(), 3);
    // Ids 1..3 are taken (the limit is 4, leaf 0 is "none"): freeing
    // one and allocating again must wait for a grace period.
    fib.remove(net("203.0.113.0/25")).unwrap();
    assert_eq!(fib.store().leaves.graces, 0);
    fib.insert(net("203.0.113.0/26"), entry(10)).unwrap();
    assert_eq!(fib.store().leaves.graces, 1);
    assert_eq!(fib.lookup("203.0.113.1".parse().unwrap()), Some(entry(10)));
    // Full: the error names the map and its limit, and nothing changed.
    let err = fib.insert(net("203.0.113.64/26"), entry(11)).unwrap_err();
    assert!(matches!(err, MapsError::MapFull { map, .. } if map == map_names::FIB4_LEAVES));
    assert_eq!(fib.lookup("203.0.113.65".parse().unwrap()), Some(entry(8)));
}

#[test]
fn blocks_run_out_cleanly() {
    let mut fib = Fib4::new(VecStore::new(1, 64));
    fib.insert(net("192.0.2.0/25"), entry(1)).unwrap();
    let err = fib.insert(net("198.51.100.0/25"), entry(2)).unwrap_err();
    assert!(matches!(err, MapsError::MapFull { map, limit: 1 } if map == map_names::FIB4_TBL8));
    assert_eq!(fib.lookup("198.51.100.1".parse().unwrap()), None);
    assert_eq!(fib.leaves_in_use(), 1);
}

/// A random prefix with a routing-table-like length mix (some longer than /24).
fn random_net(rng: &mut SmallRng) -> Ipv4Net {
    let len = match rng.random_range(0..100) {
        0..55 => 24,
        55..65 => 23,
        65..75 => 22,
        75..82 => 20 + rng.random_range(0..2),
        82..88 => 16 + rng.random_range(0..4),
        88..90 => rng.random_range(8..16),
        _ => rng.random_range(25..=32),
    };
    // Addresses from a few /8s, so prefixes nest and overlap.
    let a = (rng.random_range(1..5u32) << 24) | rng.random_range(0..1 << 24);
    Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc()
}

/// The differential test: 1,000,000 random lookups against the plain
/// reference over a random table of 100k prefixes, with adds, deletes
/// and replacements in between, and the recovered model (as after a
/// daemon restart) agreeing with the original at the end.
#[test]
fn agrees_with_a_plain_reference_over_a_million_lookups() {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut fib = Fib4::new(VecStore::default());
    let mut reference = Reference::new();
    let mut nets = Vec::new();
    let add = |fib: &mut Fib4<VecStore>,
               reference: &mut Reference,
               nets: &mut Vec<Ipv4Net>,
               rng: &mut SmallRng| {
        let n = random_net(rng);
        // Few distinct entries, so leaves are shared and freed.
        let e = entry(rng.random_range(0..2000));
        fib.insert(n, e).unwrap();
        let l = n.prefix_len() as usize;
        if reference.0[l].insert(u32::from(n.network()), e).is_none() {
            nets.push(n);
        }
    };
    while nets.len() < 100_000 {
        add(&mut fib, &mut reference, &mut nets, &mut rng);
    }
    assert_eq!(fib.len(), nets.len());
    let mut checked = 0u32;
    for round in 0..1000 {
        for _ in 0..1000 {
            // Half the lookups inside a registered prefix, half anywhere in the /8s used.
            let a = if rng.random_bool(0.5) {
                let n = nets[rng.random_range(0..nets.len())];
                u32::from(n.network()) | (rng.random::<u32>() & !u32::from(n.netmask()))
            } else {
                rng.random_range(1u32 << 24..6 << 24)
            };
            let a = Ipv4Addr::from(a);
            assert_eq!(fib.lookup(a), reference.lookup(a), "{a} in round {round}");
            checked += 1;
        }
        // Between rounds: deletes, adds and replacements.
        for _ in 0..50 {
            let i = rng.random_range(0..nets.len());
            let n = nets.swap_remove(i);
            let l = n.prefix_len() as usize;
            let e = reference.0[l].remove(&u32::from(n.network()));
            assert_eq!(fib.remove(n).unwrap(), e);
            add(&mut fib, &mut reference, &mut nets, &mut rng);
        }
        for _ in 0..10 {
            let n = nets[rng.random_range(0..nets.len())];
            let e = entry(rng.random_range(0..2000));
            fib.insert(n, e).unwrap();
            reference.0[n.prefix_len() as usize].insert(u32::from(n.network()), e);
        }
    }
    assert_eq!(checked, 1_000_000);
    assert!(fib.blocks_in_use() > 100, "{} blocks", fib.blocks_in_use());

    // Recovery from the tables and the registry gives the same answers.
    let registry: Vec<_> = nets.iter().map(|&n| (n, fib.get(n).unwrap())).collect();
    let Fib4 { store, .. } = fib;
    let mut recovered = Fib4::new(store);
    recovered.recover(registry).unwrap();
    for _ in 0..100_000 {
        let a = Ipv4Addr::from(rng.random_range(1u32 << 24..6 << 24));
        assert_eq!(
            recovered.lookup(a),
            reference.lookup(a),
            "{a} after recovery"
        );
        assert_eq!(
            lookup_in(recovered.store(), a).unwrap(),
            reference.lookup(a)
        );
    }
}

/// The registry slot kept with a prefix stays through a replaced entry and
/// goes with the prefix (the registry has no index of its own).
#[test]
fn a_prefix_keeps_its_registry_slot_until_removed() {
    let mut fib = Fib4::new(VecStore::new(4, 64));
    let net: Ipv4Net = "198.51.100.0/24".parse().unwrap();
    assert!(
        !fib.set_slot(net, 7),
        "an unregistered prefix takes no slot"
    );
    fib.insert(net, entry(1)).unwrap();
    assert_eq!(fib.slot(net), None);
    assert!(fib.set_slot(net, 7));
    fib.insert(net, entry(2)).unwrap();
    assert_eq!((fib.slot(net), fib.get(net)), (Some(7), Some(entry(2))));
    fib.remove(net).unwrap();
    assert_eq!(fib.slot(net), None);
    fib.insert(net, entry(3)).unwrap();
    assert_eq!(fib.slot(net), None, "a new registration starts without one");
}
