//! Every type that crosses the kernel/user boundary, defined once.
//!
//! Rules (see shared/style.md): `#[repr(C)]`, fixed-width integers, explicit
//! padding, no `bool`/`Option`/Rust enums inside map values, `aya::Pod` only
//! behind the `user` feature. Keys are built zeroed so padding never makes a
//! lookup miss.
#![no_std]

/// Map names, shared by the kernel program (`#[map(name = ...)]`) and userspace.
/// Kernel map names hold at most 15 characters.
pub mod map_names {
    /// LPM trie: IPv4 prefix → [`crate::PrefixEntry`].
    pub const PREFIX_V4: &str = "EDGE_PFX_V4";
    /// LPM trie: IPv6 prefix → [`crate::PrefixEntry`].
    pub const PREFIX_V6: &str = "EDGE_PFX_V6";
    /// Array: PoP id → [`crate::Pop`] (next hop).
    pub const POPS: &str = "EDGE_POPS";
    /// DEVMAP_HASH: egress ifindex → egress ifindex, for `bpf_redirect_map`.
    pub const TX_PORTS: &str = "EDGE_TX_PORTS";
    /// Per-CPU array: [`crate::Action`] → [`crate::Counter`].
    pub const ACTION_STATS: &str = "EDGE_ACT_STATS";
    /// Per-CPU array: [`crate::Reason`] → [`crate::Counter`].
    pub const REASON_STATS: &str = "EDGE_RSN_STATS";

    /// Every map the daemon pins, in a stable order.
    pub const ALL: [&str; 6] = [
        PREFIX_V4,
        PREFIX_V6,
        POPS,
        TX_PORTS,
        ACTION_STATS,
        REASON_STATS,
    ];
}

/// Program names inside the eBPF object.
pub mod prog_names {
    /// The forwarder.
    pub const EDGE: &str = "edge";
    /// `XDP_PASS` only: attached to veth peers so that XDP_REDIRECT into a veth
    /// is delivered (a veth drops redirected frames unless its peer runs XDP).
    pub const PASS: &str = "edge_pass";
}

/// Capacity limits of the maps. Userspace checks them before writing and names
/// the limit in its error.
pub mod limits {
    pub const MAX_PREFIXES_V4: u32 = 1 << 20;
    pub const MAX_PREFIXES_V6: u32 = 1 << 18;
    pub const MAX_POPS: u32 = 256;
    pub const MAX_TX_PORTS: u32 = 64;
    /// Most VLAN tags (802.1Q / 802.1ad) the parser walks.
    pub const VLAN_MAX_DEPTH: usize = 2;
}

/// A registered prefix: what the longest-prefix match returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixEntry {
    /// Index into the PoP array.
    pub pop: u32,
    /// Reserved for registration/policy data; zero.
    pub _reserved: u32,
}
const _: () = assert!(core::mem::size_of::<PrefixEntry>() == 8);

/// A PoP entry is in use.
pub const POP_F_VALID: u32 = 1;

/// A next hop: where and how a packet leaves this host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pop {
    /// Egress interface index.
    pub ifindex: u32,
    /// `POP_F_*` bits; an all-zero entry is unused.
    pub flags: u32,
    /// Source MAC written into forwarded frames (the egress port's address).
    pub src_mac: [u8; 6],
    /// Destination MAC written into forwarded frames (the next hop's address).
    pub dst_mac: [u8; 6],
    pub _pad: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Pop>() == 24);

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

/// Why the program took its action. Every packet is counted once here and
/// once in its [`Action`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Matched a registered prefix and sent to its next hop.
    Forwarded = 0,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...): the kernel's business.
    NotIp = 1,
    /// Truncated or inconsistent headers: handed to the kernel, which drops
    /// or accounts for them as it always does.
    Malformed = 2,
    /// No registered prefix covers the address.
    Unregistered = 3,
    /// TTL or hop limit ≤ 1: the kernel sends the ICMP time-exceeded.
    TtlExceeded = 4,
    /// The prefix names a PoP that has no valid next hop.
    NoNextHop = 5,
    /// The egress port is not in the TX port map.
    NoTxPort = 6,
}

impl Reason {
    pub const COUNT: u32 = 7;
    pub const ALL: [Reason; 7] = [
        Self::Forwarded,
        Self::NotIp,
        Self::Malformed,
        Self::Unregistered,
        Self::TtlExceeded,
        Self::NoNextHop,
        Self::NoTxPort,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::NotIp => "not_ip",
            Self::Malformed => "malformed",
            Self::Unregistered => "unregistered",
            Self::TtlExceeded => "ttl_exceeded",
            Self::NoNextHop => "no_next_hop",
            Self::NoTxPort => "no_tx_port",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all types are `#[repr(C)]`, made of integers and byte arrays,
    // with explicit padding and no implicit holes (checked by the size asserts).
    unsafe impl aya::Pod for super::PrefixEntry {}
    unsafe impl aya::Pod for super::Pop {}
    unsafe impl aya::Pod for super::Counter {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_discriminants_are_xdp_codes() {
        // include/uapi/linux/bpf.h: XDP_ABORTED = 0, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT.
        assert_eq!(Action::Aborted as u32, 0);
        assert_eq!(Action::Drop as u32, 1);
        assert_eq!(Action::Pass as u32, 2);
        assert_eq!(Action::Tx as u32, 3);
        assert_eq!(Action::Redirect as u32, 4);
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(Action::from_u32(i as u32), Some(*a));
        }
        assert_eq!(Action::from_u32(Action::COUNT), None);
    }

    #[test]
    fn reasons_are_dense() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as u32, i as u32);
        }
        assert_eq!(Reason::ALL.len() as u32, Reason::COUNT);
    }

    #[test]
    fn map_names_fit_the_kernel() {
        for n in map_names::ALL {
            assert!(n.len() <= 15, "{n} is longer than BPF_OBJ_NAME_LEN - 1");
        }
    }
}
