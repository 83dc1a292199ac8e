//! What differs between IPv4 and IPv6, in one place. The pipeline in
//! `main.rs` is written once, generic over [`Family`], and compiled once per
//! family: each method is a small inline piece of parse, classify or
//! rewrite, so the generic code costs nothing at run time.

use aya_ebpf::{maps::lpm_trie::Key, programs::XdpContext};
use edge_common::{
    Action, Pop, PrefixEntry, Reason, event_family, flow_hash_v4, flow_hash_v6, pop_flags,
};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    classify, fib, fib6, icmp,
    maps::{EDGE_DOM_V4, EDGE_DOM_V6, EDGE_LPM_V4, EDGE_LPM_V6},
    parse::{self, L2, L3},
    rewrite,
};

/// An IP family, implemented by its header type.
pub trait Family: Sized {
    /// An address, network byte order.
    type Addr: Copy + AsRef<[u8]>;
    /// `ProtectionEvent::family`.
    const EVENT: u8;
    /// The `pop_flags` tunnel bit of the family.
    const ENCAP: u32;
    /// The reason of a header with `L3::options`.
    const OPTIONS: Reason;
    /// Bytes the tunnel of the family adds (its outer header).
    const TUNNEL_LEN: usize;
    /// The EtherType of the family (host order).
    const ETHER_TYPE: u16;

    /// The network header at `l3`; `Err` if malformed.
    fn parse(ctx: &XdpContext, l3: usize) -> Result<L3<Self>, ()>;
    /// `Err(reason)` for control traffic, which stays with the kernel.
    fn control(ctx: &XdpContext, ip: &L3<Self>) -> Result<(), Reason>;
    /// Whether the source or destination is one no router forwards.
    fn martian(ip: &L3<Self>) -> bool;
    /// Whether `dst` is one of this host's addresses.
    fn is_local(dst: &Self::Addr) -> bool;
    /// The longest registered prefix covering `addr`: through the bench's
    /// kernel LPM trie with `LPM`, else through edge's own tables
    /// (DIR-24-8 for IPv4, the multibit trie for IPv6).
    fn lookup<const LPM: bool>(addr: Self::Addr) -> Option<&'static PrefixEntry>;
    /// The longest prefix of private routing domain `domain` covering
    /// `addr`, through the domain trie (key: the domain id, then `addr`).
    fn domain_lookup(domain: u32, addr: &Self::Addr) -> Option<&'static PrefixEntry>;
    /// The flow hash of the policy table.
    fn flow_hash(ip: &L3<Self>, ports: u32) -> u32;
    /// The flow hash the other direction of the packet's flow has (its
    /// addresses and ports swapped).
    fn flow_hash_reverse(ip: &L3<Self>, ports: u32) -> u32;
    /// `addr` as two words laid out as its bytes in memory (IPv4: the
    /// first word's low half, the rest zero): flow keys are written with
    /// word stores, not a byte loop.
    fn words(addr: &Self::Addr) -> [u64; 2];
    /// TTL or hop limit.
    fn ttl(hdr: *const Self) -> u8;
    /// Writes `dscp` into the DS field, keeping the ECN bits.
    fn set_dscp(hdr: *mut Self, dscp: u8);
    /// Decrements the TTL or hop limit.
    fn decrement_ttl(hdr: *mut Self);
    /// Encapsulates the packet at `l2_len` in a tunnel to `pop`.
    fn encap(ctx: &XdpContext, l2_len: usize, pop: &Pop, ttl: u8) -> Result<(), ()>;
    /// A packet too big for `pop`'s link: the ICMP error back to its sender
    /// (the frame rewritten, `XDP_TX`), or the kernel, or a drop.
    fn too_big(ctx: &XdpContext, l2: &L2, ip: &L3<Self>, pop: &Pop) -> (Action, Reason);
}

impl Family for Ipv4Hdr {
    type Addr = [u8; 4];
    const EVENT: u8 = event_family::IPV4;
    const ENCAP: u32 = pop_flags::ENCAP_IPIP;
    const OPTIONS: Reason = Reason::Ipv4Options;
    const TUNNEL_LEN: usize = Ipv4Hdr::LEN;
    const ETHER_TYPE: u16 = parse::ETH_P_IP;

    #[inline(always)]
    fn parse(ctx: &XdpContext, l3: usize) -> Result<L3<Self>, ()> {
        parse::ipv4(ctx, l3)
    }

    #[inline(always)]
    fn control(_ctx: &XdpContext, ip: &L3<Self>) -> Result<(), Reason> {
        classify::ipv4_control(&ip.dst)
    }

    #[inline(always)]
    fn martian(ip: &L3<Self>) -> bool {
        classify::ipv4_martian(&ip.src, &ip.dst)
    }

    #[inline(always)]
    fn is_local(dst: &[u8; 4]) -> bool {
        classify::ipv4_is_local(dst)
    }

    #[inline(always)]
    fn lookup<const LPM: bool>(addr: [u8; 4]) -> Option<&'static PrefixEntry> {
        if LPM {
            EDGE_LPM_V4.get(Key::new(32, addr))
        } else {
            fib::lookup_v4(addr)
        }
    }

    #[inline(always)]
    fn domain_lookup(domain: u32, addr: &[u8; 4]) -> Option<&'static PrefixEntry> {
        domain_lookup_v4(domain, addr)
    }

    #[inline(always)]
    fn flow_hash(ip: &L3<Self>, ports: u32) -> u32 {
        flow_hash_v4(ip.src, ip.dst, ip.proto, ports)
    }

    #[inline(always)]
    fn flow_hash_reverse(ip: &L3<Self>, ports: u32) -> u32 {
        flow_hash_v4(ip.dst, ip.src, ip.proto, ports.rotate_left(16))
    }

    #[inline(always)]
    fn words(addr: &[u8; 4]) -> [u64; 2] {
        [u64::from(u32::from_ne_bytes(*addr)), 0]
    }

    #[inline(always)]
    fn ttl(hdr: *const Self) -> u8 {
        // SAFETY: `hdr` is an `L3::hdr`, inside the frame (checked by the parser).
        unsafe { (*hdr).ttl }
    }

    #[inline(always)]
    fn set_dscp(hdr: *mut Self, dscp: u8) {
        rewrite::ipv4_set_dscp(hdr, dscp);
    }

    #[inline(always)]
    fn decrement_ttl(hdr: *mut Self) {
        rewrite::ipv4_decrement_ttl(hdr);
    }

    #[inline(always)]
    fn encap(ctx: &XdpContext, l2_len: usize, pop: &Pop, ttl: u8) -> Result<(), ()> {
        rewrite::encap_ipip(ctx, l2_len, pop, ttl)
    }

    #[inline(always)]
    fn too_big(ctx: &XdpContext, l2: &L2, ip: &L3<Self>, pop: &Pop) -> (Action, Reason) {
        icmp::ipv4(ctx, l2, ip, pop)
    }
}

impl Family for Ipv6Hdr {
    type Addr = [u8; 16];
    const EVENT: u8 = event_family::IPV6;
    const ENCAP: u32 = pop_flags::ENCAP_IP6IP6;
    const OPTIONS: Reason = Reason::Ipv6Extension;
    const TUNNEL_LEN: usize = Ipv6Hdr::LEN;
    const ETHER_TYPE: u16 = parse::ETH_P_IPV6;

    #[inline(always)]
    fn parse(ctx: &XdpContext, l3: usize) -> Result<L3<Self>, ()> {
        parse::ipv6(ctx, l3)
    }

    #[inline(always)]
    fn control(ctx: &XdpContext, ip: &L3<Self>) -> Result<(), Reason> {
        classify::ipv6_control(ctx, ip)
    }

    #[inline(always)]
    fn martian(ip: &L3<Self>) -> bool {
        classify::ipv6_martian(&ip.src, &ip.dst)
    }

    #[inline(always)]
    fn is_local(dst: &[u8; 16]) -> bool {
        classify::ipv6_is_local(dst)
    }

    #[inline(always)]
    fn lookup<const LPM: bool>(addr: [u8; 16]) -> Option<&'static PrefixEntry> {
        if LPM {
            EDGE_LPM_V6.get(Key::new(128, addr))
        } else {
            fib6::lookup_v6(addr)
        }
    }

    #[inline(always)]
    fn domain_lookup(domain: u32, addr: &[u8; 16]) -> Option<&'static PrefixEntry> {
        domain_lookup_v6(domain, addr)
    }

    #[inline(always)]
    fn flow_hash(ip: &L3<Self>, ports: u32) -> u32 {
        flow_hash_v6(ip.src, ip.dst, ip.proto, ports)
    }

    #[inline(always)]
    fn flow_hash_reverse(ip: &L3<Self>, ports: u32) -> u32 {
        flow_hash_v6(ip.dst, ip.src, ip.proto, ports.rotate_left(16))
    }

    #[inline(always)]
    fn words(addr: &[u8; 16]) -> [u64; 2] {
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            b0,
            b1,
            b2,
            b3,
            b4,
            b5,
            b6,
            b7,
        ] = *addr;
        [
            u64::from_ne_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            u64::from_ne_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        ]
    }

    #[inline(always)]
    fn ttl(hdr: *const Self) -> u8 {
        // SAFETY: `hdr` is an `L3::hdr`, inside the frame (checked by the parser).
        unsafe { (*hdr).hop_limit }
    }

    #[inline(always)]
    fn set_dscp(hdr: *mut Self, dscp: u8) {
        rewrite::ipv6_set_dscp(hdr, dscp);
    }

    #[inline(always)]
    fn decrement_ttl(hdr: *mut Self) {
        rewrite::ipv6_decrement_hop_limit(hdr);
    }

    #[inline(always)]
    fn encap(ctx: &XdpContext, l2_len: usize, pop: &Pop, ttl: u8) -> Result<(), ()> {
        rewrite::encap_ip6ip6(ctx, l2_len, pop, ttl)
    }

    #[inline(always)]
    fn too_big(ctx: &XdpContext, l2: &L2, ip: &L3<Self>, pop: &Pop) -> (Action, Reason) {
        icmp::ipv6(ctx, l2, ip, pop)
    }
}

/// The private domains' lookups, functions of their own in the object
/// (BPF-to-BPF calls): their keys (12 and 24 bytes) live in their own
/// stack frames, beside customer latency's call rather than under it.
#[inline(never)]
fn domain_lookup_v4(domain: u32, a: &[u8; 4]) -> Option<&'static PrefixEntry> {
    let d = domain.to_be_bytes();
    let key = [d[0], d[1], d[2], d[3], a[0], a[1], a[2], a[3]];
    EDGE_DOM_V4.get(Key::new(32 + 32, key))
}

#[inline(never)]
fn domain_lookup_v6(domain: u32, a: &[u8; 16]) -> Option<&'static PrefixEntry> {
    let d = domain.to_be_bytes();
    // Element by element: a slice copy may become a byte-wise memmove call.
    #[rustfmt::skip]
    let key = [
        d[0], d[1], d[2], d[3],
        a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
        a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15],
    ];
    EDGE_DOM_V6.get(Key::new(32 + 128, key))
}
