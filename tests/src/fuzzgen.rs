//! A seeded generator of hostile frames for the packet fuzzer
//! (tests/tests/fuzz.rs).
//!
//! Frame `index` of seed `seed` depends on nothing else: its random stream
//! is ChaCha8 keyed by the seed, stream number `index`. So a failing frame
//! replays alone (`EDGE_FUZZ_SEED=<seed> EDGE_FUZZ_START=<index>
//! EDGE_FUZZ_FRAMES=1`) and the sequence is the same on every machine.
//!
//! Every frame starts as a valid Ethernet / VLAN / IP frame (0-3 tags of
//! 802.1Q or 802.1ad, IPv4 with or without options and fragments, IPv6 with
//! or without an extension chain, UDP / TCP / ICMP / anything, addresses
//! inside and outside the registered prefixes, TTL 0 / 1 / 255 / ...), then
//! is used as is, or has one field mutated, or is cut at a header boundary,
//! or gets a lying length field; or the frame is random bytes; or it is a
//! padded frame (`Kind::Padded`: a datagram too short for its ports or
//! ICMPv6 type, with them in the Ethernet padding after it).

use std::net::IpAddr;

use ipnet::IpNet;
use rand::{Rng as _, RngCore as _, SeedableRng as _, seq::IndexedRandom as _};
use rand_chacha::ChaCha8Rng;

/// Shortest frame BPF_PROG_TEST_RUN accepts for XDP (an Ethernet header).
pub const MIN_FRAME: usize = 14;
/// Longest frame generated (fits BPF_PROG_TEST_RUN's one page with headroom).
pub const MAX_FRAME: usize = 1600;

/// What was done to the frame; printed with a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Random bytes (sometimes with an IP EtherType and version nibble).
    Random,
    /// A valid frame, unchanged.
    Valid,
    /// A valid frame with one header field or byte changed.
    Mutated,
    /// A valid frame cut at (or one byte around) a header boundary.
    Truncated,
    /// A valid frame whose IPv4 total length / IHL, IPv6 payload length or
    /// UDP length does not match the frame.
    LyingLength,
    /// An IP datagram (TCP, UDP or ICMPv6) whose length ends inside or
    /// before its transport header, in a frame padded to at least 60 bytes
    /// that holds the rest of the header after the datagram: the ports or
    /// the ICMPv6 type are there to be read, but only from the padding.
    Padded,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Random,
        Kind::Valid,
        Kind::Mutated,
        Kind::Truncated,
        Kind::LyingLength,
        Kind::Padded,
    ];
}

/// One generated frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub bytes: Vec<u8>,
    /// Index into the generator's ingress list.
    pub ingress: usize,
    pub kind: Kind,
}

/// Where the headers of a valid frame start and end.
#[derive(Clone, Debug, Default)]
struct Layout {
    /// Offset of the network header.
    l3: usize,
    v6: bool,
    /// Offset of the transport header (after options / extensions).
    l4: usize,
    /// IP protocol of the transport header.
    proto: u8,
    /// Offset just past the IP packet (before any Ethernet padding).
    end: usize,
    /// Every header boundary, in order.
    boundaries: Vec<usize>,
}

/// Addresses the generator draws from.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    prefixes_v4: Vec<IpNet>,
    prefixes_v6: Vec<IpNet>,
    locals_v4: Vec<[u8; 4]>,
    locals_v6: Vec<[u8; 16]>,
    ingress_count: usize,
}

const SPECIAL_V4: [[u8; 4]; 7] = [
    [224, 0, 0, 5],
    [255, 255, 255, 255],
    [0, 0, 0, 0],
    [127, 0, 0, 1],
    [240, 0, 0, 1],
    [239, 1, 2, 3],
    [223, 255, 255, 255],
];

const SPECIAL_V6: [[u8; 16]; 5] = [
    [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfe, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0; 16],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
];

/// IPv6 extension headers (RFC 8200 §4 and IANA) the chains are made of.
/// Hop-by-hop (0) first: it may only open a chain.
const V6_EXTENSIONS: [u8; 10] = [0, 43, 44, 50, 51, 60, 135, 139, 140, 253];

impl Generator {
    /// A generator for `seed` drawing addresses from `prefixes` (registered)
    /// and `locals` (the host's own), with `ingress_count` ingress choices.
    pub fn new(seed: u64, prefixes: &[IpNet], locals: &[IpAddr], ingress_count: usize) -> Self {
        assert!(ingress_count > 0);
        Self {
            seed,
            prefixes_v4: prefixes
                .iter()
                .filter(|p| p.addr().is_ipv4())
                .copied()
                .collect(),
            prefixes_v6: prefixes
                .iter()
                .filter(|p| p.addr().is_ipv6())
                .copied()
                .collect(),
            locals_v4: locals
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(a.octets()),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            locals_v6: locals
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(a) => Some(a.octets()),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            ingress_count,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Frame number `index`.
    pub fn frame(&self, index: u64) -> Frame {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let ingress = rng.random_range(0..self.ingress_count);
        let roll = rng.random_range(0..100);
        let kind = match roll {
            0..10 => Kind::Random,
            10..32 => Kind::Valid,
            32..60 => Kind::Mutated,
            60..74 => Kind::Truncated,
            74..92 => Kind::LyingLength,
            _ => Kind::Padded,
        };
        let bytes = match kind {
            Kind::Random => random_frame(&mut rng),
            Kind::Valid => self.valid(&mut rng).0,
            Kind::Mutated => {
                let (mut f, l) = self.valid(&mut rng);
                mutate(&mut rng, &mut f, &l);
                f
            }
            Kind::Truncated => {
                let (mut f, l) = self.valid(&mut rng);
                let at = *l.boundaries.choose(&mut rng).expect("boundaries");
                let at = (at + rng.random_range(0..=2usize)).saturating_sub(1);
                f.truncate(at.clamp(MIN_FRAME, f.len()));
                f
            }
            Kind::LyingLength => {
                let (mut f, l) = self.valid(&mut rng);
                lie(&mut rng, &mut f, &l);
                f
            }
            Kind::Padded => self.padded(&mut rng),
        };
        debug_assert!((MIN_FRAME..=MAX_FRAME).contains(&bytes.len()));
        Frame {
            bytes,
            ingress,
            kind,
        }
    }

    fn addr_v4(&self, rng: &mut ChaCha8Rng) -> [u8; 4] {
        match rng.random_range(0..100) {
            0..65 if !self.prefixes_v4.is_empty() => {
                let p = self.prefixes_v4.choose(rng).unwrap();
                let IpAddr::V4(base) = p.network() else {
                    unreachable!()
                };
                let host = u32::MAX.checked_shr(u32::from(p.prefix_len())).unwrap_or(0);
                (u32::from(base) | (rng.next_u32() & host)).to_be_bytes()
            }
            65..75 if !self.locals_v4.is_empty() => *self.locals_v4.choose(rng).unwrap(),
            75..85 => *SPECIAL_V4.choose(rng).unwrap(),
            _ => rng.next_u32().to_be_bytes(),
        }
    }

    fn addr_v6(&self, rng: &mut ChaCha8Rng) -> [u8; 16] {
        match rng.random_range(0..100) {
            0..60 if !self.prefixes_v6.is_empty() => {
                let p = self.prefixes_v6.choose(rng).unwrap();
                let IpAddr::V6(base) = p.network() else {
                    unreachable!()
                };
                let host = u128::MAX
                    .checked_shr(u32::from(p.prefix_len()))
                    .unwrap_or(0);
                (u128::from(base) | (rng.random::<u128>() & host)).to_be_bytes()
            }
            60..68 if !self.locals_v6.is_empty() => *self.locals_v6.choose(rng).unwrap(),
            68..76 => *SPECIAL_V6.choose(rng).unwrap(),
            76..88 => {
                // Somewhere in 2001:db8::/32, near the registered prefixes.
                let mut a: [u8; 16] = rng.random();
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                a
            }
            _ => rng.random(),
        }
    }

    /// A `Kind::Padded` frame: 0-2 VLAN tags, an IPv4 (no options, not a
    /// fragment, right checksum) or IPv6 header (no extensions) whose
    /// length leaves 0-3 bytes for the TCP / UDP header (0 for an ICMPv6
    /// one), sometimes exactly enough or a little more (the boundary), then
    /// the whole transport header with plausible ports or a real ICMPv6
    /// type, then zeros to 60 bytes (the shortest Ethernet frame without
    /// its FCS) and sometimes a few more.
    fn padded(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let mut f = Vec::with_capacity(96);
        let mut mac: [u8; 12] = rng.random();
        mac[6] &= 0xfe;
        f.extend_from_slice(&mac);
        for _ in 0..rng.random_range(0..=2) {
            let tpid: u16 = if rng.random_bool(0.5) { 0x8100 } else { 0x88a8 };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&rng.random::<[u8; 2]>());
        }
        let v6 = rng.random_bool(0.5);
        let proto = if v6 {
            *[6u8, 17, 58].choose(rng).unwrap()
        } else {
            *[6u8, 17].choose(rng).unwrap()
        };
        let mut transport = transport(rng, proto);
        if proto != 58 {
            let sport: u16 = rng.random_range(1024..=65535);
            let dport: u16 = *[53u16, 80, 443, 123, 179, rng.random()]
                .choose(rng)
                .unwrap();
            let (a, b) = if rng.random_bool(0.5) {
                (sport, dport)
            } else {
                (dport, sport)
            };
            transport[0..2].copy_from_slice(&a.to_be_bytes());
            transport[2..4].copy_from_slice(&b.to_be_bytes());
        }
        // Transport bytes inside the datagram: short of what is read, or
        // (one frame in five) enough, so both sides of the line are run.
        let needed = if proto == 58 { 1 } else { 4 };
        let inside = if rng.random_bool(0.8) {
            rng.random_range(0..needed)
        } else {
            rng.random_range(needed..=transport.len())
        };
        let ttl = *[64u8, 64, 64, 255, 2, 1].choose(rng).unwrap();
        if v6 {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut h = [0u8; 40];
            let tc_flow = (6u32 << 28) | (rng.next_u32() & 0x0fff_ffff);
            h[..4].copy_from_slice(&tc_flow.to_be_bytes());
            h[4..6].copy_from_slice(&(inside as u16).to_be_bytes());
            h[6] = proto;
            h[7] = ttl;
            h[8..24].copy_from_slice(&self.addr_v6(rng));
            h[24..40].copy_from_slice(&self.addr_v6(rng));
            f.extend_from_slice(&h);
        } else {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[1] = rng.random();
            h[2..4].copy_from_slice(&(20 + inside as u16).to_be_bytes());
            h[4..6].copy_from_slice(&rng.random::<[u8; 2]>());
            if rng.random_bool(0.5) {
                h[6] = 0x40; // DF
            }
            h[8] = ttl;
            h[9] = proto;
            h[12..16].copy_from_slice(&self.addr_v4(rng));
            h[16..20].copy_from_slice(&self.addr_v4(rng));
            set_ipv4_checksum(&mut h);
            f.extend_from_slice(&h);
        }
        f.extend_from_slice(&transport);
        let padded = f.len().max(60)
            + if rng.random_bool(0.2) {
                rng.random_range(1..8)
            } else {
                0
            };
        f.resize(padded, 0);
        f
    }

    /// A valid frame and where its headers are.
    fn valid(&self, rng: &mut ChaCha8Rng) -> (Vec<u8>, Layout) {
        let mut f = Vec::with_capacity(256);
        let mut l = Layout {
            v6: rng.random_bool(0.5),
            ..Layout::default()
        };
        let mut mac: [u8; 12] = rng.random();
        mac[6] &= 0xfe; // unicast source
        f.extend_from_slice(&mac);
        l.boundaries.push(MIN_FRAME);
        let tags = match rng.random_range(0..10) {
            0..5 => 0,
            5..7 => 1,
            7..9 => 2,
            _ => 3,
        };
        for _ in 0..tags {
            let tpid: u16 = if rng.random_bool(0.5) { 0x8100 } else { 0x88a8 };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&rng.random::<[u8; 2]>());
            l.boundaries.push(f.len() + 2);
        }
        let ether_type: u16 = if l.v6 { 0x86dd } else { 0x0800 };
        f.extend_from_slice(&ether_type.to_be_bytes());
        l.l3 = f.len();

        let ttl = *[0u8, 1, 2, 64, 64, 255, rng.random(), rng.random()]
            .choose(rng)
            .unwrap();
        let mut proto = *[17u8, 17, 6, 6, 1, 58, 4, 41, 47, rng.random()]
            .choose(rng)
            .unwrap();
        if proto == 51 || V6_EXTENSIONS.contains(&proto) {
            proto = 59; // extension headers are only made as such, below
        }
        let mut transport = transport(rng, proto);
        let mut payload = vec![0u8; payload_len(rng)];
        rng.fill_bytes(&mut payload);
        if proto == 17 {
            let len = (transport.len() + payload.len()) as u16;
            transport[4..6].copy_from_slice(&len.to_be_bytes());
        }

        if l.v6 {
            let mut h = [0u8; 40];
            let tc_flow = (6u32 << 28) | (rng.next_u32() & 0x0fff_ffff);
            h[..4].copy_from_slice(&tc_flow.to_be_bytes());
            h[7] = ttl;
            h[8..24].copy_from_slice(&self.addr_v6(rng));
            h[24..40].copy_from_slice(&self.addr_v6(rng));
            // An extension chain: 1-4 headers, each naming the next.
            let mut chain = Vec::new();
            if rng.random_bool(0.2) {
                for _ in 0..rng.random_range(1..=4) {
                    chain.push(*V6_EXTENSIONS[1..].choose(rng).unwrap());
                }
                // Hop-by-hop options come first or not at all (RFC 8200 §4.1).
                if rng.random_bool(0.3) {
                    chain[0] = 0;
                }
            }
            h[6] = chain.first().copied().unwrap_or(proto);
            let start = f.len();
            f.extend_from_slice(&h);
            l.boundaries.push(f.len());
            for (i, &ext) in chain.iter().enumerate() {
                let next = chain.get(i + 1).copied().unwrap_or(proto);
                let len = match ext {
                    44 => 8,
                    51 => 4 * (rng.random_range(1..4) + 2),
                    // ESP: an SPI and sequence number, then opaque data.
                    50 => 8,
                    _ => 8 * (rng.random_range(0..3) + 1),
                };
                let mut e = vec![0u8; len];
                rng.fill_bytes(&mut e);
                if ext != 50 {
                    e[0] = next;
                    e[1] = match ext {
                        44 => 0,
                        51 => (len / 4 - 2) as u8,
                        _ => (len / 8 - 1) as u8,
                    };
                }
                f.extend_from_slice(&e);
                l.boundaries.push(f.len());
            }
            l.l4 = f.len();
            f.extend_from_slice(&transport);
            f.extend_from_slice(&payload);
            let plen = (f.len() - start - 40) as u16;
            f[start + 4..start + 6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let options = if rng.random_bool(0.15) {
                ipv4_options(rng)
            } else {
                Vec::new()
            };
            let ihl = 5 + options.len() / 4;
            let mut h = vec![0u8; ihl * 4];
            h[0] = 0x40 | ihl as u8;
            h[1] = rng.random();
            h[4..6].copy_from_slice(&rng.random::<[u8; 2]>());
            let mut frags: u16 = if rng.random_bool(0.5) { 0x4000 } else { 0 };
            if rng.random_bool(0.1) {
                frags = match rng.random_range(0..3) {
                    0 => 0x2000,                                  // MF, offset 0
                    1 => rng.random_range(1..0x2000),             // last fragment
                    _ => 0x2000 | rng.random_range(1..0x2000u16), // middle
                };
            }
            h[6..8].copy_from_slice(&frags.to_be_bytes());
            h[8] = ttl;
            h[9] = proto;
            h[12..16].copy_from_slice(&self.addr_v4(rng));
            h[16..20].copy_from_slice(&self.addr_v4(rng));
            h[20..].copy_from_slice(&options);
            let tot = (h.len() + transport.len() + payload.len()) as u16;
            h[2..4].copy_from_slice(&tot.to_be_bytes());
            set_ipv4_checksum(&mut h);
            l.boundaries.push(f.len() + 20);
            f.extend_from_slice(&h);
            l.boundaries.push(f.len());
            l.l4 = f.len();
            f.extend_from_slice(&transport);
            f.extend_from_slice(&payload);
        }
        l.proto = proto;
        for b in [4, transport.len()] {
            if b <= transport.len() && b > 0 {
                l.boundaries.push(l.l4 + b);
            }
        }
        l.end = f.len();
        l.boundaries.push(l.end);
        // Ethernet padding after the IP packet, as short frames carry.
        if rng.random_bool(0.1) {
            f.extend(std::iter::repeat_n(0, rng.random_range(1..24)));
        }
        f.truncate(MAX_FRAME);
        l.boundaries.retain(|&b| b <= f.len());
        (f, l)
    }
}

/// Writes the IPv4 header checksum (RFC 791) into `h` (the whole header).
pub fn set_ipv4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn payload_len(rng: &mut ChaCha8Rng) -> usize {
    match rng.random_range(0..10) {
        0 => 0,
        1 => rng.random_range(200..1400),
        _ => rng.random_range(1..64),
    }
}

/// A transport header for `proto` (checksums are not the forwarder's
/// business and stay random).
fn transport(rng: &mut ChaCha8Rng, proto: u8) -> Vec<u8> {
    let mut t = match proto {
        17 => vec![0u8; 8],
        6 => vec![0u8; 20],
        1 | 58 => vec![0u8; 8],
        _ => Vec::new(),
    };
    rng.fill_bytes(&mut t);
    match proto {
        6 => t[12] = 5 << 4,
        58 => {
            t[0] = *[128u8, 129, 133, 134, 135, 136, 137, 1, rng.random()]
                .choose(rng)
                .unwrap()
        }
        _ => {}
    }
    t
}

/// 4-40 bytes of IPv4 options, a multiple of 4: real ones or garbage.
fn ipv4_options(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let words = rng.random_range(1..=10);
    let mut o = vec![0u8; words * 4];
    match rng.random_range(0..4) {
        0 => o[..4].copy_from_slice(&[0x94, 4, 0, 0]), // router alert
        1 => o.fill(1),                                // NOPs
        2 => {
            // record route with room for the rest
            o[0] = 7;
            o[1] = (o.len() - 1) as u8;
            o[2] = 4;
        }
        _ => rng.fill_bytes(&mut o),
    }
    o
}

fn random_frame(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let len = match rng.random_range(0..10) {
        0 => rng.random_range(MIN_FRAME..=MAX_FRAME),
        _ => rng.random_range(MIN_FRAME..=128),
    };
    let mut f = vec![0u8; len];
    rng.fill_bytes(&mut f);
    // Half the time, make it look like IP so the parser goes deeper.
    if rng.random_bool(0.5) {
        let tags = rng.random_range(0..=2usize);
        let mut at = 12;
        for _ in 0..tags {
            if at + 2 > f.len() {
                break;
            }
            let tpid: u16 = if rng.random_bool(0.5) { 0x8100 } else { 0x88a8 };
            f[at..at + 2].copy_from_slice(&tpid.to_be_bytes());
            at += 4;
        }
        let v6 = rng.random_bool(0.5);
        if at + 3 <= f.len() {
            let et: u16 = if v6 { 0x86dd } else { 0x0800 };
            f[at..at + 2].copy_from_slice(&et.to_be_bytes());
            f[at + 2] = (f[at + 2] & 0x0f) | if v6 { 0x60 } else { 0x40 };
        }
    }
    f
}

/// Changes one field or byte of a valid frame.
fn mutate(rng: &mut ChaCha8Rng, f: &mut [u8], l: &Layout) {
    let hdr_end = (l.l4 + 8).min(f.len());
    let l3 = l.l3;
    match rng.random_range(0..10) {
        // Any header byte to any value.
        0..3 => f[rng.random_range(0..hdr_end)] = rng.random(),
        // One bit anywhere.
        3 => {
            let i = rng.random_range(0..f.len());
            f[i] ^= 1 << rng.random_range(0..8);
        }
        // The EtherType / a TPID.
        4 => {
            let at = rng.random_range(0..=(l3 - 14) / 4) * 4 + 12;
            let v = *[
                0x0800u16,
                0x86dd,
                0x8100,
                0x88a8,
                0x0806,
                0x9100,
                rng.random(),
            ]
            .choose(rng)
            .unwrap();
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        // Version nibble / IHL.
        5 => f[l3] = (rng.random_range(0..16u8) << 4) | (f[l3] & 0x0f),
        6 if !l.v6 => f[l3] = (f[l3] & 0xf0) | rng.random_range(0..16u8),
        // Protocol / next header.
        6 => f[l3 + 6] = rng.random(),
        7 if !l.v6 => f[l3 + 9] = rng.random(),
        7 => f[l3 + 6] = *V6_EXTENSIONS.choose(rng).unwrap(),
        // TTL / hop limit.
        8 => f[l3 + if l.v6 { 7 } else { 8 }] = *[0u8, 1, 2, 255].choose(rng).unwrap(),
        // IPv4 flags and fragment offset / an address byte.
        _ if !l.v6 => {
            let v: u16 = *[0x2000u16, 0x0001, 0x8000, 0x4000, rng.random()]
                .choose(rng)
                .unwrap();
            f[l3 + 6..l3 + 8].copy_from_slice(&v.to_be_bytes());
        }
        _ => f[l3 + rng.random_range(8..40)] = rng.random(),
    }
    // Half the time the IPv4 checksum is fixed up, so the lie is consistent.
    if !l.v6 && rng.random_bool(0.5) && f.len() >= l.l4 && (f[l3] & 0x0f) >= 5 {
        let ihl = usize::from(f[l3] & 0x0f) * 4;
        if l3 + ihl <= f.len() {
            set_ipv4_checksum(&mut f[l3..l3 + ihl]);
        }
    }
}

/// Makes a length field lie about the frame.
fn lie(rng: &mut ChaCha8Rng, f: &mut [u8], l: &Layout) {
    let l3 = l.l3;
    let real = (l.end - l3) as i64;
    let pick = |rng: &mut ChaCha8Rng, real: i64| -> u16 {
        let v = *[
            0,
            1,
            7,
            8,
            19,
            20,
            39,
            40,
            real - 1,
            real + 1,
            real + 100,
            65535,
        ]
        .choose(rng)
        .unwrap();
        if rng.random_bool(0.2) {
            rng.random()
        } else {
            v.clamp(0, 65535) as u16
        }
    };
    let udp = l.proto == 17 && l.l4 + 8 <= f.len();
    match rng.random_range(0..4) {
        0 | 1 if !l.v6 => {
            if rng.random_bool(0.7) {
                let v = pick(rng, real);
                f[l3 + 2..l3 + 4].copy_from_slice(&v.to_be_bytes());
            } else {
                f[l3] = 0x40 | rng.random_range(0..16u8);
            }
            let ihl = (usize::from(f[l3] & 0x0f) * 4).max(20);
            if l3 + ihl <= f.len() && rng.random_bool(0.8) {
                set_ipv4_checksum(&mut f[l3..l3 + ihl]);
            }
        }
        0 | 1 => {
            let v = pick(rng, real - 40);
            f[l3 + 4..l3 + 6].copy_from_slice(&v.to_be_bytes());
        }
        _ if udp => {
            let v = pick(rng, (l.end - l.l4) as i64);
            f[l.l4 + 4..l.l4 + 6].copy_from_slice(&v.to_be_bytes());
        }
        _ if !l.v6 => {
            let v = pick(rng, real);
            f[l3 + 2..l3 + 4].copy_from_slice(&v.to_be_bytes());
            set_ipv4_checksum(&mut f[l3..l3 + 20]);
        }
        _ => {
            let v = pick(rng, real - 40);
            f[l3 + 4..l3 + 6].copy_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{LinkSlice, NetSlice, SlicedPacket};

    use super::*;

    fn generator(seed: u64) -> Generator {
        let prefixes: Vec<IpNet> = ["192.0.2.0/25", "2001:db8:c::/48"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let locals = ["198.51.100.254".parse().unwrap()];
        Generator::new(seed, &prefixes, &locals, 5)
    }

    #[test]
    fn frames_replay_by_seed_and_index() {
        let g = generator(7);
        let other = generator(8);
        let mut differs = 0;
        for i in [0, 1, 999, 123_456_789] {
            let (a, b) = (g.frame(i), g.frame(i));
            assert_eq!(
                (a.bytes, a.ingress, a.kind),
                (b.bytes.clone(), b.ingress, b.kind)
            );
            differs += usize::from(other.frame(i).bytes != b.bytes);
        }
        assert!(differs >= 3, "seeds 7 and 8 give the same frames");
    }

    #[test]
    fn every_kind_and_every_ingress_is_generated_within_bounds() {
        let g = generator(1);
        let mut kinds = std::collections::BTreeMap::new();
        let mut ingress = [0u32; 5];
        for i in 0..20_000 {
            let f = g.frame(i);
            assert!(
                (MIN_FRAME..=MAX_FRAME).contains(&f.bytes.len()),
                "frame {i}"
            );
            *kinds.entry(f.kind).or_insert(0u32) += 1;
            ingress[f.ingress] += 1;
        }
        assert_eq!(kinds.len(), Kind::ALL.len(), "{kinds:?}");
        assert!(ingress.iter().all(|&n| n > 3000), "{ingress:?}");
    }

    /// Padded frames hold what the ports / ICMPv6 type would be only after
    /// the datagram's end, in every shape: IPv4 and IPv6, TCP, UDP and
    /// ICMPv6, with and without tags; a fifth of them are just long enough.
    #[test]
    fn padded_frames_put_the_transport_header_in_the_padding() {
        let g = generator(3);
        let mut shapes = std::collections::BTreeSet::new();
        let (mut short, mut enough) = (0, 0);
        for i in 0..20_000 {
            let f = g.frame(i);
            if f.kind != Kind::Padded {
                continue;
            }
            let b = &f.bytes;
            assert!(b.len() >= 60, "frame {i}: {} bytes", b.len());
            let mut l3 = 14;
            while matches!(u16::from_be_bytes([b[l3 - 2], b[l3 - 1]]), 0x8100 | 0x88a8) {
                l3 += 4;
            }
            let v6 = b[l3 - 2..l3] == [0x86, 0xdd];
            let (proto, l4, end) = if v6 {
                let payload = usize::from(u16::from_be_bytes([b[l3 + 4], b[l3 + 5]]));
                (b[l3 + 6], l3 + 40, l3 + 40 + payload)
            } else {
                assert!(
                    crate::frames::ipv4_checksum_ok(&b[l3..l3 + 20]),
                    "frame {i}"
                );
                let total = usize::from(u16::from_be_bytes([b[l3 + 2], b[l3 + 3]]));
                (b[l3 + 9], l3 + 20, l3 + total)
            };
            let need = if proto == 58 { 1 } else { 4 };
            assert!(end <= b.len() && l4 + need <= b.len(), "frame {i}");
            if end < l4 + need {
                short += 1;
                shapes.insert((v6, proto, l3 > 14));
            } else {
                enough += 1;
            }
        }
        assert_eq!(shapes.len(), 2 * 2 * 2 + 2, "{shapes:?}");
        assert!(
            short > 800 && enough > 150,
            "{short} short, {enough} long enough"
        );
    }

    /// Valid frames are valid for an independent parser: etherparse slices
    /// them (strictly, transport included for TCP), IPv4 checksums are
    /// right, and the generator covers VLAN stacks, options, fragments and
    /// extension chains.
    #[test]
    fn valid_frames_parse_with_etherparse() {
        let g = generator(2);
        let (mut tags3, mut options, mut frags, mut chains, mut n) = (0, 0, 0, 0, 0);
        for i in 0..50_000 {
            let f = g.frame(i);
            if f.kind != Kind::Valid {
                continue;
            }
            n += 1;
            let b = &f.bytes;
            let mut l3 = 14;
            let mut tags = 0;
            while matches!(u16::from_be_bytes([b[l3 - 2], b[l3 - 1]]), 0x8100 | 0x88a8) {
                l3 += 4;
                tags += 1;
            }
            tags3 += usize::from(tags == 3);
            if tags == 3 {
                continue; // etherparse walks at most two tags
            }
            let p = SlicedPacket::from_ethernet(b)
                .unwrap_or_else(|e| panic!("frame {i}: {e:?}: {b:02x?}"));
            assert!(matches!(p.link, Some(LinkSlice::Ethernet2(_))));
            match p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header();
                    assert!(crate::frames::ipv4_checksum_ok(h.slice()), "frame {i}");
                    options += usize::from(h.ihl() > 5);
                    frags += usize::from(h.more_fragments() || h.fragments_offset().value() > 0);
                }
                Some(NetSlice::Ipv6(ip)) => {
                    chains += usize::from(!ip.extensions().is_empty());
                }
                other => panic!("frame {i}: {other:?}"),
            }
        }
        assert!(n > 10_000, "{n} valid frames");
        for (what, count) in [
            ("three tags", tags3),
            ("IPv4 options", options),
            ("IPv4 fragments", frags),
            ("IPv6 extension chains", chains),
        ] {
            assert!(count > 100, "{what}: {count} of {n}");
        }
    }
}
