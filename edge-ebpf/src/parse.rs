//! Bounds-checked header access and one small parser per layer, in the spirit
//! of xdp-tools' parsing helpers: each returns what the next step needs, or
//! `Err(())` when the frame is too short or inconsistent.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use edge_common::{VLAN_PRESENT, VLAN_VID_MASK, limits::VLAN_MAX_DEPTH};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::{csum, family::Family};

// EtherTypes (include/uapi/linux/if_ether.h).
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;

// IP protocol and IPv6 next-header numbers (IANA, include/uapi/linux/in.h, in6.h).
/// IPv6 hop-by-hop options.
const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_ICMP: u8 = 1;
/// IPv4 in IP (RFC 2003): the outer protocol of an IPv4 tunnel.
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 in IP (RFC 2473): the outer next header of an IPv6 tunnel.
pub const IPPROTO_IPV6: u8 = 41;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_AH: u8 = 51;
pub const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_MH: u8 = 135;
const IPPROTO_HIP: u8 = 139;
const IPPROTO_SHIM6: u8 = 140;
/// RFC 3692 experimentation and testing.
const IPPROTO_EXPERIMENT1: u8 = 253;
const IPPROTO_EXPERIMENT2: u8 = 254;

/// The IPv4 version field.
pub const IPV4_VERSION: u8 = 4;
/// The IHL of a header without options (in 32-bit words).
pub const IPV4_IHL_MIN: u8 = 5;
/// Don't fragment, in the first byte of the flags/fragment offset field.
pub const IPV4_DF: u8 = 0x40;
/// More fragments and the fragment offset.
const IPV4_MF_OFFSET: u16 = 0x3FFF;
/// The IPv6 version field.
const IPV6_VERSION: u8 = 6;

/// A pointer to a `T` at `offset` bytes into the frame, if the whole `T` is inside it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

/// The frame's length in bytes.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

/// The link layer: Ethernet plus up to `VLAN_MAX_DEPTH` tags.
pub struct L2 {
    pub eth: *mut EthHdr,
    /// EtherType after the tags (host order).
    pub proto: u16,
    /// Offset of the network header = length of the L2 header (14, 18 or 22).
    pub l3: usize,
    /// The tags as `edge_common::LportKey` halves: `VLAN_PRESENT | VID` of
    /// the first (outer) and second (inner) tag, 0 for a tag not there.
    pub outer: u16,
    pub inner: u16,
}

/// Ethernet plus up to `VLAN_MAX_DEPTH` 802.1Q/802.1ad tags.
#[inline(always)]
pub fn ethernet(ctx: &XdpContext) -> Result<L2, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked that the Ethernet header is inside the frame.
    let mut proto = u16::from_be(unsafe { (*eth).ether_type });
    let mut l3 = EthHdr::LEN;
    let mut tags = [0u16; VLAN_MAX_DEPTH];
    // Fixed bound so the verifier sees a finite loop.
    for tag in tags.iter_mut() {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let vlan: *const VlanHdr = ptr_at(ctx, l3)?;
        // SAFETY: ptr_at checked that the tag is inside the frame.
        let (tci, next) = unsafe { (u16::from_be_bytes((*vlan).tci), (*vlan).ether_type) };
        *tag = VLAN_PRESENT | (tci & VLAN_VID_MASK);
        proto = u16::from_be(next);
        l3 += VlanHdr::LEN;
    }
    Ok(L2 {
        eth,
        proto,
        l3,
        outer: tags[0],
        inner: tags[1],
    })
}

/// The network layer of either family, as classification sees it.
pub struct L3<H: Family> {
    /// The header, inside the frame (checked by the parser): the TTL or
    /// hop limit, DS field and tunnel fields are read and written through it.
    pub hdr: *mut H,
    /// Source and destination addresses (network byte order).
    pub src: H::Addr,
    pub dst: H::Addr,
    /// The L4 protocol (IPv6: the next header).
    pub proto: u8,
    /// Offset of the L4 header in the frame.
    pub l4: usize,
    /// Offset where the IP datagram ends (IPv4: total length; IPv6: payload
    /// length): an L4 header is read only before it, never from the
    /// Ethernet padding after it.
    pub end: usize,
    /// A fragment (IPv4: more fragments or an offset; IPv6: a fragment header).
    pub fragment: bool,
    /// IPv4 options or an IPv6 extension header other than a fragment
    /// header. An IPv4 header with options is not checked further: the
    /// kernel gets it.
    pub options: bool,
}

/// An IPv4 header at `l3`. Malformed (what the kernel's ip_rcv() drops):
/// not version 4, an IHL below 5, and, without options, a total length
/// outside the frame or a bad header checksum (found by the packet fuzzer).
#[inline(always)]
pub fn ipv4(ctx: &XdpContext, l3: usize) -> Result<L3<Ipv4Hdr>, ()> {
    let hdr: *mut Ipv4Hdr = ptr_at(ctx, l3)?;
    // SAFETY: ptr_at checked that the fixed header is inside the frame.
    let vihl = unsafe { (*hdr).vihl };
    let ihl = vihl & 0x0F;
    if vihl >> 4 != IPV4_VERSION || ihl < IPV4_IHL_MIN {
        return Err(());
    }
    let options = ihl != IPV4_IHL_MIN;
    // With options the kernel gets the packet unread: its end is not used.
    let mut end = frame_len(ctx);
    if !options {
        // SAFETY: as above.
        let tot_len = u16::from_be_bytes(unsafe { (*hdr).tot_len }) as usize;
        if tot_len < Ipv4Hdr::LEN || l3 + tot_len > end || !ipv4_checksum_ok(hdr) {
            return Err(());
        }
        end = l3 + tot_len;
    }
    // SAFETY: as above; both addresses sit at even offsets of the header.
    let (frags, proto, src, dst) = unsafe {
        (
            u16::from_be_bytes((*hdr).frags),
            (*hdr).proto,
            bytes(&raw const (*hdr).src_addr),
            bytes(&raw const (*hdr).dst_addr),
        )
    };
    Ok(L3 {
        hdr,
        src,
        dst,
        proto,
        l4: l3 + ihl as usize * 4,
        end,
        fragment: frags & IPV4_MF_OFFSET != 0,
        options,
    })
}

/// Whether an IPv4 header without options has a correct checksum.
#[inline(always)]
fn ipv4_checksum_ok(hdr: *const Ipv4Hdr) -> bool {
    // SAFETY: `hdr` is the header ipv4() bounds-checked; read as bytes, unaligned.
    let h = unsafe { (hdr as *const [u8; Ipv4Hdr::LEN]).read_unaligned() };
    csum::verify(&h)
}

/// An IPv6 header at `l3`. Malformed: not version 6, or a payload length
/// beyond the frame (what the kernel's ip6_rcv_core() drops).
#[inline(always)]
pub fn ipv6(ctx: &XdpContext, l3: usize) -> Result<L3<Ipv6Hdr>, ()> {
    let hdr: *mut Ipv6Hdr = ptr_at(ctx, l3)?;
    // SAFETY: ptr_at checked that the header is inside the frame; both
    // addresses sit at even offsets of it.
    let (vcf0, next, payload_len, src, dst) = unsafe {
        (
            (*hdr).vcf[0],
            (*hdr).next_hdr,
            u16::from_be_bytes((*hdr).payload_len) as usize,
            bytes(&raw const (*hdr).src_addr),
            bytes(&raw const (*hdr).dst_addr),
        )
    };
    if vcf0 >> 4 != IPV6_VERSION {
        return Err(());
    }
    let end = l3 + Ipv6Hdr::LEN + payload_len;
    if end > frame_len(ctx) {
        return Err(());
    }
    let fragment = next == IPPROTO_FRAGMENT;
    Ok(L3 {
        hdr,
        src,
        dst,
        proto: next,
        l4: l3 + Ipv6Hdr::LEN,
        end,
        fragment,
        options: !fragment && is_ipv6_extension(next),
    })
}

/// IPv6 next-header values that are extension headers (RFC 8200 §4, IANA).
#[inline(always)]
fn is_ipv6_extension(next: u8) -> bool {
    matches!(
        next,
        IPPROTO_HOPOPTS
            | IPPROTO_ROUTING
            | IPPROTO_FRAGMENT
            | IPPROTO_ESP
            | IPPROTO_AH
            | IPPROTO_DSTOPTS
            | IPPROTO_MH
            | IPPROTO_HIP
            | IPPROTO_SHIM6
            | IPPROTO_EXPERIMENT1
            | IPPROTO_EXPERIMENT2
    )
}

/// The 32-bit word holding a TCP/UDP header's source and destination ports
/// at `l4`, as it sits in the packet; `Err` when they are not inside the
/// datagram ending at `end`.
#[inline(always)]
pub fn ports(ctx: &XdpContext, l4: usize, end: usize) -> Result<u32, ()> {
    if l4 + 4 > end {
        return Err(());
    }
    let p: *const [u8; 4] = ptr_at(ctx, l4)?;
    // SAFETY: ptr_at checked the 4 bytes; an L4 header starts at an even
    // offset (14 + 4k bytes of L2, 20 + 4k of IPv4, 40 of IPv6).
    Ok(u32::from_ne_bytes(unsafe { bytes(p) }))
}

/// TCP flags (RFC 9293 §3.1), in the header's 14th byte.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;
/// The TCP header without options.
const TCP_MIN_LEN: usize = 20;
/// A TCP header with room for the timestamps option where
/// [`tcp_timestamps`] looks for it.
pub const TCP_TS_LEN: usize = TCP_MIN_LEN + 12;
/// The TCP timestamps option (RFC 7323 §3): kind 8, length 10.
const TCPOPT_TIMESTAMP: u8 = 8;
const TCPOLEN_TIMESTAMP: u8 = 10;
const TCPOPT_NOP: u8 = 1;
/// What customer latency reads of a TCP header.
pub struct Tcp {
    /// Sequence and acknowledgement numbers (host order).
    pub seq: u32,
    pub ack: u32,
    /// Source and destination ports as they sit in the header.
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    /// Header length with options, bytes (20-60).
    pub len: usize,
}

/// The TCP header at `l4`, if it is whole inside the datagram ending at `end`.
#[inline(always)]
pub fn tcp(ctx: &XdpContext, l4: usize, end: usize) -> Result<Tcp, ()> {
    if l4 + TCP_MIN_LEN > end {
        return Err(());
    }
    let p: *const [u8; TCP_MIN_LEN] = ptr_at(ctx, l4)?;
    // SAFETY: ptr_at checked the 20 bytes; l4 is even (see `ports`).
    let h = unsafe { bytes(p) };
    let len = (h[12] >> 4) as usize * 4;
    if len < TCP_MIN_LEN || l4 + len > end {
        return Err(());
    }
    Ok(Tcp {
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        sport: u16::from_ne_bytes([h[0], h[1]]),
        dport: u16::from_ne_bytes([h[2], h[3]]),
        flags: h[13],
        len,
    })
}

/// The TCP timestamps option of the header at `l4` (`len` bytes long, as
/// [`tcp`] checked): `(TSval, TSecr)`, host order; read where every common
/// stack (Linux, the BSDs, macOS, Windows) puts it on segments other than
/// SYNs: first, after two NOPs (RFC 7323 appendix A), or first without
/// them. Elsewhere it is not looked for: a walk over the options at
/// variable offsets multiplies the paths the verifier explores past its
/// limit, for segments no common stack sends (docs/monitoring.md).
#[inline(always)]
pub fn tcp_timestamps(ctx: &XdpContext, l4: usize, len: usize) -> Option<(u32, u32)> {
    if len < TCP_TS_LEN {
        return None;
    }
    let p: *const u16 = ptr_at::<[u16; 6]>(ctx, l4 + TCP_MIN_LEN).ok()?.cast();
    // Read as 16-bit words (at l4 + 20, even), compared as they sit in
    // memory: a handful of loads and compares, no byte copies.
    // SAFETY: ptr_at checked the 12 bytes.
    let w = |i: usize| unsafe { core::ptr::read(p.add(i)) };
    let be32 = |i: usize| u32::from(u16::from_be(w(i))) << 16 | u32::from(u16::from_be(w(i + 1)));
    const NOPS: u16 = u16::from_ne_bytes([TCPOPT_NOP, TCPOPT_NOP]);
    const TS: u16 = u16::from_ne_bytes([TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP]);
    if w(0) == NOPS && w(1) == TS {
        return Some((be32(2), be32(4)));
    }
    if w(0) == TS {
        return Some((be32(1), be32(3)));
    }
    None
}

/// The acknowledgement number of the TCP header at `l4` (host order).
#[inline(always)]
pub fn tcp_ack(ctx: &XdpContext, l4: usize) -> Option<u32> {
    let p: *const u16 = ptr_at::<[u16; 2]>(ctx, l4 + 8).ok()?.cast();
    // SAFETY: ptr_at checked the 4 bytes, at an even offset.
    let w = |i: usize| u32::from(u16::from_be(unsafe { core::ptr::read(p.add(i)) }));
    Some(w(0) << 16 | w(1))
}

/// The data offset and flags bytes of the TCP header at `l4` (bytes 12
/// and 13): the header's length in bytes and the flags.
#[inline(always)]
pub fn tcp_len_flags(ctx: &XdpContext, l4: usize) -> Option<(usize, u8)> {
    let p: *const u16 = ptr_at(ctx, l4 + 12).ok()?;
    // SAFETY: ptr_at checked the 2 bytes, at an even offset.
    let [off, flags] = unsafe { core::ptr::read(p) }.to_ne_bytes();
    Some(((off >> 4) as usize * 4, flags))
}

/// `N` bytes of header (`N` even) at a 2-byte aligned address, read as
/// 16-bit loads and written as 16-bit stores (a byte array assembled from
/// the words' bytes would be spilled byte by byte: the forwarder's stack
/// frame took 64 bytes more). Headers are `#[repr(packed)]`, so copying a `[u8; N]`
/// field compiles to `N` byte loads and shifts to reassemble them; every
/// header field read this way (addresses, ports) sits at an even offset
/// of a frame that starts 2-byte aligned.
///
/// # Safety
///
/// `p` must point to `N` readable bytes, 2-byte aligned.
#[inline(always)]
pub unsafe fn bytes<const N: usize>(p: *const [u8; N]) -> [u8; N] {
    /// The result, 2-byte aligned so that it is written word by word.
    #[repr(C, align(2))]
    struct Words<const N: usize>([u8; N]);
    let p = p as *const u16;
    let mut out = Words([0u8; N]);
    let o = out.0.as_mut_ptr() as *mut u16;
    let mut i = 0;
    while i < N / 2 {
        // SAFETY: word i of the N bytes the caller vouches for, into word
        // i of `out` (N bytes, 2-byte aligned).
        unsafe { *o.add(i) = *p.add(i) };
        i += 1;
    }
    out.0
}
