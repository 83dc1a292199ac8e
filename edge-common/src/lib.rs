//! Every type that crosses the kernel/user boundary, defined once.
//!
//! Rules (see shared/style.md): `#[repr(C)]`, fixed-width integers, explicit
//! padding, no `bool`/`Option`/Rust enums inside map values, `aya::Pod` only
//! behind the `user` feature. Keys are built zeroed so padding never makes a
//! lookup miss.
#![no_std]

pub mod rtt;

/// Map names, shared by the kernel program and userspace (a packet test
/// checks that each one exists in the object). At most 15 characters.
pub mod map_names {
    /// HashMap: ingress ifindex → [`crate::PortEntry`].
    pub const PORTS: &str = "EDGE_PORTS";
    /// Array (mmapable) of [`crate::Registered4`]: the registry of IPv4
    /// prefixes, which edged writes by memory stores, derives the lookup
    /// tables from and reads back on a restart. The program never reads it.
    pub const PREFIX_V4: &str = "EDGE_PFX_V4";
    /// Array (mmapable) of [`crate::Registered6`]: the IPv6 registry.
    pub const PREFIX_V6: &str = "EDGE_PFX_V6";
    /// LPM trie: IPv4 prefix → [`crate::PrefixEntry`], read only by
    /// `edge_lpm`, the bench's reference program, and filled by the bench;
    /// edged never writes it, and it is not pinned (not in [`ALL`]).
    pub const LPM_V4: &str = "EDGE_LPM_V4";
    /// LPM trie: IPv6 prefix → [`crate::PrefixEntry`], as [`LPM_V4`].
    pub const LPM_V6: &str = "EDGE_LPM_V6";
    /// Array: policy id → [`crate::PolicyTable`].
    pub const POLICIES: &str = "EDGE_POLICIES";
    /// Array: PoP id → [`crate::Pop`] (next hop).
    pub const POPS: &str = "EDGE_POPS";
    /// DEVMAP_HASH: egress ifindex → egress ifindex, for `bpf_redirect_map`.
    pub const TX_PORTS: &str = "EDGE_TX_PORTS";
    /// Array, one entry: [`crate::Settings`].
    pub const SETTINGS: &str = "EDGE_SETTINGS";
    /// HashMap: this host's own IPv4 addresses (value unused).
    pub const LOCAL_V4: &str = "EDGE_LOCAL_V4";
    /// HashMap: this host's own IPv6 addresses (value unused).
    pub const LOCAL_V6: &str = "EDGE_LOCAL_V6";
    /// Per-CPU array: [`crate::Action`] → [`crate::Counter`].
    pub const ACTION_STATS: &str = "EDGE_ACT_STATS";
    /// Per-CPU array: [`crate::Reason`] → [`crate::Counter`].
    pub const REASON_STATS: &str = "EDGE_RSN_STATS";
    /// Per-CPU array: prefix counter slot → [`crate::Counter`].
    pub const PREFIX_STATS: &str = "EDGE_PFX_STATS";
    /// Per-CPU array: PoP id → [`crate::Counter`] (packets sent to it).
    pub const POP_STATS: &str = "EDGE_POP_STATS";
    /// Per-CPU array: port id → [`crate::Counter`] (packets received on it).
    pub const PORT_STATS: &str = "EDGE_PORT_STATS";
    /// Array (mmapable): the IPv4 DIR-24-8 first level, one
    /// [`crate::fib`] entry per /24, two per element (`[u32; 2]`).
    pub const FIB4_TBL24: &str = "EDGE_FIB4_T24";
    /// Array (mmapable): IPv4 DIR-24-8 blocks of 256 entries (`[u32; 256]`)
    /// for /24s holding prefixes longer than /24.
    pub const FIB4_TBL8: &str = "EDGE_FIB4_T8";
    /// Array: IPv4 leaf id → [`crate::PrefixEntry`] (leaf 0 is "no prefix").
    pub const FIB4_LEAVES: &str = "EDGE_FIB4_LEAF";
    /// Ring buffer: [`crate::ProtectionEvent`]s for edged.
    pub const EVENTS: &str = "EDGE_EVENTS";
    /// Per-CPU array, one entry: [`crate::EventBudget`] (the rate limit).
    pub const EVENT_BUDGET: &str = "EDGE_EVT_BUDGET";
    /// Per-CPU array: [`crate::event_stats`] index → [`crate::Counter`].
    pub const EVENT_STATS: &str = "EDGE_EVT_STATS";
    /// Array: ifindex (below [`crate::limits::PORT_INDEX`]) → [`crate::PortSlot`],
    /// the kernel's fast copy of `EDGE_PORTS`.
    pub const PORT_INDEX: &str = "EDGE_PORT_IDX";
    /// Array of `u64`: a bitmap over [`crate::local_bit`] of this host's
    /// addresses; only a set bit costs the packet a `EDGE_LOCAL_V*` lookup.
    pub const LOCAL_BITS: &str = "EDGE_LOCAL_BITS";
    /// Per-CPU array, one entry: [`crate::EventBudget`], the rate limit of
    /// the ICMP errors the program sends ([`crate::ICMP_RATE`]).
    pub const ICMP_BUDGET: &str = "EDGE_ICMP_BDGT";
    /// Array (mmapable): the IPv6 multibit trie's nodes, 256 [`crate::fib6`]
    /// entries each (`[u32; 256]`); the first
    /// [`crate::fib6::ROOT_BLOCKS`] are the root, one entry per /16.
    pub const FIB6_NODES: &str = "EDGE_FIB6_NODE";
    /// Array (mmapable): IPv6 [`crate::Tail6`] records, a single prefix
    /// below a trie entry.
    pub const FIB6_TAILS: &str = "EDGE_FIB6_TAIL";
    /// Array: IPv6 leaf id → [`crate::PrefixEntry`] (leaf 0 is "no prefix").
    pub const FIB6_LEAVES: &str = "EDGE_FIB6_LEAF";
    /// LRU hash: [`crate::rtt::RttFlow`] → [`crate::rtt::RttState`], the
    /// TCP flows customer latency waits on (`[limits] rtt_flows`).
    pub const RTT_FLOWS: &str = "EDGE_RTT_FLOWS";
    /// Per-CPU hash: [`crate::rtt::RttBucketKey`] → samples (`u64`), the
    /// customer latency histograms (`[limits] rtt_buckets`).
    pub const RTT_HIST: &str = "EDGE_RTT_HIST";
    /// Per-CPU array: [`crate::rtt::rtt_stats`] index → [`crate::Counter`].
    pub const RTT_STATS: &str = "EDGE_RTT_STATS";
    /// Per-CPU array, one entry: [`crate::rtt::RttScratch`], the kernel's
    /// working room (not read by userspace).
    pub const RTT_SCRATCH: &str = "EDGE_RTT_SCR";
    /// Array of [`crate::rtt::RttGate`], [`crate::limits::RTT_GATES`]
    /// entries: what customer latency checks before a flow lookup.
    pub const RTT_GATE: &str = "EDGE_RTT_GATE";
    /// Array of [`crate::rtt::RttPace`], as many entries: the per-flow
    /// interval customer latency checks toward the customer.
    pub const RTT_PACE: &str = "EDGE_RTT_PACE";
    /// Mmapable array, one `u64`: `CLOCK_MONOTONIC` in ns as edged last
    /// wrote it (every [`crate::rtt::CLOCK_TICK_NS`]), the coarse clock of
    /// customer latency's gates; 0 when nothing writes it.
    pub const RTT_CLOCK: &str = "EDGE_RTT_CLOCK";
    /// HashMap: [`crate::LportKey`] (ifindex and VLAN tags) →
    /// [`crate::PortEntry`], the logical ports of tagged frames on
    /// interfaces whose port entry has [`crate::port_flags::TAGGED`].
    pub const LPORTS: &str = "EDGE_LPORTS";
    /// LPM trie: [`crate::DomainKey4`] (private domain id, then the IPv4
    /// address) → [`crate::PrefixEntry`]: the private domains' prefixes.
    pub const DOMAIN_V4: &str = "EDGE_DOM_V4";
    /// LPM trie: [`crate::DomainKey6`] → [`crate::PrefixEntry`].
    pub const DOMAIN_V6: &str = "EDGE_DOM_V6";

    /// Every map the daemon pins, in a stable order.
    pub const ALL: [&str; 36] = [
        PORTS,
        PREFIX_V4,
        PREFIX_V6,
        POLICIES,
        POPS,
        TX_PORTS,
        SETTINGS,
        LOCAL_V4,
        LOCAL_V6,
        ACTION_STATS,
        REASON_STATS,
        PREFIX_STATS,
        POP_STATS,
        PORT_STATS,
        FIB4_TBL24,
        FIB4_TBL8,
        FIB4_LEAVES,
        EVENTS,
        EVENT_BUDGET,
        EVENT_STATS,
        PORT_INDEX,
        LOCAL_BITS,
        ICMP_BUDGET,
        FIB6_NODES,
        FIB6_TAILS,
        FIB6_LEAVES,
        RTT_FLOWS,
        RTT_HIST,
        RTT_STATS,
        RTT_SCRATCH,
        RTT_GATE,
        RTT_PACE,
        RTT_CLOCK,
        LPORTS,
        DOMAIN_V4,
        DOMAIN_V6,
    ];
}

/// A protection violation, for edged: a registered prefix's traffic
/// arriving from the customer side on a peering port it is not registered on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtectionEvent {
    /// Source and destination addresses (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The prefix's counter slot.
    pub slot: u32,
    /// The port id it arrived on.
    pub port: u32,
    /// [`event_family`]: IPV4 or IPV6.
    pub family: u8,
    pub _pad: [u8; 7],
}
const _: () = assert!(core::mem::size_of::<ProtectionEvent>() == 48);

/// The per-CPU token bucket that bounds events, so a flood of violations
/// costs the forwarding path a counter increment, not a ring-buffer write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBudget {
    /// Tokens × 10⁹ (one event costs [`EVENT_COST`]).
    pub tokens: u64,
    /// `bpf_ktime_get_ns` of the last refill.
    pub last_ns: u64,
}

/// Events per second per CPU, sustained.
pub const EVENT_RATE: u64 = 100;
/// Events a CPU may send in a burst.
pub const EVENT_BURST: u64 = 100;
/// Token cost of one event (tokens are nano-events).
pub const EVENT_COST: u64 = 1_000_000_000;
/// Ring buffer size, bytes (a power of two, page-aligned).
pub const EVENT_RING_BYTES: u32 = 256 * 1024;

/// ICMP "fragmentation needed" / "packet too big" messages per second per
/// CPU, sustained (an [`EventBudget`] of its own, `EDGE_ICMP_BDGT`). Beyond
/// it an oversized packet is dropped (`Reason::TooBigLimited`).
pub const ICMP_RATE: u64 = 1000;
/// ICMP errors a CPU may send in a burst.
pub const ICMP_BURST: u64 = 100;
/// Token cost of one ICMP error (tokens are nano-messages).
pub const ICMP_COST: u64 = 1_000_000_000;

/// Indexes of the `EDGE_EVT_STATS` counters.
pub mod event_stats {
    /// Written to the ring buffer.
    pub const SENT: u32 = 0;
    /// Not sent: over the rate limit.
    pub const RATE_LIMITED: u32 = 1;
    /// Not sent: the ring buffer was full (edged not reading).
    pub const RING_FULL: u32 = 2;
    pub const COUNT: u32 = 3;
}

/// Program names inside the eBPF object.
pub mod prog_names {
    /// The forwarder.
    pub const EDGE: &str = "edge";
    /// `XDP_PASS` only: attached to veth peers so that XDP_REDIRECT into a veth
    /// is delivered (a veth drops redirected frames unless its peer runs XDP).
    pub const PASS: &str = "edge_pass";
    /// The forwarder with its lookups through the LPM tries instead of
    /// DIR-24-8 (IPv4) and the multibit trie (IPv6): the baseline of
    /// `cargo xtask bench` and the reference of the differential packet
    /// test. Never attached.
    pub const EDGE_LPM: &str = "edge_lpm";
    /// Test only, never attached by edged: strips an outer IPv4 (IP-in-IP)
    /// or IPv6 (IPv6-in-IPv6) header and passes the inner packet to the
    /// stack, the far end of a tunnel in a lab without tunnel devices.
    pub const TEST_DECAP: &str = "edge_test_decap";
}

/// Capacity limits of the maps. Userspace checks them before writing and names
/// the limit in its error.
pub mod limits {
    pub const MAX_PORTS: u32 = 64;
    pub const MAX_PREFIXES_V4: u32 = 1 << 20;
    pub const MAX_PREFIXES_V6: u32 = 1 << 18;
    pub const MAX_POPS: u32 = 256;
    pub const MAX_POLICIES: u32 = 256;
    /// Per-prefix counter slots; slot 0 counts prefixes beyond the limit.
    pub const MAX_PREFIX_SLOTS: u32 = 1 << 16;
    pub const MAX_LOCAL_ADDRS: u32 = 1024;
    /// IPv4 DIR-24-8 blocks (1 KiB each): one per /24 that holds prefixes
    /// longer than /24.
    pub const FIB4_TBL8_BLOCKS: u32 = 1 << 15;
    /// Distinct IPv4 [`crate::PrefixEntry`] values (prefixes with equal
    /// entries share a leaf), leaf 0 included.
    pub const FIB4_LEAVES: u32 = 1 << 18;
    /// IPv6 trie nodes (1 KiB each) for the default IPv6 prefix limit.
    pub const FIB6_NODES: u32 = fib6_nodes(MAX_PREFIXES_V6);
    /// IPv6 tail records (32 bytes each) for the default IPv6 prefix limit.
    pub const FIB6_TAILS: u32 = fib6_tails(MAX_PREFIXES_V6);

    /// IPv6 trie nodes for `prefixes_v6` prefixes (`[limits] prefixes_v6`),
    /// the root's [`crate::fib6::ROOT_BLOCKS`] included: one per trie entry
    /// holding two or more prefixes longer than the entry; a table shaped
    /// like the public one takes 0.20-0.25 per prefix (BENCHMARKS.md), so
    /// a quarter of the prefix limit.
    pub const fn fib6_nodes(prefixes_v6: u32) -> u32 {
        let below = prefixes_v6 / 4;
        crate::fib6::ROOT_BLOCKS + if below < 64 { 64 } else { below }
    }

    /// IPv6 tail records for `prefixes_v6` prefixes: one per trie entry
    /// holding exactly one prefix longer than the entry, so never more than
    /// the prefixes, plus the 3 an update may hold while it swaps them.
    pub const fn fib6_tails(prefixes_v6: u32) -> u32 {
        prefixes_v6 + 3
    }
    /// Distinct IPv6 [`crate::PrefixEntry`] values, leaf 0 included.
    pub const FIB6_LEAVES: u32 = 1 << 18;
    /// Ifindexes below this have their port in the `EDGE_PORT_IDX` array
    /// (one load); larger ones are looked up in the `EDGE_PORTS` hash.
    pub const PORT_INDEX: u32 = 4096;
    /// Bits of the local-address filter (`EDGE_LOCAL_BITS`, 64 per word).
    pub const LOCAL_BITS: u32 = 1 << 16;
    /// Default TCP flows customer latency follows at once (`[limits] rtt_flows`).
    pub const RTT_FLOWS: u32 = 1 << 16;
    /// Default (slot, bucket) pairs of the latency histograms
    /// (`[limits] rtt_buckets`).
    pub const RTT_BUCKETS: u32 = 1 << 17;
    /// Entries of the customer latency gate array (a power of two).
    pub const RTT_GATES: u32 = 1 << 16;
    /// Most VLAN tags (802.1Q / 802.1ad) the parser walks.
    pub const VLAN_MAX_DEPTH: usize = 2;
    /// Logical ports by VLAN tags (`EDGE_LPORTS`); every logical port is
    /// a port, so [`MAX_PORTS`] bounds them too.
    pub const MAX_LPORTS: u32 = MAX_PORTS;
    /// Routing domains, the public one (id 0) included: each private
    /// domain needs a port of its own.
    pub const MAX_DOMAINS: u32 = MAX_PORTS;
    /// Prefixes of all private domains together, per family
    /// (`EDGE_DOM_V4`, `EDGE_DOM_V6`).
    pub const MAX_DOMAIN_PREFIXES: u32 = 1 << 16;
}

/// The IPv4 DIR-24-8 lookup (see docs/lookup.md). An entry is a `u32`:
/// with [`fib::BLOCK`] set, [`fib::INDEX`] is a TBL8 block; otherwise it is
/// a leaf id (0: no prefix). Bits 24..30 hold the length of the prefix the
/// entry came from, for userspace only: the kernel masks them off.
pub mod fib {
    /// The entry points to a TBL8 block.
    pub const BLOCK: u32 = 1 << 31;
    /// Leaf id or block index.
    pub const INDEX: u32 = (1 << 24) - 1;
    /// Position of the prefix length (userspace bookkeeping).
    pub const DEPTH_SHIFT: u32 = 24;
    /// TBL24 elements: 2^24 entries, two per 8-byte element (array values
    /// are rounded up to 8 bytes, so one `u32` per element would double it).
    pub const TBL24_PAIRS: u32 = 1 << 23;
    /// Entries per TBL8 block.
    pub const BLOCK_ENTRIES: usize = 256;
}

/// The IPv6 lookup, a multibit trie (see docs/lookup.md): a root of 2^16
/// entries indexed by the address's first two bytes, then nodes of 256
/// entries, one per further byte. An entry is a `u32`: with [`fib6::NODE`],
/// [`fib6::INDEX`] is the node below; with [`fib6::TAIL`], it is a
/// [`Tail6`] (the one prefix below the entry); otherwise it is a leaf id
/// ([`fib6::LEAF`], 0: no prefix) with the length of the prefix it came
/// from in bits 22..30 (userspace bookkeeping; the kernel masks it off).
pub mod fib6 {
    /// The entry points to a node of the next level.
    pub const NODE: u32 = 1 << 31;
    /// The entry points to a [`crate::Tail6`].
    pub const TAIL: u32 = 1 << 30;
    /// Node or tail index.
    pub const INDEX: u32 = (1 << 30) - 1;
    /// Leaf id.
    pub const LEAF: u32 = (1 << 22) - 1;
    /// Position of the prefix length (userspace bookkeeping).
    pub const DEPTH_SHIFT: u32 = 22;
    /// Address bits the root indexes.
    pub const ROOT_BITS: u32 = 16;
    /// Entries per node (one address byte).
    pub const NODE_ENTRIES: usize = 256;
    /// Nodes the root takes at the start of the node array (2^16 entries).
    pub const ROOT_BLOCKS: u32 = 1 << (ROOT_BITS - 8);
    /// Node levels below the root: one per remaining address byte.
    pub const LEVELS: usize = 14;
}

/// The one prefix below an IPv6 trie entry: the lookup compares the
/// address with `key_hi`/`key_lo` under the first `len` bits, and takes
/// `leaf` on a match, `fallback` (the entry's answer without it) otherwise.
/// Both are leaf entries ([`fib6`], never a node or a tail). Immutable once
/// published: a change writes a new record and swaps the entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tail6 {
    /// The prefix's first 64 bits, as a big-endian number.
    pub key_hi: u64,
    /// Its last 64 bits.
    pub key_lo: u64,
    /// Its length, 17-128.
    pub len: u32,
    pub leaf: u32,
    pub fallback: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Tail6>() == 32);

impl Tail6 {
    /// Whether the address `hi`:`lo` is inside the record's prefix.
    #[inline(always)]
    pub const fn covers(&self, hi: u64, lo: u64) -> bool {
        let len = self.len;
        if len <= 64 {
            // len > 16: the shift is in range.
            let mask = u64::MAX << ((64 - len) & 63);
            (hi ^ self.key_hi) & mask == 0
        } else {
            let mask = u64::MAX << ((128 - len) & 63);
            hi == self.key_hi && (lo ^ self.key_lo) & mask == 0
        }
    }
}

/// Port roles (`PortEntry::role`).
pub mod role {
    /// ISP / IX partners and customers: classified by source address.
    pub const PEERING: u32 = 0;
    /// The private backbone: classified by destination address.
    pub const BACKBONE: u32 = 1;
    /// Internet transit: classified by destination address.
    pub const TRANSIT: u32 = 2;
}

/// `PortEntry::flags` of an interface's entry (`EDGE_PORTS`,
/// `EDGE_PORT_IDX`); the entries of `EDGE_LPORTS` have none.
pub mod port_flags {
    /// The interface has logical ports by VLAN tags: a tagged frame's port
    /// is its `EDGE_LPORTS` entry (ifindex and exact tags), and a tag no
    /// entry claims is `Reason::UnknownVlan`. Without it every frame, tagged
    /// or not, is the interface's port (the tags are kept).
    pub const TAGGED: u32 = 1;
    /// No port takes the interface's untagged frames (`Reason::UnknownVlan`):
    /// only `role` and `id` of the entry are unused.
    pub const NO_UNTAGGED: u32 = 2;
}

/// The public routing domain's id (`PortEntry::domain`, `Pop::domain`):
/// registered prefixes through DIR-24-8 and the IPv6 trie, the exits.
pub const PUBLIC_DOMAIN: u32 = 0;

/// An attached port: an interface, or a logical port (an interface and
/// VLAN tags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortEntry {
    /// `role::*`.
    pub role: u32,
    /// Dense port id (0..MAX_PORTS): bit in `PrefixEntry::allowed_ports`,
    /// index of the port counters.
    pub id: u32,
    /// Routing domain: [`PUBLIC_DOMAIN`], or a private domain's id
    /// (1..`limits::MAX_DOMAINS`), whose prefixes are in `EDGE_DOM_V4/V6`.
    pub domain: u32,
    /// `port_flags::*`.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<PortEntry>() == 16);

/// An `EDGE_PORT_IDX` element: the port of an ifindex, if `valid` is 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortSlot {
    pub entry: PortEntry,
    /// 1: `entry` is a port; 0: the ifindex is not a port.
    pub valid: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PortSlot>() == 24);

/// A VLAN tag's place in [`LportKey`]: the VID (12 bits) with this bit
/// set; 0 is "no tag". (So VID 0, a priority tag, is a tag too.)
pub const VLAN_PRESENT: u16 = 0x1000;
/// The VID bits of a tag's TCI.
pub const VLAN_VID_MASK: u16 = 0x0FFF;

/// An `EDGE_LPORTS` key: a tagged frame's interface and exact tags.
/// Outer is the first tag after the MACs (802.1Q or 802.1ad, the TPID is
/// not part of the key), inner the second; each `VLAN_PRESENT | VID`, or 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LportKey {
    pub ifindex: u32,
    pub outer: u16,
    pub inner: u16,
}
const _: () = assert!(core::mem::size_of::<LportKey>() == 8);

/// A record of the IPv4 prefix registry (`EDGE_PFX_V4`), at a slot edged
/// allocates. `used` is written last when a record is made and alone when
/// it is cleared, so a crash of edged between two stores leaves either a
/// whole record or none. Written and read only by edged: a memory store per
/// prefix instead of a map update (a million prefixes load in
/// milliseconds, where an LPM trie or a hash map took over a second of
/// syscalls).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered4 {
    pub entry: PrefixEntry,
    /// Network address, host bits clear.
    pub addr: [u8; 4],
    pub len: u8,
    /// 1: a registered prefix; 0: a free slot.
    pub used: u8,
    pub _pad: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<Registered4>() == 32);

/// A record of the IPv6 prefix registry (`EDGE_PFX_V6`), as [`Registered4`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered6 {
    pub entry: PrefixEntry,
    pub addr: [u8; 16],
    pub len: u8,
    pub used: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<Registered6>() == 48);

/// The `EDGE_DOM_V4` LPM key's data: the private domain id (big endian,
/// so it is the key's first 32 bits), then the address; the key's prefix
/// length is 32 + the prefix's.
pub type DomainKey4 = [u8; 8];
/// The `EDGE_DOM_V6` LPM key's data: domain id (big endian), address.
pub type DomainKey6 = [u8; 20];

/// The `EDGE_LOCAL_BITS` bit of a local address: its last two bytes (the
/// part of an address that varies most between hosts). A clear bit means
/// "not a local address"; a set bit sends the packet to the exact lookup.
#[inline(always)]
pub const fn local_bit(last_two: [u8; 2]) -> u32 {
    u16::from_be_bytes(last_two) as u32
}

/// Routing preferences (`PrefixEntry::preference`).
pub mod preference {
    /// Cold potato: carried on the backbone.
    pub const MICROSOFT: u8 = 0;
    /// Hot potato: handed to transit here.
    pub const INTERNET: u8 = 1;
}

/// `PrefixEntry::dscp` when the prefix leaves the DS field alone.
pub const DSCP_KEEP: u8 = 0xFF;

/// A registered prefix: what the longest-prefix match returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixEntry {
    /// Peering port ids (bit n = port id n) the prefix may arrive on; 0 = any.
    pub allowed_ports: u64,
    /// Per-prefix counter slot.
    pub slot: u32,
    /// Policy id (for `preference::MICROSOFT` toward the customer).
    pub policy: u32,
    /// `preference::*`.
    pub preference: u8,
    /// DSCP (0-63) written on forwarded packets, or `DSCP_KEEP`.
    pub dscp: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<PrefixEntry>() == 24);

impl Default for PrefixEntry {
    fn default() -> Self {
        Self {
            allowed_ports: 0,
            slot: 0,
            policy: 0,
            preference: preference::MICROSOFT,
            dscp: DSCP_KEEP,
            _pad: [0; 6],
        }
    }
}

/// Selection slots per policy table. Prime, so that Maglev's permutations
/// cover every slot; the kernel indexes with [`policy_slot`].
pub const POLICY_SLOTS: usize = 1021;
/// `PolicyTable::pops` entry meaning "no PoP": the packet goes to the kernel.
pub const NO_POP: u16 = u16::MAX;

/// A policy's selection table: flow hash → PoP id. Computed by userspace
/// from the routing method, members and health; the kernel only indexes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyTable {
    pub pops: [u16; 1024],
}
const _: () = assert!(core::mem::size_of::<PolicyTable>() == 2048);
const _: () = assert!(POLICY_SLOTS <= 1024);

impl Default for PolicyTable {
    fn default() -> Self {
        Self {
            pops: [NO_POP; 1024],
        }
    }
}

/// PoP flags.
pub mod pop_flags {
    /// The entry is in use.
    pub const VALID: u32 = 1;
    /// Encapsulate IPv4 in IPv4 toward `tunnel_dst` (first 4 bytes).
    pub const ENCAP_IPIP: u32 = 2;
    /// Encapsulate IPv6 in IPv6 toward `tunnel_dst`.
    pub const ENCAP_IP6IP6: u32 = 4;
}

/// A next hop: where and how a packet leaves this host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pop {
    /// Egress interface index.
    pub ifindex: u32,
    /// `pop_flags::*`; an all-zero entry is unused.
    pub flags: u32,
    /// Source MAC written into forwarded frames (the egress port's address).
    pub src_mac: [u8; 6],
    /// Destination MAC written into forwarded frames (the next hop's address).
    pub dst_mac: [u8; 6],
    /// The egress link's MTU (largest IP packet, bytes); 0: unknown, not
    /// checked. A packet longer than this with its tunnel header is not sent.
    pub mtu: u16,
    pub _pad: [u8; 2],
    /// IPv4 tunnel source (outer source address for IP-in-IP).
    pub tunnel_src_v4: [u8; 4],
    /// IPv4 tunnel endpoint (outer destination).
    pub tunnel_dst_v4: [u8; 4],
    /// IPv6 tunnel source.
    pub tunnel_src_v6: [u8; 16],
    /// IPv6 tunnel endpoint.
    pub tunnel_dst_v6: [u8; 16],
    /// `vlan_mode::*`: the VLAN tags of frames sent to this PoP.
    pub vlan_mode: u8,
    /// Tags in `vlan` (0-2) for `vlan_mode::SET`; 1 for `PUSH`.
    pub vlan_count: u8,
    pub _pad2: [u8; 2],
    /// VIDs (1-4094), outermost first, host order; the priority bits of a
    /// written tag are 0.
    pub vlan: [u16; 2],
    /// The routing domain of the PoP's egress port: a frame of a domain
    /// is only ever sent to a PoP of that domain (`Reason::NoNextHop`
    /// otherwise; config validation prevents it).
    pub domain: u32,
    pub _pad3: u32,
}
const _: () = assert!(core::mem::size_of::<Pop>() == 80);

/// `Pop::vlan_mode`.
pub mod vlan_mode {
    /// The tags the frame arrived with stay (0, 1 or 2).
    pub const KEEP: u8 = 0;
    /// The frame leaves with exactly `vlan[..vlan_count]`: 0 strips every
    /// tag, otherwise the received tags are replaced. 802.1Q (0x8100) for
    /// one tag; 802.1ad (0x88A8) outer and 802.1Q inner for two.
    pub const SET: u8 = 1;
    /// `vlan[0]` is pushed outside the received tags (802.1ad when the
    /// frame was tagged, else 802.1Q): up to three tags leave.
    pub const PUSH: u8 = 2;
}

/// Default actions for traffic no registered prefix covers.
pub mod default_action {
    pub const PASS: u32 = 0;
    pub const DROP: u32 = 1;
}

/// `Settings` exit fields when there is no such exit: the table lookup
/// misses and the packet goes to the kernel (`no_next_hop`).
pub const NO_EXIT: u32 = u32::MAX;

/// Global settings, one array entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `default_action::*` for unregistered traffic.
    pub default_action: u32,
    /// Selection table (`EDGE_POLICIES` index) of the backbone exit, where
    /// customer traffic with the microsoft preference enters the backbone,
    /// or `NO_EXIT`. Computed by userspace from the exit's PoPs, method and
    /// health like any policy table.
    pub backbone_table: u32,
    /// Selection table of the transit exit (internet preference), or `NO_EXIT`.
    pub transit_table: u32,
    /// TTL / hop limit of outer headers.
    pub encap_ttl: u8,
    /// 1: customer latency is measured (`[latency] enabled`); 0: TCP
    /// packets cost nothing more than others.
    pub rtt: u8,
    pub _pad: [u8; 2],
    /// Per TCP flow, at most one timestamp sample per this many
    /// nanoseconds (`[latency] interval`).
    pub rtt_interval_ns: u64,
}
const _: () = assert!(core::mem::size_of::<Settings>() == 24);

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_action: default_action::PASS,
            backbone_table: NO_EXIT,
            transit_table: NO_EXIT,
            encap_ttl: 64,
            rtt: 0,
            _pad: [0; 2],
            rtt_interval_ns: 0,
        }
    }
}

/// Packets and bytes, one per CPU per index.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}
const _: () = assert!(core::mem::size_of::<Counter>() == 16);

/// What the program did with a packet. The discriminant is the XDP return
/// code (`enum xdp_action` in include/uapi/linux/bpf.h), so the action
/// counter is indexed by the value the program returns.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Aborted = 0,
    Drop = 1,
    Pass = 2,
    Tx = 3,
    Redirect = 4,
}

impl Action {
    pub const COUNT: u32 = 5;
    pub const ALL: [Action; 5] = [
        Self::Aborted,
        Self::Drop,
        Self::Pass,
        Self::Tx,
        Self::Redirect,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Aborted => "aborted",
            Self::Drop => "drop",
            Self::Pass => "pass",
            Self::Tx => "tx",
            Self::Redirect => "redirect",
        }
    }

    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Aborted),
            1 => Some(Self::Drop),
            2 => Some(Self::Pass),
            3 => Some(Self::Tx),
            4 => Some(Self::Redirect),
            _ => None,
        }
    }
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $value:literal, $name:literal;)+) => {
        /// Why the program took its action. Every packet is counted once
        /// here and once in its [`Action`].
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$doc])* $variant = $value,)+
        }

        impl Reason {
            pub const ALL: &[Reason] = &[$(Self::$variant,)+];
            pub const COUNT: u32 = Self::ALL.len() as u32;

            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

reasons! {
    /// Forwarded toward the backbone (microsoft preference, from the customer).
    Backbone = 0, "backbone";
    /// Forwarded to the PoP the prefix's policy selected (microsoft
    /// preference, toward the customer).
    Policy = 1, "policy";
    /// Forwarded to the transit exit (internet preference).
    Transit = 2, "transit";
    /// Not IPv4 or IPv6 (ARP, LLDP, more VLAN tags than parsed): the kernel's business.
    NotIp = 3, "not_ip";
    /// Truncated or inconsistent headers: handed to the kernel untouched.
    Malformed = 4, "malformed";
    /// IPv4 with options: the kernel's slow path.
    Ipv4Options = 5, "ipv4_options";
    /// An IPv4 or IPv6 fragment.
    Fragment = 6, "fragment";
    /// An IPv6 extension header the program does not walk.
    Ipv6Extension = 7, "ipv6_extension";
    /// Link-local control: an IPv4 destination from 224.0.0.0 up
    /// (multicast, class E, limited broadcast); an IPv6 ff00::/8
    /// destination, fe80::/10 at either end, ICMPv6 types 133-137.
    Control = 8, "control";
    /// Addressed to this host itself (BGP sessions, probes, management).
    Local = 9, "local";
    /// The ingress interface is not a configured port.
    UnknownPort = 10, "unknown_port";
    /// No registered prefix covers the classified address.
    Unregistered = 11, "unregistered";
    /// A protected prefix arrived on a peering port it is not registered on.
    Protection = 12, "protection";
    /// TTL or hop limit ≤ 1: the kernel sends the ICMP time-exceeded.
    TtlExceeded = 13, "ttl_exceeded";
    /// No PoP: the selection slot (policy or exit) is empty, because every
    /// candidate is down and the fallback is `pass`; the exit is not
    /// configured; or the PoP entry is unused.
    NoNextHop = 14, "no_next_hop";
    /// The PoP's egress port is not in the TX port map.
    NoTxPort = 15, "no_tx_port";
    /// Growing the frame for encapsulation (or for an ICMP error) failed.
    EncapFailed = 16, "encap_failed";
    /// Too big for the PoP's link MTU (with its tunnel header): an ICMP
    /// "fragmentation needed" / "packet too big" went back to the sender.
    TooBig = 17, "too_big";
    /// Too big, and the ICMP errors were over their rate limit: dropped.
    TooBigLimited = 18, "too_big_limited";
    /// Too big, IPv4 without DF: the kernel's (it may fragment it).
    TooBigNoDf = 19, "too_big_no_df";
    /// Too big, and no ICMP from here: a PoP without a tunnel of the
    /// packet's family (no address of this host to send from), an ICMP
    /// error, a frame to a group MAC. The kernel's.
    TooBigNoIcmp = 20, "too_big_no_icmp";
    /// A source or destination no router forwards (RFC 1812 5.3.7, RFC
    /// 4291): 0/8, 127/8, 169.254/16, a multicast or class E source;
    /// ::, ::1, IPv4-mapped, a multicast source. Dropped, even when a
    /// registered prefix (a default route) covers it.
    Martian = 21, "martian";
    /// Arrived on an interface with logical ports by VLAN tags, with tags
    /// (or none) that no port claims: the kernel's.
    UnknownVlan = 22, "unknown_vlan";
}

/// The policy table slot of a flow hash: `hash * POLICY_SLOTS / 2^32`
/// (Lemire's range reduction). Unlike `%`, the verifier can follow its
/// bound, so the table access needs no check the compiler could remove.
#[inline(always)]
pub const fn policy_slot(hash: u32) -> usize {
    ((hash as u64 * POLICY_SLOTS as u64) >> 32) as usize
}

/// FNV-style mixing of one 32-bit word into a running hash.
#[inline(always)]
const fn mix(h: u32, w: u32) -> u32 {
    let h = (h ^ w).wrapping_mul(0x9E37_79B1);
    h ^ (h >> 15)
}

/// Final avalanche (murmur3's fmix32), so that `% POLICY_SLOTS` sees all bits.
#[inline(always)]
const fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

const FLOW_SEED: u32 = 0x6564_6765; // "edge"

/// Flow hash of an IPv4 packet. `ports` is the 32-bit word holding the
/// source and destination ports as they sit in the packet (0 when the
/// packet has no ports). Words are taken in memory order (`from_ne_bytes`),
/// the same in kernel and userspace on one host.
#[inline(always)]
pub const fn flow_hash_v4(src: [u8; 4], dst: [u8; 4], proto: u8, ports: u32) -> u32 {
    let mut h = mix(FLOW_SEED, u32::from_ne_bytes(src));
    h = mix(h, u32::from_ne_bytes(dst));
    h = mix(h, ports);
    fmix(mix(h, proto as u32))
}

/// Mixes the four words of an IPv6 address into `h`.
#[inline(always)]
const fn mix_v6(mut h: u32, a: &[u8; 16]) -> u32 {
    h = mix(h, u32::from_ne_bytes([a[0], a[1], a[2], a[3]]));
    h = mix(h, u32::from_ne_bytes([a[4], a[5], a[6], a[7]]));
    h = mix(h, u32::from_ne_bytes([a[8], a[9], a[10], a[11]]));
    mix(h, u32::from_ne_bytes([a[12], a[13], a[14], a[15]]))
}

/// Flow hash of an IPv6 packet; see [`flow_hash_v4`].
#[inline(always)]
pub const fn flow_hash_v6(src: [u8; 16], dst: [u8; 16], proto: u8, ports: u32) -> u32 {
    let mut h = mix_v6(FLOW_SEED, &src);
    h = mix_v6(h, &dst);
    h = mix(h, ports);
    fmix(mix(h, proto as u32))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all types are `#[repr(C)]`, made of integers and byte arrays,
    // with explicit padding and no implicit holes (checked by the size asserts).
    unsafe impl aya::Pod for super::PortEntry {}
    unsafe impl aya::Pod for super::PortSlot {}
    unsafe impl aya::Pod for super::LportKey {}
    unsafe impl aya::Pod for super::PrefixEntry {}
    unsafe impl aya::Pod for super::Registered4 {}
    unsafe impl aya::Pod for super::Registered6 {}
    unsafe impl aya::Pod for super::PolicyTable {}
    unsafe impl aya::Pod for super::Pop {}
    unsafe impl aya::Pod for super::Settings {}
    unsafe impl aya::Pod for super::Counter {}
    unsafe impl aya::Pod for super::ProtectionEvent {}
    unsafe impl aya::Pod for super::EventBudget {}
    unsafe impl aya::Pod for super::Tail6 {}
    unsafe impl aya::Pod for super::rtt::RttFlow {}
    unsafe impl aya::Pod for super::rtt::RttState {}
    unsafe impl aya::Pod for super::rtt::RttBucketKey {}
    unsafe impl aya::Pod for super::rtt::RttScratch {}
    unsafe impl aya::Pod for super::rtt::RttGate {}
    unsafe impl aya::Pod for super::rtt::RttPace {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_discriminants_are_xdp_codes() {
        // include/uapi/linux/bpf.h: XDP_ABORTED = 0, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT.
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(*a as u32, i as u32);
            assert_eq!(Action::from_u32(i as u32), Some(*a));
        }
        assert_eq!(Action::from_u32(Action::COUNT), None);
    }

    #[test]
    fn reasons_are_dense_and_named_uniquely() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as u32, i as u32);
            assert!(Reason::ALL[..i].iter().all(|o| o.name() != r.name()));
        }
    }

    #[test]
    fn map_names_fit_the_kernel() {
        for n in map_names::ALL {
            assert!(n.len() <= 15, "{n} is longer than BPF_OBJ_NAME_LEN - 1");
        }
    }

    #[test]
    fn flow_hash_spreads_evenly_over_the_slots() {
        // 100k flows from one prefix to one server, varying the source port:
        // every slot gets close to its share.
        let mut hits = [0u32; POLICY_SLOTS];
        let flows = 100_000u32;
        for i in 0..flows {
            let src = [192, 0, 2, (i % 256) as u8];
            let ports = u32::from_ne_bytes([((i >> 8) & 0xff) as u8, (i >> 16) as u8, 0x01, 0xbb]);
            hits[policy_slot(flow_hash_v4(src, [203, 0, 113, 10], 6, ports))] += 1;
        }
        let mean = f64::from(flows) / POLICY_SLOTS as f64;
        let (min, max) = (*hits.iter().min().unwrap(), *hits.iter().max().unwrap());
        assert!(
            f64::from(min) > mean * 0.5 && f64::from(max) < mean * 1.6,
            "min {min} max {max} mean {mean}"
        );
    }

    #[test]
    fn a_tail_covers_its_prefix_only() {
        let tail = |hi: u64, lo: u64, len: u32| Tail6 {
            key_hi: hi,
            key_lo: lo,
            len,
            ..Tail6::default()
        };
        // 2001:db8:1::/48
        let t = tail(0x2001_0db8_0001_0000, 0, 48);
        assert!(t.covers(0x2001_0db8_0001_ffff, u64::MAX));
        assert!(!t.covers(0x2001_0db8_0002_0000, 0));
        // /64, /65 and /128 at the word boundaries.
        let t = tail(0x2001_0db8_0001_0002, 0, 64);
        assert!(t.covers(0x2001_0db8_0001_0002, u64::MAX));
        assert!(!t.covers(0x2001_0db8_0001_0003, 0));
        let t = tail(0x2001_0db8_0001_0002, 1 << 63, 65);
        assert!(t.covers(0x2001_0db8_0001_0002, u64::MAX));
        assert!(!t.covers(0x2001_0db8_0001_0002, 1));
        let t = tail(1, 7, 128);
        assert!(t.covers(1, 7));
        assert!(!t.covers(1, 6));
        // /17: one bit past the root's /16.
        let t = tail(0x2001_8000_0000_0000, 0, 17);
        assert!(t.covers(0x2001_ffff_0000_0000, 0));
        assert!(!t.covers(0x2001_7fff_0000_0000, 0));
    }

    #[test]
    fn flow_hash_depends_on_every_field() {
        let base = flow_hash_v6([1; 16], [2; 16], 17, 1234);
        assert_ne!(base, flow_hash_v6([3; 16], [2; 16], 17, 1234));
        assert_ne!(base, flow_hash_v6([1; 16], [3; 16], 17, 1234));
        assert_ne!(base, flow_hash_v6([1; 16], [2; 16], 6, 1234));
        assert_ne!(base, flow_hash_v6([1; 16], [2; 16], 17, 1235));
        assert_eq!(base, flow_hash_v6([1; 16], [2; 16], 17, 1234));
    }
}

// ---------------------------------------------------------------------------
// Protocol constants shared by the XDP program and userspace.
// ---------------------------------------------------------------------------

/// Values of [`ProtectionEvent::family`].
pub mod event_family {
    /// The addresses are IPv4 (in the first 4 bytes).
    pub const IPV4: u8 = 4;
    /// The addresses are IPv6.
    pub const IPV6: u8 = 6;
}
