//! Every map of the program. Names are the constants in `edge_common::map_names`
//! (a packet test checks that each one exists in the object). Userspace
//! (edged) writes every map except the counters, which only this program writes.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use edge_common::{
    Action, Counter, DomainKey4, DomainKey6, LportKey, PolicyTable, Pop, PortEntry, PortSlot,
    PrefixEntry, Reason, Registered4, Registered6, Settings, limits,
};

/// Ingress ifindex → port role and id.
#[map]
pub static EDGE_PORTS: HashMap<u32, PortEntry> = HashMap::with_max_entries(limits::MAX_PORTS, 0);

/// Ingress ifindex → port, for ifindexes below `limits::PORT_INDEX`: one
/// array load instead of a hash lookup. Userspace writes it with `EDGE_PORTS`.
#[map]
pub static EDGE_PORT_IDX: Array<PortSlot> = Array::with_max_entries(limits::PORT_INDEX, 0);

/// Logical ports: (ifindex, exact VLAN tags) → port, for tagged frames on
/// interfaces whose entry has `port_flags::TAGGED`.
#[map]
pub static EDGE_LPORTS: HashMap<LportKey, PortEntry> =
    HashMap::with_max_entries(limits::MAX_LPORTS, 0);

/// The private routing domains' IPv4 prefixes (key: domain id big endian,
/// then the address; prefix length 32 + the prefix's).
#[map]
pub static EDGE_DOM_V4: LpmTrie<DomainKey4, PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_DOMAIN_PREFIXES, 0);

/// The private routing domains' IPv6 prefixes (as `EDGE_DOM_V4`, 32 + 128 bits).
#[map]
pub static EDGE_DOM_V6: LpmTrie<DomainKey6, PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_DOMAIN_PREFIXES, 0);

/// The IPv4 prefix registry: edged's records, never read here; in the
/// object so that it is created and pinned with the rest.
#[map]
pub static EDGE_PFX_V4: Array<Registered4> =
    Array::with_max_entries(limits::MAX_PREFIXES_V4, aya_ebpf::bindings::BPF_F_MMAPABLE);

/// The IPv6 prefix registry, as `EDGE_PFX_V4`.
#[map]
pub static EDGE_PFX_V6: Array<Registered6> =
    Array::with_max_entries(limits::MAX_PREFIXES_V6, aya_ebpf::bindings::BPF_F_MMAPABLE);

/// IPv4 prefixes in the kernel's LPM trie (key: address in network byte
/// order), for `edge_lpm` only: the bench's reference lookup, filled by
/// the bench. edged neither pins nor writes it.
#[map]
pub static EDGE_LPM_V4: LpmTrie<[u8; 4], PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_PREFIXES_V4, 0);

/// IPv6 prefixes in the kernel's LPM trie, as `EDGE_LPM_V4`.
#[map]
pub static EDGE_LPM_V6: LpmTrie<[u8; 16], PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_PREFIXES_V6, 0);

/// Policy id → selection table (flow hash → PoP id).
#[map]
pub static EDGE_POLICIES: Array<PolicyTable> = Array::with_max_entries(limits::MAX_POLICIES, 0);

/// PoP id → next hop (egress port, MACs, optional tunnel).
#[map]
pub static EDGE_POPS: Array<Pop> = Array::with_max_entries(limits::MAX_POPS, 0);

/// Egress ifindex → device, for bpf_redirect_map.
#[map]
pub static EDGE_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(limits::MAX_PORTS, 0);

/// Global settings (one entry).
#[map]
pub static EDGE_SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// This host's own IPv4 addresses: traffic to them goes to the kernel.
#[map]
pub static EDGE_LOCAL_V4: HashMap<[u8; 4], u8> =
    HashMap::with_max_entries(limits::MAX_LOCAL_ADDRS, 0);

/// This host's own IPv6 addresses.
#[map]
pub static EDGE_LOCAL_V6: HashMap<[u8; 16], u8> =
    HashMap::with_max_entries(limits::MAX_LOCAL_ADDRS, 0);

/// Filter in front of `EDGE_LOCAL_V4`/`EDGE_LOCAL_V6`: bit
/// `edge_common::local_bit` of every local address is set, so most packets
/// skip the hash lookup with one array load.
#[map]
pub static EDGE_LOCAL_BITS: Array<u64> = Array::with_max_entries(limits::LOCAL_BITS / 64, 0);

/// Packets and bytes per action (index = XDP return code).
#[map]
pub static EDGE_ACT_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(Action::COUNT, 0);

/// Packets and bytes per reason.
#[map]
pub static EDGE_RSN_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(Reason::COUNT, 0);

/// Packets and bytes per prefix counter slot (classified packets).
#[map]
pub static EDGE_PFX_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(limits::MAX_PREFIX_SLOTS, 0);

/// Packets and bytes sent to each PoP.
#[map]
pub static EDGE_POP_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(limits::MAX_POPS, 0);

/// Packets and bytes received per port id.
#[map]
pub static EDGE_PORT_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(limits::MAX_PORTS, 0);

/// Protection violations for edged, rate-limited by `EDGE_EVT_BUDGET`.
#[map]
pub static EDGE_EVENTS: RingBuf = RingBuf::with_byte_size(edge_common::EVENT_RING_BYTES, 0);

/// The per-CPU token bucket of the events.
#[map]
pub static EDGE_EVT_BUDGET: PerCpuArray<edge_common::EventBudget> =
    PerCpuArray::with_max_entries(1, 0);

/// Events sent, rate-limited, lost to a full ring (`edge_common::event_stats`).
#[map]
pub static EDGE_EVT_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(edge_common::event_stats::COUNT, 0);

/// The per-CPU token bucket of the ICMP errors the program sends
/// (`edge_common::ICMP_RATE`).
#[map]
pub static EDGE_ICMP_BDGT: PerCpuArray<edge_common::EventBudget> =
    PerCpuArray::with_max_entries(1, 0);

/// The TCP flows customer latency waits on (`rtt.rs`); its size is
/// `[limits] rtt_flows` (set at load). LRU: when full, the least recently
/// used flow makes room, losing the sample it waited for.
#[map]
pub static EDGE_RTT_FLOWS: LruHashMap<edge_common::rtt::RttFlow, edge_common::rtt::RttState> =
    LruHashMap::with_max_entries(limits::RTT_FLOWS, 0);

/// Customer latency histograms: (prefix slot, bucket) → samples, per CPU;
/// its size is `[limits] rtt_buckets`.
#[map]
pub static EDGE_RTT_HIST: PerCpuHashMap<edge_common::rtt::RttBucketKey, u64> =
    PerCpuHashMap::with_max_entries(limits::RTT_BUCKETS, 0);

/// What customer latency did (`edge_common::rtt::rtt_stats`).
#[map]
pub static EDGE_RTT_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(edge_common::rtt::rtt_stats::COUNT, 0);

/// Customer latency's gates (`rtt.rs`): what the customer's packets may answer.
#[map]
pub static EDGE_RTT_GATE: Array<edge_common::rtt::RttGate> =
    Array::with_max_entries(limits::RTT_GATES, 0);

/// Customer latency's paces (`rtt.rs`): the per-flow interval toward the customer.
#[map]
pub static EDGE_RTT_PACE: Array<edge_common::rtt::RttPace> =
    Array::with_max_entries(limits::RTT_GATES, 0);

/// `CLOCK_MONOTONIC` as edged last wrote it (`edge_common::rtt::CLOCK_TICK_NS`).
#[map]
pub static EDGE_RTT_CLOCK: Array<u64> =
    Array::with_max_entries(1, aya_ebpf::bindings::BPF_F_MMAPABLE);

/// Per-CPU room for the flow key and a new flow state (`rtt.rs`).
#[map]
pub static EDGE_RTT_SCR: PerCpuArray<edge_common::rtt::RttScratch> =
    PerCpuArray::with_max_entries(1, 0);
