//! Header rewrites: MACs, TTL / hop limit, DS field, IP-in-IP
//! encapsulation. Checksums are `csum`'s.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use edge_common::{Pop, limits::VLAN_MAX_DEPTH};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::{
    csum,
    parse::{IPPROTO_IPIP, IPPROTO_IPV6, IPV4_DF, IPV4_IHL_MIN, IPV4_VERSION, ptr_at},
};

/// The link-layer header lengths `parse::ethernet` returns: untagged, one
/// tag, two tags.
const L2_UNTAGGED: usize = EthHdr::LEN;
const L2_TAGGED: usize = EthHdr::LEN + VlanHdr::LEN;
const L2_DOUBLE_TAGGED: usize = EthHdr::LEN + 2 * VlanHdr::LEN;
const _: () = assert!(VLAN_MAX_DEPTH == 2);

/// The ECN bits of the DS field / traffic class (RFC 3168).
const ECN_MASK: u8 = 0x03;

/// Decrements the IPv4 TTL and patches the header checksum. The TTL shares
/// its 16-bit word with the protocol field.
#[inline(always)]
pub fn ipv4_decrement_ttl(ip: *mut Ipv4Hdr) {
    // SAFETY: `ip` is a parsed header, inside the frame.
    unsafe {
        let old = u16::from_ne_bytes([(*ip).ttl, (*ip).proto]);
        (*ip).ttl -= 1;
        let new = u16::from_ne_bytes([(*ip).ttl, (*ip).proto]);
        (*ip).check = csum::replace2(u16::from_ne_bytes((*ip).check), old, new).to_ne_bytes();
    }
}

/// Decrements the IPv6 hop limit (no checksum covers it).
#[inline(always)]
pub fn ipv6_decrement_hop_limit(ip: *mut Ipv6Hdr) {
    // SAFETY: `ip` is a parsed header, inside the frame.
    unsafe { (*ip).hop_limit -= 1 };
}

/// Writes `dscp` into the IPv4 DS field, keeping the ECN bits, and patches
/// the checksum (the DS field shares its word with version/IHL).
#[inline(always)]
pub fn ipv4_set_dscp(ip: *mut Ipv4Hdr, dscp: u8) {
    // SAFETY: `ip` is a parsed header, inside the frame.
    unsafe {
        let old = u16::from_ne_bytes([(*ip).vihl, (*ip).tos]);
        (*ip).tos = (dscp << 2) | ((*ip).tos & ECN_MASK);
        let new = u16::from_ne_bytes([(*ip).vihl, (*ip).tos]);
        (*ip).check = csum::replace2(u16::from_ne_bytes((*ip).check), old, new).to_ne_bytes();
    }
}

/// Writes `dscp` into the IPv6 traffic class, keeping the ECN bits. The
/// traffic class straddles the first two bytes (version | TC | flow label).
#[inline(always)]
pub fn ipv6_set_dscp(ip: *mut Ipv6Hdr, dscp: u8) {
    // SAFETY: `ip` is a parsed header, inside the frame.
    unsafe {
        let b0 = (*ip).vcf[0];
        let b1 = (*ip).vcf[1];
        let ecn = (b1 >> 4) & ECN_MASK;
        let tc = (dscp << 2) | ecn;
        (*ip).vcf[0] = (b0 & 0xF0) | (tc >> 4);
        (*ip).vcf[1] = (tc << 4) | (b1 & 0x0F);
    }
}

/// Writes the PoP's MACs as six 16-bit stores: a plain 6-byte array copy
/// compiles to two calls of a byte-by-byte `memmove` subprogram.
/// `Pop::src_mac` and `dst_mac` are adjacent at offset 8 (2-byte aligned),
/// and the Ethernet header starts the frame.
#[inline(always)]
pub fn set_macs(eth: *mut EthHdr, pop: &Pop) {
    const _: () = assert!(core::mem::offset_of!(Pop, src_mac) == 8);
    const _: () = assert!(core::mem::offset_of!(Pop, dst_mac) == 14);
    let from = pop as *const Pop as *const u16;
    let to = eth as *mut u16;
    // SAFETY: `eth` is the bounds-checked Ethernet header at the 2-byte
    // aligned frame start; `pop` is a map value, 8-byte aligned, and its
    // words 4-9 are the MACs (asserted above).
    unsafe {
        // eth: dst (words 0-2), src (3-5); pop: src (words 4-6), dst (7-9).
        *to = *from.add(7);
        *to.add(1) = *from.add(8);
        *to.add(2) = *from.add(9);
        *to.add(3) = *from.add(4);
        *to.add(4) = *from.add(5);
        *to.add(5) = *from.add(6);
    }
}

/// Moves the `N`-byte link-layer header from offset `from` to offset `to`
/// of the frame.
#[inline(always)]
fn move_l2<const N: usize>(ctx: &XdpContext, from: usize, to: usize) -> Result<(), ()> {
    let src: *const [u8; N] = ptr_at(ctx, from)?;
    let dst: *mut [u8; N] = ptr_at(ctx, to)?;
    // SAFETY: ptr_at checked both ranges; a read then a write, so the
    // overlap does not matter.
    unsafe {
        let l2 = src.read_unaligned();
        dst.write_unaligned(l2);
    }
    Ok(())
}

/// Moves the link-layer header (`l2_len` bytes: 14, 18 or 22) from offset
/// `from` to offset `to`.
#[inline(always)]
fn move_l2_len(ctx: &XdpContext, l2_len: usize, from: usize, to: usize) -> Result<(), ()> {
    match l2_len {
        L2_UNTAGGED => move_l2::<L2_UNTAGGED>(ctx, from, to),
        L2_TAGGED => move_l2::<L2_TAGGED>(ctx, from, to),
        L2_DOUBLE_TAGGED => move_l2::<L2_DOUBLE_TAGGED>(ctx, from, to),
        _ => Err(()),
    }
}

/// Grows the frame by `len` bytes in front and moves the link-layer header
/// (`l2_len` bytes: 14, 18 or 22) back to the front, leaving `len` bytes of
/// room for an outer header (or an ICMP error's headers) between it and
/// the packet.
#[inline(always)]
pub fn make_room(ctx: &XdpContext, l2_len: usize, len: usize) -> Result<(), ()> {
    // SAFETY: `ctx.ctx` is this program's xdp_md; packet pointers taken
    // before the call are not used after it (the verifier enforces it).
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(len as i32)) } != 0 {
        return Err(());
    }
    move_l2_len(ctx, l2_len, len, 0)
}

/// The reverse of [`make_room`]: removes the `len` bytes after the
/// link-layer header (`l2_len` bytes), moving the header up to the packet
/// and shrinking the frame in front. The test decapsulator's.
#[inline(always)]
pub fn strip(ctx: &XdpContext, l2_len: usize, len: usize) -> Result<(), ()> {
    move_l2_len(ctx, l2_len, 0, len)?;
    // SAFETY: as in make_room.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32) } != 0 {
        return Err(());
    }
    Ok(())
}

/// Swaps the source and destination MACs of the frame (an answer to its
/// sender), as three 16-bit words each.
#[inline(always)]
pub fn swap_macs(ctx: &XdpContext) -> Result<(), ()> {
    let eth: *mut [u16; 6] = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked the 12 bytes; the frame starts 2-byte aligned.
    unsafe {
        let m = *eth;
        *eth = [m[3], m[4], m[5], m[0], m[1], m[2]];
    }
    Ok(())
}

/// IPv4-in-IPv4 (RFC 2003) toward the PoP's tunnel endpoint. The outer DS
/// field and DF bit are copied from the inner header (already rewritten),
/// the outer TTL is `ttl`, and the outer checksum is computed over the new
/// header.
#[inline(always)]
pub fn encap_ipip(ctx: &XdpContext, l2_len: usize, pop: &Pop, ttl: u8) -> Result<(), ()> {
    let inner: *const Ipv4Hdr = ptr_at(ctx, l2_len)?;
    // SAFETY: ptr_at checked that the inner header is inside the frame.
    let (tos, inner_len, df) = unsafe {
        (
            (*inner).tos,
            u16::from_be_bytes((*inner).tot_len),
            (*inner).frags[0] & IPV4_DF,
        )
    };
    make_room(ctx, l2_len, Ipv4Hdr::LEN)?;
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    set_macs(eth, pop);
    let outer: *mut [u8; Ipv4Hdr::LEN] = ptr_at(ctx, l2_len)?;
    let len = inner_len.wrapping_add(Ipv4Hdr::LEN as u16).to_be_bytes();
    let (s, d) = (pop.tunnel_src_v4, pop.tunnel_dst_v4);
    let vihl = (IPV4_VERSION << 4) | IPV4_IHL_MIN;
    // Identification 0, the inner DF bit, no fragment offset; the checksum
    // field is 0 until computed.
    #[rustfmt::skip]
    let mut h: [u8; Ipv4Hdr::LEN] = [
        vihl, tos, len[0], len[1],
        0, 0, df, 0,
        ttl, IPPROTO_IPIP, 0, 0,
        s[0], s[1], s[2], s[3],
        d[0], d[1], d[2], d[3],
    ];
    let check = csum::compute(csum::sum(&h)).to_ne_bytes();
    h[10] = check[0];
    h[11] = check[1];
    // SAFETY: ptr_at checked that the 20 bytes are inside the frame.
    unsafe { outer.write_unaligned(h) };
    Ok(())
}

/// IPv6-in-IPv6 (RFC 2473) toward the PoP's tunnel endpoint. Traffic class
/// and flow label are copied from the inner header (the flow label keeps
/// ECMP entropy on the backbone), the outer hop limit is `ttl`.
#[inline(always)]
pub fn encap_ip6ip6(ctx: &XdpContext, l2_len: usize, pop: &Pop, ttl: u8) -> Result<(), ()> {
    let inner: *const Ipv6Hdr = ptr_at(ctx, l2_len)?;
    // SAFETY: ptr_at checked that the inner header is inside the frame.
    let (vcf, payload_len) = unsafe { ((*inner).vcf, u16::from_be_bytes((*inner).payload_len)) };
    make_room(ctx, l2_len, Ipv6Hdr::LEN)?;
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    set_macs(eth, pop);
    let outer: *mut Ipv6Hdr = ptr_at(ctx, l2_len)?;
    // SAFETY: ptr_at checked that the outer header is inside the frame.
    unsafe {
        (*outer).vcf = vcf;
        (*outer).payload_len = payload_len.wrapping_add(Ipv6Hdr::LEN as u16).to_be_bytes();
        (*outer).next_hdr = IPPROTO_IPV6;
        (*outer).hop_limit = ttl;
        (*outer).src_addr = pop.tunnel_src_v6;
        (*outer).dst_addr = pop.tunnel_dst_v6;
    }
    Ok(())
}
