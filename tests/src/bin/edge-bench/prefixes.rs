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

/// The real-shaped IPv6 table's length mix, per 10,000 prefixes: the
/// public table's (bgp.potaroo.net and the CIDR report: /48 about half of
/// it, then /32, /44, /40, /36, /29, a tail of /46-/47, /56, /64 and odd
/// lengths).
const V6_REAL_MIX: [(u8, u32); 13] = [
    (48, 4500),
    (32, 1400),
    (44, 800),
    (40, 700),
    (36, 400),
    (29, 400),
    (46, 300),
    (47, 200),
    (56, 300),
    (64, 300),
    (28, 200),
    (0, 300), // /33-/47 not above
    (1, 200), // /17-/27 and /49-/63
];

/// The registries' blocks and their share of allocations, per 100: RIPE
/// 2a00::/12, ARIN 2600::/12, APNIC 2400::/12, the early 2001::/16,
/// LACNIC 2800::/12, AFRINIC 2c00::/12.
const V6_BLOCKS: [(u128, u8, u32); 6] = [
    (0x2a00, 12, 45),
    (0x2600, 12, 20),
    (0x2400, 12, 20),
    (0x2001, 16, 10),
    (0x2800, 12, 4),
    (0x2c00, 12, 1),
];

/// Prefixes shaped like the public IPv6 table: lengths as
/// [`V6_REAL_MIX`], carved out of allocations (a /29 or /32 each, in the
/// registries' blocks) the way holders announce them: an allocation's
/// more-specifics sit inside it, a few holders deaggregate much more than
/// the rest, and a quarter of the /48s are provider-independent
/// assignments, handed out in order from a few assignment blocks.
pub struct RealV6 {
    rng: SmallRng,
    seen: HashSet<Ipv6Net>,
    allocations: Vec<(u128, u8)>,
    pi_blocks: Vec<u128>,
}

impl RealV6 {
    /// About one allocation per six prefixes (the public table: ~35,000
    /// allocations announce ~220,000 prefixes).
    pub fn new(seed: u64, prefixes: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let allocations = (0..prefixes.div_ceil(6))
            .map(|_| {
                let mut r = rng.random_range(0..100u32);
                let (mut block, mut blen) = (0x2a00u128, 12u8);
                for (b, l, share) in V6_BLOCKS {
                    if r < share {
                        (block, blen) = (b, l);
                        break;
                    }
                    r -= share;
                }
                let len = if rng.random_bool(0.2) { 29 } else { 32 };
                let a = (block << 112) | (rng.random::<u128>() >> blen);
                (trunc6(a, len), len)
            })
            .collect();
        // 2001:678::/29-like PI blocks: 16 /32s.
        let pi_blocks = (0..16)
            .map(|_| trunc6((0x2a0e_u128 << 112) | (rng.random::<u128>() >> 16), 32))
            .collect();
        Self {
            rng,
            seen: HashSet::new(),
            allocations,
            pi_blocks,
        }
    }

    pub fn next(&mut self) -> Ipv6Net {
        loop {
            let mut r = self.rng.random_range(0..10_000u32);
            let mut len = 48;
            for (l, weight) in V6_REAL_MIX {
                if r < weight {
                    len = match l {
                        0 => loop {
                            let l = self.rng.random_range(33..48);
                            if !matches!(l, 36 | 40 | 44 | 46 | 47) {
                                break l;
                            }
                        },
                        1 if self.rng.random_bool(0.5) => self.rng.random_range(17..28),
                        1 => self.rng.random_range(49..64),
                        l => l,
                    };
                    break;
                }
                r -= weight;
            }
            let base = if len == 48 && self.rng.random_bool(0.25) {
                // A PI assignment: the next /48s of a few /32s, packed.
                let b = self.pi_blocks[self.rng.random_range(0..self.pi_blocks.len())];
                b | (u128::from(self.rng.random_range(0..4096u32)) << 80)
            } else {
                // Skewed toward the first allocations: a few holders
                // announce many more-specifics.
                let u: f64 = self.rng.random();
                let i = ((u * u * u) * self.allocations.len() as f64) as usize;
                let (a, alen) = self.allocations[i.min(self.allocations.len() - 1)];
                a | (self.rng.random::<u128>() >> alen)
            };
            let net = Ipv6Net::new(Ipv6Addr::from(trunc6(base, len)), len).unwrap();
            if self.seen.insert(net) {
                return net;
            }
        }
    }

    /// An address in the registries' blocks, for misses.
    pub fn anywhere(&mut self) -> Ipv6Addr {
        let (block, blen, _) = V6_BLOCKS[self.rng.random_range(0..V6_BLOCKS.len())];
        Ipv6Addr::from((block << 112) | (self.rng.random::<u128>() >> blen))
    }
}

/// `a`'s first `len` bits.
fn trunc6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
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
