//! Every map of the program. Names are the constants in `edge_common::map_names`
//! (a packet test checks that each one exists in the object).

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, LpmTrie, PerCpuArray},
};
use edge_common::{Counter, Pop, PrefixEntry, limits};

/// IPv4 registered prefixes (key: address in network byte order). Written by edged.
#[map]
pub static EDGE_PFX_V4: LpmTrie<[u8; 4], PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_PREFIXES_V4, 0);

/// IPv6 registered prefixes (key: address in network byte order). Written by edged.
#[map]
pub static EDGE_PFX_V6: LpmTrie<[u8; 16], PrefixEntry> =
    LpmTrie::with_max_entries(limits::MAX_PREFIXES_V6, 0);

/// PoP id → next hop (egress port, MACs). Written by edged.
#[map]
pub static EDGE_POPS: Array<Pop> = Array::with_max_entries(limits::MAX_POPS, 0);

/// Egress ifindex → device, for bpf_redirect_map. Written by edged.
#[map]
pub static EDGE_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(limits::MAX_TX_PORTS, 0);

/// Packets and bytes per action (index = XDP return code). Written here, read by edged/edgectl.
#[map]
pub static EDGE_ACT_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(edge_common::Action::COUNT, 0);

/// Packets and bytes per reason. Written here, read by edged/edgectl.
#[map]
pub static EDGE_RSN_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(edge_common::Reason::COUNT, 0);
