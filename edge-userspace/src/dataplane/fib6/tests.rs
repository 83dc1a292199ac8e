use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::SmallRng};

use super::*;

fn entry(slot: u32) -> PrefixEntry {
    PrefixEntry {
        slot,
        ..PrefixEntry::default()
    }
}

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The plain reference: every registered prefix, longest match by trying
/// each length in use from the longest down.
struct Reference(Vec<HashMap<u128, PrefixEntry>>);

impl Reference {
    fn new() -> Self {
        Self(vec![HashMap::new(); 129])
    }
    fn lookup(&self, a: Ipv6Addr) -> Option<PrefixEntry> {
        let a = u128::from(a);
        (0..=128u32)
            .rev()
            .filter(|&l| !self.0[l as usize].is_empty())
            .find_map(|l| self.0[l as usize].get(&trunc(a, l)).copied())
    }
}

fn slot(fib: &Fib6<VecStore6>, a: &str) -> Option<u32> {
    fib.lookup(addr(a)).map(|e| e.slot)
}

#[test]
fn default_route_host_routes_and_overlaps() {
    let mut fib = Fib6::new(VecStore6::new(300, 64, 64));
    fib.insert(net("::/0"), entry(1)).unwrap();
    assert_eq!(slot(&fib, "2001:db8::1"), Some(1));
    assert_eq!(slot(&fib, "ffff::1"), Some(1));
    fib.insert(net("2001:db8::/32"), entry(2)).unwrap();
    fib.insert(net("2001:db8:1::/48"), entry(3)).unwrap();
    fib.insert(net("2001:db8:1::7/128"), entry(4)).unwrap();
    fib.insert(net("2001:db8:1::/47"), entry(5)).unwrap();
    assert_eq!(slot(&fib, "2001:db8:1::7"), Some(4));
    assert_eq!(slot(&fib, "2001:db8:1::8"), Some(3));
    assert_eq!(slot(&fib, "2001:db8::8"), Some(5));
    assert_eq!(slot(&fib, "2001:db8:2::8"), Some(2));
    assert_eq!(slot(&fib, "2001:db9::"), Some(1));
    // A /16 and a /17 on either side of the root's boundary.
    fib.insert(net("2001::/16"), entry(6)).unwrap();
    fib.insert(net("2001:8000::/17"), entry(7)).unwrap();
    assert_eq!(slot(&fib, "2001:1::"), Some(6));
    assert_eq!(slot(&fib, "2001:8001::"), Some(7));
    assert_eq!(slot(&fib, "2001:db8:2::8"), Some(2));
    // Deleting falls back to the next shorter prefix, at every level.
    assert_eq!(fib.remove(net("2001:db8:1::/48")).unwrap(), Some(entry(3)));
    assert_eq!(slot(&fib, "2001:db8:1::8"), Some(5));
    assert_eq!(slot(&fib, "2001:db8:1::7"), Some(4));
    fib.remove(net("2001:db8::/32")).unwrap();
    assert_eq!(slot(&fib, "2001:db8:2::8"), Some(6));
    assert_eq!(slot(&fib, "2001:db8:1::8"), Some(5));
    fib.remove(net("::/0")).unwrap();
    assert_eq!(slot(&fib, "ffff::1"), None);
    assert_eq!(slot(&fib, "2001:db8:1::7"), Some(4));
    assert_eq!(fib.remove(net("::/0")).unwrap(), None);
    // Replacing an entry changes the answer in place, a tail's too.
    fib.insert(net("2001:db8:1::7/128"), entry(9)).unwrap();
    assert_eq!(slot(&fib, "2001:db8:1::7"), Some(9));
    assert_eq!(fib.len(), 4);
}

#[test]
fn tails_split_into_nodes_and_shrink_back() {
    let mut fib = Fib6::new(VecStore6::new(300, 64, 64));
    fib.insert(net("2001:db8::/32"), entry(1)).unwrap();
    // Alone below its /16: a tail, no node.
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (0, 1));
    // Two prefixes below 2001::/16: nodes down to where they part (the
    // /32 painted into its /24's node), the /48 a tail below the /32.
    fib.insert(net("2001:db8:aa::/48"), entry(2)).unwrap();
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (2, 1));
    // Two /48s sharing the /40: nodes down to the /40, then two tails.
    fib.insert(net("2001:db8:ab::/48"), entry(3)).unwrap();
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (4, 0));
    assert_eq!(slot(&fib, "2001:db8:aa::1"), Some(2));
    assert_eq!(slot(&fib, "2001:db8:ab::1"), Some(3));
    assert_eq!(slot(&fib, "2001:db8:ac::1"), Some(1));
    // Back to one below the /32: its nodes become a tail again; then none.
    fib.remove(net("2001:db8:ab::/48")).unwrap();
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (2, 1));
    assert_eq!(slot(&fib, "2001:db8:aa::1"), Some(2));
    assert_eq!(slot(&fib, "2001:db8:ab::1"), Some(1));
    fib.remove(net("2001:db8:aa::/48")).unwrap();
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (0, 1));
    assert_eq!(slot(&fib, "2001:db8:aa::1"), Some(1));
    fib.remove(net("2001:db8::/32")).unwrap();
    assert_eq!((fib.nodes_in_use(), fib.tails_in_use()), (0, 0));
    assert_eq!(slot(&fib, "2001:db8:aa::1"), None);
    assert_eq!(fib.leaves_in_use(), 0);
}

#[test]
fn equal_entries_share_a_leaf_and_freed_ones_wait_for_a_grace_period() {
    let mut fib = Fib6::new(VecStore6::new(300, 64, 3));
    fib.insert(net("2001:db8:1::/48"), entry(7)).unwrap();
    fib.insert(net("2001:db8:2::/48"), entry(7)).unwrap();
    fib.insert(net("2001:db8:3::/48"), entry(8)).unwrap();
    assert_eq!(fib.leaves_in_use(), 2);
    // Leaves 1 and 2 are taken (the limit is 3, leaf 0 is "none"):
    // freeing one and taking one again waits for a grace period.
    fib.remove(net("2001:db8:3::/48")).unwrap();
    let graces = fib.store().leaves.graces;
    fib.insert(net("2001:db8:4::/48"), entry(9)).unwrap();
    assert_eq!(fib.store().leaves.graces, graces + 1);
    let err = fib.insert(net("2001:db8:5::/48"), entry(10)).unwrap_err();
    assert!(matches!(err, MapsError::MapFull { map, limit: 3 } if map == map_names::FIB6_LEAVES));
    assert_eq!(slot(&fib, "2001:db8:5::1"), None);
    assert_eq!(slot(&fib, "2001:db8:4::1"), Some(9));
}

#[test]
fn full_tables_fail_cleanly_naming_the_map() {
    // Room for 16 nodes below the root: the first insert that could need
    // more than what is left is refused, and nothing changes.
    let mut fib = Fib6::new(VecStore6::new(fib6::ROOT_BLOCKS + 16, 64, 64));
    fib.insert(net("2001:db8:1::/64"), entry(1)).unwrap();
    fib.insert(net("2001:db8:1:0:1::/80"), entry(2)).unwrap();
    assert_eq!(fib.nodes_in_use(), 6);
    let err = fib.insert(net("2001:db8:2::/48"), entry(3)).unwrap_err();
    assert!(
        matches!(err, MapsError::MapFull { map, limit } if map == map_names::FIB6_NODES && limit == fib6::ROOT_BLOCKS + 16)
    );
    assert_eq!(slot(&fib, "2001:db8:2::1"), None);
    assert_eq!(fib.get(net("2001:db8:2::/48")), None);
    assert!(err.to_string().contains("EDGE_FIB6_NODE is full"), "{err}");
    // Tails: 4 records, 3 kept as headroom.
    let mut fib = Fib6::new(VecStore6::new(300, 4, 64));
    fib.insert(net("2001:db8::/48"), entry(1)).unwrap();
    fib.insert(net("2002:db8::/48"), entry(2)).unwrap();
    let err = fib.insert(net("2003:db8::/48"), entry(3)).unwrap_err();
    assert!(matches!(err, MapsError::MapFull { map, limit: 4 } if map == map_names::FIB6_TAILS));
    assert_eq!(slot(&fib, "2003:db8::1"), None);
    assert_eq!(slot(&fib, "2001:db8::1"), Some(1));
    // Deleting makes room again.
    fib.remove(net("2001:db8::/48")).unwrap();
    fib.insert(net("2003:db8::/48"), entry(3)).unwrap();
    assert_eq!(slot(&fib, "2003:db8::1"), Some(3));
}

#[test]
fn recovery_repairs_updates_cut_short() {
    let mut fib = Fib6::new(VecStore6::new(300, 64, 64));
    fib.insert(net("2001:db8::/32"), entry(1)).unwrap();
    fib.insert(net("2001:db8:1::/48"), entry(2)).unwrap();
    fib.insert(net("2001:db8:2::/48"), entry(3)).unwrap();
    // A delete cut short after the tables, before the registry: the
    // registry still holds 2001:db8:2::/48. An insert cut short after the
    // registry, before the tables: it holds 2001:db8:3::/64 already.
    fib.remove(net("2001:db8:2::/48")).unwrap();
    let registry = [
        (net("2001:db8::/32"), entry(1)),
        (net("2001:db8:1::/48"), entry(2)),
        (net("2001:db8:2::/48"), entry(3)),
        (net("2001:db8:3::/64"), entry(4)),
    ];
    let Fib6 { store, .. } = fib;
    let mut fib = Fib6::new(store);
    fib.recover(registry).unwrap();
    assert_eq!(slot(&fib, "2001:db8:1::1"), Some(2));
    assert_eq!(slot(&fib, "2001:db8:2::1"), Some(3));
    assert_eq!(slot(&fib, "2001:db8:3::1"), Some(4));
    assert_eq!(slot(&fib, "2001:db8:3:1::1"), Some(1));
    // The counts below each node are right: deleting everything frees all.
    for (n, _) in registry {
        fib.remove(n).unwrap().unwrap();
    }
    assert_eq!(
        (fib.nodes_in_use(), fib.tails_in_use(), fib.leaves_in_use()),
        (0, 0, 0)
    );
    assert_eq!(slot(&fib, "2001:db8:1::1"), None);
}

/// Allocations the random prefixes are carved from (a /29-/32 each, in the
/// registries' blocks), so that prefixes nest and overlap as in the public
/// table.
fn allocations(rng: &mut SmallRng, n: usize) -> Vec<(u128, u8)> {
    const BLOCKS: [u128; 5] = [0x2001, 0x2400, 0x2600, 0x2800, 0x2a00];
    (0..n)
        .map(|_| {
            let top = BLOCKS[rng.random_range(0..BLOCKS.len())] + rng.random_range(0..16);
            let a = (top << 112) | (u128::from(rng.random::<u16>()) << 96);
            let len = if rng.random_bool(0.3) { 29 } else { 32 };
            (trunc(a, len.into()), len)
        })
        .collect()
}

/// A random prefix with a length mix like the public IPv6 table (mostly
/// /48, then /32, /44, /40, /36, /29, some /56, /64 and host routes; a few
/// shorter than /17), inside one of `allocs`.
fn random_net(rng: &mut SmallRng, allocs: &[(u128, u8)]) -> Ipv6Net {
    let (base, alen) = allocs[rng.random_range(0..allocs.len())];
    let len: u8 = match rng.random_range(0..1000) {
        0..450 => 48,
        450..580 => alen,
        580..660 => 44,
        660..730 => 40,
        730..770 => 36,
        770..820 => 46 + rng.random_range(0..2),
        820..860 => 56,
        860..900 => 64,
        900..920 => 128,
        920..950 => rng.random_range(33..48),
        950..975 => rng.random_range(65..128),
        975..999 => rng.random_range(17..29),
        _ => rng.random_range(0..17),
    };
    let a = base | (rng.random::<u128>() >> alen);
    Ipv6Net::new(Ipv6Addr::from(trunc(a, len.into())), len).unwrap()
}

/// An address to look up: inside a registered prefix, near one, or anywhere
/// in the registries' blocks.
fn random_addr(rng: &mut SmallRng, nets: &[Ipv6Net]) -> Ipv6Addr {
    let n = nets[rng.random_range(0..nets.len())];
    let inside = u128::from(n.network()) | (rng.random::<u128>() & !u128::from(n.netmask()));
    match rng.random_range(0..4) {
        0 | 1 => Ipv6Addr::from(inside),
        2 => Ipv6Addr::from(inside ^ (1u128 << rng.random_range(0..128))),
        _ => Ipv6Addr::from((0x2000u128 << 112) | (rng.random::<u128>() >> 4)),
    }
}

/// The differential test: 1,000,000 random lookups against the plain
/// reference over a random table of 100k prefixes shaped like the public
/// table, with adds, deletes and replacements in between, and the
/// recovered model (as after a daemon restart) agreeing with the
/// original at the end.
#[test]
fn agrees_with_a_plain_reference_over_a_million_lookups() {
    let mut rng = SmallRng::seed_from_u64(6);
    let allocs = allocations(&mut rng, 4000);
    let mut fib = Fib6::new(VecStore6::default());
    let mut reference = Reference::new();
    let mut nets = Vec::new();
    let add = |fib: &mut Fib6<VecStore6>,
               reference: &mut Reference,
               nets: &mut Vec<Ipv6Net>,
               rng: &mut SmallRng| {
        let n = random_net(rng, &allocs);
        // Few distinct entries, so leaves are shared and freed.
        let e = entry(rng.random_range(0..2000));
        fib.insert(n, e).unwrap();
        let l = n.prefix_len() as usize;
        if reference.0[l].insert(u128::from(n.network()), e).is_none() {
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
            let a = random_addr(&mut rng, &nets);
            assert_eq!(fib.lookup(a), reference.lookup(a), "{a} in round {round}");
            checked += 1;
        }
        // Between rounds: deletes, adds and replacements.
        for _ in 0..50 {
            let n = nets.swap_remove(rng.random_range(0..nets.len()));
            let e = reference.0[n.prefix_len() as usize].remove(&u128::from(n.network()));
            assert_eq!(fib.remove(n).unwrap(), e);
            add(&mut fib, &mut reference, &mut nets, &mut rng);
        }
        for _ in 0..10 {
            let n = nets[rng.random_range(0..nets.len())];
            let e = entry(rng.random_range(0..2000));
            fib.insert(n, e).unwrap();
            reference.0[n.prefix_len() as usize].insert(u128::from(n.network()), e);
        }
    }
    assert_eq!(checked, 1_000_000);
    let (nodes, tails) = (fib.nodes_in_use(), fib.tails_in_use());
    assert!(nodes > 1000 && tails > 1000, "{nodes} nodes, {tails} tails");

    // Recovery from the tables and the registry gives the same answers and
    // the same structure.
    let registry: Vec<_> = nets.iter().map(|&n| (n, fib.get(n).unwrap())).collect();
    let Fib6 { store, .. } = fib;
    let mut recovered = Fib6::new(store);
    recovered.recover(registry).unwrap();
    assert_eq!(
        (recovered.nodes_in_use(), recovered.tails_in_use()),
        (nodes, tails)
    );
    let check =
        |fib: &Fib6<VecStore6>, reference: &Reference, rng: &mut SmallRng, nets: &[Ipv6Net]| {
            for _ in 0..100_000 {
                let a = random_addr(rng, nets);
                assert_eq!(fib.lookup(a), reference.lookup(a), "{a} after recovery");
                assert_eq!(lookup_in(fib.store(), a).unwrap(), reference.lookup(a));
            }
        };
    check(&recovered, &reference, &mut rng, &nets);
    // The recovered model keeps updating correctly, down to nothing.
    for n in nets.drain(..50_000) {
        let e = reference.0[n.prefix_len() as usize].remove(&u128::from(n.network()));
        assert_eq!(recovered.remove(n).unwrap(), e);
    }
    check(&recovered, &reference, &mut rng, &nets);
    for n in nets.drain(..) {
        recovered.remove(n).unwrap().unwrap();
    }
    assert_eq!(
        (
            recovered.nodes_in_use(),
            recovered.tails_in_use(),
            recovered.leaves_in_use()
        ),
        (0, 0, 0)
    );
    assert!(
        recovered.store().nodes()[..ROOT_ENTRIES]
            .iter()
            .all(|e| e.load(Ordering::Relaxed) == 0)
    );
}

/// As for IPv4: the registry slot stays through a replaced entry and goes
/// with the prefix.
#[test]
fn a_prefix_keeps_its_registry_slot_until_removed() {
    let mut fib = Fib6::new(VecStore6::new(300, 64, 64));
    let net: Ipv6Net = "2001:db8:5::/48".parse().unwrap();
    assert!(!fib.set_slot(net, 7));
    fib.insert(net, entry(1)).unwrap();
    assert!(fib.set_slot(net, 7));
    fib.insert(net, entry(2)).unwrap();
    assert_eq!((fib.slot(net), fib.get(net)), (Some(7), Some(entry(2))));
    fib.remove(net).unwrap();
    assert_eq!(fib.slot(net), None);
}
