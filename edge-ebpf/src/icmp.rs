//! Packets too big for their PoP's link: the ICMP error that path MTU
//! discovery needs (RFC 1191, RFC 8201), built in place from the packet and
//! sent back out of the ingress port (`XDP_TX`).
//!
//! The reply keeps the frame's VLAN tags and swaps its MACs. IPv4: type 3
//! code 4 "fragmentation needed" with the next-hop MTU, quoting as much of
//! the packet as fits in 576 bytes (RFC 1812 4.3.2.3; the header and 8
//! bytes of a shorter one). IPv6: type 2 "packet too big" with the MTU,
//! quoting as much as fits in 1280 bytes (RFC 4443 2.4 (c)). Its source is
//! the PoP's tunnel source of the family (an address of this host); DS
//! field CS6, TTL / hop limit 64. The packet's bytes stay where they are:
//! the headers go in front (`bpf_xdp_adjust_head`), the frame is cut after
//! the quote (`bpf_xdp_adjust_tail`), and the quote's checksum is summed by
//! `bpf_csum_diff` in chunks of constant size (no loop for the verifier).
//!
//! No ICMP is sent (the kernel gets the packet) toward a PoP without a
//! tunnel of the family (no address of this host to send from), for an
//! ICMP error (RFC 1812 4.3.2.7, RFC 4443 2.4 (e)), for a frame to a
//! link-layer broadcast or multicast address, for IPv6 behind a link below
//! 1280 bytes; beyond the per-CPU rate limit the packet is dropped. IPv4
//! without DF goes to the kernel too: fragmenting is its business. A
//! sender that is not one host (unspecified, loopback, multicast,
//! broadcast source) is a martian, dropped by classification already; the
//! check here only keeps this module right on its own.

use aya_ebpf::{
    helpers::{bpf_csum_diff, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use edge_common::{Action, ICMP_BURST, ICMP_COST, ICMP_RATE, Pop, Reason, pop_flags};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    csum, events,
    maps::EDGE_ICMP_BDGT,
    parse::{self, IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_DF, IPV4_IHL_MIN, IPV4_VERSION, L2, L3},
    rewrite,
};

/// An ICMP / ICMPv6 header: type, code, checksum, 4 bytes of the type's.
const ICMP_HDR: usize = 8;
/// The headers an IPv4 / IPv6 error puts in front of its quote.
const V4_HEADERS: usize = Ipv4Hdr::LEN + ICMP_HDR;
const V6_HEADERS: usize = Ipv6Hdr::LEN + ICMP_HDR;
/// Bytes of the packet an IPv4 error quotes: as much as fits in 576 bytes
/// (RFC 1812 4.3.2.3); from a packet shorter than that (behind a link MTU
/// below 568) its header and 8 bytes (RFC 792), the least it must.
const V4_QUOTE: usize = 576 - V4_HEADERS;
const V4_QUOTE_MIN: usize = Ipv4Hdr::LEN + 8;
/// Bytes of the packet an IPv6 error quotes: as much as fits in 1280
/// bytes (RFC 4443 2.4 (c)). A packet too big for a link that carries IPv6
/// (MTU at least 1280) is always longer than that.
const V6_QUOTE: usize = 1280 - V6_HEADERS;
/// Most bytes one `bpf_csum_diff` call sums.
const CSUM_CHUNK: usize = 512;
const _: () = assert!(V4_QUOTE > CSUM_CHUNK && V4_QUOTE < 2 * CSUM_CHUNK);
const _: () = assert!(V6_QUOTE > 2 * CSUM_CHUNK && V6_QUOTE < 3 * CSUM_CHUNK);

/// ICMPv4 destination unreachable / fragmentation needed (RFC 792, 1191).
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMPv4 error types besides destination unreachable: source quench,
/// redirect, time exceeded, parameter problem (RFC 1812 4.3.2.7).
const ICMP_SOURCE_QUENCH: u8 = 4;
const ICMP_REDIRECT: u8 = 5;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETER_PROBLEM: u8 = 12;
/// ICMPv6 packet too big (RFC 4443 3.2); types below 128 are errors.
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
const ICMPV6_INFO_FIRST: u8 = 128;

/// TTL / hop limit of the errors.
const TTL: u8 = 64;
/// DS field of the errors: CS6, network control (RFC 1812 4.3.2.5 asks
/// precedence 6 or 7 of IPv4 ICMP errors; IPv6 gets the same).
const DS_CS6: u8 = 6 << 5;

/// An IPv4 packet longer than `pop.mtu` with the tunnel header: ICMP
/// "fragmentation needed" with DF set, else the kernel.
#[inline(always)]
pub fn ipv4(ctx: &XdpContext, l2: &L2, ip: &L3<Ipv4Hdr>, pop: &Pop) -> (Action, Reason) {
    // SAFETY: the parsed header, inside the frame.
    if unsafe { (*ip.hdr).frags[0] } & IPV4_DF == 0 {
        return (Action::Pass, Reason::TooBigNoDf);
    }
    let len = ip.end - l2.l3;
    if pop.flags & pop_flags::ENCAP_IPIP == 0 || len < V4_QUOTE_MIN || !ipv4_may_answer(ctx, l2, ip)
    {
        return (Action::Pass, Reason::TooBigNoIcmp);
    }
    if !events::take(&EDGE_ICMP_BDGT, ICMP_RATE, ICMP_BURST, ICMP_COST) {
        return (Action::Drop, Reason::TooBigLimited);
    }
    let mtu = pop.mtu.saturating_sub(Ipv4Hdr::LEN as u16);
    let sent = if len >= V4_QUOTE {
        frag_needed::<V4_QUOTE>(ctx, l2.l3, ip, pop.tunnel_src_v4, mtu)
    } else {
        frag_needed::<V4_QUOTE_MIN>(ctx, l2.l3, ip, pop.tunnel_src_v4, mtu)
    };
    match sent {
        Ok(()) => (Action::Tx, Reason::TooBig),
        // Only without headroom, which XDP guarantees; the frame may be
        // half rewritten.
        Err(()) => (Action::Drop, Reason::EncapFailed),
    }
}

/// An IPv6 packet longer than `pop.mtu` with the tunnel header: ICMPv6
/// "packet too big" (routers never fragment IPv6).
#[inline(always)]
pub fn ipv6(ctx: &XdpContext, l2: &L2, ip: &L3<Ipv6Hdr>, pop: &Pop) -> (Action, Reason) {
    if pop.flags & pop_flags::ENCAP_IP6IP6 == 0
        || ip.end - l2.l3 < V6_QUOTE
        || !ipv6_may_answer(ctx, l2, ip)
    {
        return (Action::Pass, Reason::TooBigNoIcmp);
    }
    if !events::take(&EDGE_ICMP_BDGT, ICMP_RATE, ICMP_BURST, ICMP_COST) {
        return (Action::Drop, Reason::TooBigLimited);
    }
    let mtu = u32::from(pop.mtu.saturating_sub(Ipv6Hdr::LEN as u16));
    match packet_too_big(ctx, l2.l3, ip, &pop.tunnel_src_v6, mtu) {
        Ok(()) => (Action::Tx, Reason::TooBig),
        Err(()) => (Action::Drop, Reason::EncapFailed),
    }
}

/// Whether the frame went to a link-layer broadcast or multicast address:
/// never answered (RFC 1812 4.3.2.7; RFC 4443 2.4 (e) would allow a packet
/// too big, but the reply's source MAC would be the group address).
#[inline(always)]
fn to_group_mac(l2: &L2) -> bool {
    // SAFETY: the parsed Ethernet header, inside the frame.
    (unsafe { (*l2.eth).dst_addr[0] }) & 1 != 0
}

/// RFC 1812 4.3.2.7: no ICMP error about an ICMP error, a packet sent to a
/// link-layer broadcast or multicast, or one whose source is not one host
/// (0/8, 127/8, multicast, class E, broadcast). Multicast and broadcast
/// destinations and fragments never get here (control, fragment).
#[inline(always)]
fn ipv4_may_answer(ctx: &XdpContext, l2: &L2, ip: &L3<Ipv4Hdr>) -> bool {
    if to_group_mac(l2) {
        return false;
    }
    if matches!(ip.src[0], 0 | 127 | 224..) {
        return false;
    }
    if ip.proto != IPPROTO_ICMP {
        return true;
    }
    // The type byte inside the datagram (without it, not answered).
    if ip.l4 + 1 > ip.end {
        return false;
    }
    let Ok(ty) = parse::ptr_at::<u8>(ctx, ip.l4) else {
        return false;
    };
    // SAFETY: ptr_at checked that the byte is inside the frame.
    !matches!(
        unsafe { *ty },
        ICMP_DEST_UNREACH
            | ICMP_SOURCE_QUENCH
            | ICMP_REDIRECT
            | ICMP_TIME_EXCEEDED
            | ICMP_PARAMETER_PROBLEM
    )
}

/// RFC 4443 2.4 (e): no ICMPv6 error about an ICMPv6 error, nor to a source
/// that is not one host (unspecified, multicast). Packet too big is the
/// one error a multicast destination may get, but those stay with the
/// kernel (control), and frames to a group MAC are not answered here.
#[inline(always)]
fn ipv6_may_answer(ctx: &XdpContext, l2: &L2, ip: &L3<Ipv6Hdr>) -> bool {
    if to_group_mac(l2) || ip.src[0] == 0xFF || ip.src == [0; 16] {
        return false;
    }
    if ip.proto != IPPROTO_ICMPV6 {
        return true;
    }
    // classify::ipv6_control checked that the type byte is inside the datagram.
    if ip.l4 + 1 > ip.end {
        return false;
    }
    let Ok(ty) = parse::ptr_at::<u8>(ctx, ip.l4) else {
        return false;
    };
    // SAFETY: ptr_at checked that the byte is inside the frame.
    (unsafe { *ty }) >= ICMPV6_INFO_FIRST
}

/// Rewrites the frame into an IPv4 "fragmentation needed" from `src` to
/// the packet's source, next-hop MTU `mtu`, quoting `Q` bytes of it.
#[inline(always)]
fn frag_needed<const Q: usize>(
    ctx: &XdpContext,
    l2_len: usize,
    ip: &L3<Ipv4Hdr>,
    src: [u8; 4],
    mtu: u16,
) -> Result<(), ()> {
    let dst = ip.src;
    reply(ctx, l2_len, V4_HEADERS, Q)?;
    let len = ((V4_HEADERS + Q) as u16).to_be_bytes();
    let vihl = (IPV4_VERSION << 4) | IPV4_IHL_MIN;
    // Identification 0, no flags; the checksum is 0 until computed.
    #[rustfmt::skip]
    let mut h: [u8; Ipv4Hdr::LEN] = [
        vihl, DS_CS6, len[0], len[1],
        0, 0, 0, 0,
        TTL, IPPROTO_ICMP, 0, 0,
        src[0], src[1], src[2], src[3],
        dst[0], dst[1], dst[2], dst[3],
    ];
    let check = csum::compute(csum::sum(&h)).to_ne_bytes();
    h[10] = check[0];
    h[11] = check[1];
    let m = mtu.to_be_bytes();
    let mut icmp = [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0, m[0], m[1]];
    let sum = u64::from(csum::sum(&icmp)) + sum_quote::<Q>(ctx, l2_len + V4_HEADERS)?;
    let check = csum::compute64(sum).to_ne_bytes();
    icmp[2] = check[0];
    icmp[3] = check[1];
    let out: *mut [u8; Ipv4Hdr::LEN] = parse::ptr_at(ctx, l2_len)?;
    let out_icmp: *mut [u8; ICMP_HDR] = parse::ptr_at(ctx, l2_len + Ipv4Hdr::LEN)?;
    // SAFETY: ptr_at checked both ranges.
    unsafe {
        out.write_unaligned(h);
        out_icmp.write_unaligned(icmp);
    }
    Ok(())
}

/// Rewrites the frame into an ICMPv6 "packet too big" from `src` to the
/// packet's source, MTU `mtu`, quoting `V6_QUOTE` bytes of it.
#[inline(always)]
fn packet_too_big(
    ctx: &XdpContext,
    l2_len: usize,
    ip: &L3<Ipv6Hdr>,
    src: &[u8; 16],
    mtu: u32,
) -> Result<(), ()> {
    reply(ctx, l2_len, V6_HEADERS, V6_QUOTE)?;
    let len = ((ICMP_HDR + V6_QUOTE) as u16).to_be_bytes();
    let m = mtu.to_be_bytes();
    let mut icmp = [ICMPV6_PACKET_TOO_BIG, 0, 0, 0, m[0], m[1], m[2], m[3]];
    // The pseudo-header (RFC 8200 8.1): addresses, upper-layer length,
    // next header.
    let sum = csum::sum(src)
        + csum::sum(&ip.src)
        + csum::sum(&len)
        + u32::from(u16::from_ne_bytes([0, IPPROTO_ICMPV6]))
        + csum::sum(&icmp);
    let sum = u64::from(sum) + sum_quote::<V6_QUOTE>(ctx, l2_len + V6_HEADERS)?;
    let check = csum::compute64(sum).to_ne_bytes();
    icmp[2] = check[0];
    icmp[3] = check[1];
    let out: *mut Ipv6Hdr = parse::ptr_at(ctx, l2_len)?;
    let out_icmp: *mut [u8; ICMP_HDR] = parse::ptr_at(ctx, l2_len + Ipv6Hdr::LEN)?;
    // SAFETY: ptr_at checked both ranges.
    unsafe {
        // Version 6, traffic class CS6, flow label 0.
        (*out).vcf = [0x60 | (DS_CS6 >> 4), (DS_CS6 & 0x0F) << 4, 0, 0];
        (*out).payload_len = len;
        (*out).next_hdr = IPPROTO_ICMPV6;
        (*out).hop_limit = TTL;
        (*out).src_addr = *src;
        (*out).dst_addr = ip.src;
        out_icmp.write_unaligned(icmp);
    }
    Ok(())
}

/// Turns the frame around for a reply of `headers` bytes of headers and
/// `quote` bytes of the packet: room for the headers in front (the
/// link-layer header moved up), the frame cut after the quote, MACs
/// swapped. The packet's own bytes do not move.
#[inline(always)]
fn reply(ctx: &XdpContext, l2_len: usize, headers: usize, quote: usize) -> Result<(), ()> {
    let cut = parse::frame_len(ctx) - l2_len - quote;
    rewrite::make_room(ctx, l2_len, headers)?;
    // SAFETY: `ctx.ctx` is this program's xdp_md; packet pointers taken
    // before the call are not used after it (the verifier enforces it).
    if cut > 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, -(cut as i32)) } != 0 {
        return Err(());
    }
    rewrite::swap_macs(ctx)
}

/// The one's complement sum (unfolded) of the `Q` quoted bytes at `off`,
/// by the `bpf_csum_diff` helper in chunks of constant size (a helper
/// call per 512 bytes: cheaper than a loop, and nothing for the verifier
/// to walk).
#[inline(always)]
fn sum_quote<const Q: usize>(ctx: &XdpContext, off: usize) -> Result<u64, ()> {
    const C: usize = CSUM_CHUNK;
    match Q {
        V4_QUOTE_MIN => csum_at::<V4_QUOTE_MIN>(ctx, off),
        V4_QUOTE => Ok(csum_at::<C>(ctx, off)? + csum_at::<{ V4_QUOTE - C }>(ctx, off + C)?),
        V6_QUOTE => Ok(csum_at::<C>(ctx, off)?
            + csum_at::<C>(ctx, off + C)?
            + csum_at::<{ V6_QUOTE - 2 * C }>(ctx, off + 2 * C)?),
        _ => Err(()),
    }
}

/// The 32-bit one's complement sum of the `K` bytes at `off` (`K` a
/// multiple of 4, at most 512: the helper's limits).
#[inline(always)]
fn csum_at<const K: usize>(ctx: &XdpContext, off: usize) -> Result<u64, ()> {
    const { assert!(K.is_multiple_of(4) && K <= CSUM_CHUNK) };
    let p: *mut [u8; K] = parse::ptr_at(ctx, off)?;
    // SAFETY: the helper only reads the K bytes at `p`, which ptr_at
    // checked are inside the frame; no `from` buffer.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, p.cast(), K as u32, 0) };
    u64::try_from(sum).map_err(|_| ())
}
