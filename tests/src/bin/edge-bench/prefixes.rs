//! Random prefixes shaped like the public routing table, addresses inside them, and the entries the bench registers for them.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use edge_common::PrefixEntry;
use edge_tests::harness::maps::prefix_slot;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::{Rng, SeedableRng, rngs::SmallRng};

/// Random IPv4 prefixes with a length mix like the public routing table
/// (mostly /24, then /22, /23, /21...), plus 1% longer than /24 (customer
/// registrations), in 1.0.0.0-223.255.255.255. Deterministic per seed.
pub struct PrefixGen {
    pub rng: SmallRng,
    pub seen: HashSet<IpNet>,
}

impl PrefixGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            seen: HashSet::new(),
        }
    }

    pub fn v4_len(&mut self) -> u8 {
        const MIX: [(u8, u32); 10] = [
            (24, 5900),
            (23, 1000),
            (22, 1100),
            (21, 500),
            (20, 450),
            (19, 300),
            (18, 180),
            (17, 120),
            (16, 320),
            (0, 130), // /8-/15 and /25-/32
        ];
        let mut r = self.rng.random_range(0..10_000u32);
        for (len, weight) in MIX {
            if r < weight {
                return match len {
                    0 if r < 30 => self.rng.random_range(8..16),
                    0 => self.rng.random_range(25..=32),
                    l => l,
                };
            }
            r -= weight;
        }
        24
    }

    pub fn v4(&mut self) -> Ipv4Net {
        loop {
            let len = self.v4_len();
            let a = self.rng.random_range(1u32 << 24..224 << 24);
            let net = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            if self.seen.insert(IpNet::V4(net)) {
                return net;
            }
        }
    }

    /// IPv6: mostly /48 and /32 (then /44, /40, /36, /29...) in 2000::/3.
    pub fn v6(&mut self) -> Ipv6Net {
        const MIX: [(u8, u32); 11] = [
            (48, 4800),
            (32, 1300),
            (44, 800),
            (40, 700),
            (36, 400),
            (29, 400),
            (46, 400),
            (47, 300),
            (56, 300),
            (64, 300),
            (28, 300),
        ];
        loop {
            let mut r = self.rng.random_range(0..10_000u32);
            let mut len = 48;
            for (l, weight) in MIX {
                if r < weight {
                    len = l;
                    break;
                }
                r -= weight;
            }
            let a: u128 = self.rng.random::<u128>() & (u128::MAX >> 3) | (1u128 << 125);
            let net = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
            if self.seen.insert(IpNet::V6(net)) {
                return net;
            }
        }
    }
}

pub fn host_in(net: IpNet, rng: &mut SmallRng) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let host = rng.random::<u32>() & !u32::from(n.netmask());
            IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
        }
        IpNet::V6(n) => {
            let host = rng.random::<u128>() & !u128::from(n.netmask());
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
        }
    }
}

pub fn bench_entry(i: usize) -> PrefixEntry {
    PrefixEntry {
        slot: prefix_slot(i + 1),
        policy: 0,
        ..PrefixEntry::default()
    }
}

/// [`bench_entry`] in policy table `policy` (the id compile gave the
/// config's policy: exits have tables too, so it is not 0).
pub fn bench_entry_in(i: usize, policy: u32) -> PrefixEntry {
    PrefixEntry {
        policy,
        ..bench_entry(i)
    }
}
