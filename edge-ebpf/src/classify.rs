//! Classification of a parsed packet: what is the kernel's (options,
//! fragments, control traffic, this host's own addresses), and the flow's
//! ports. The registered prefix is looked up by [`Family::lookup`].

use aya_ebpf::programs::XdpContext;
use edge_common::{Reason, local_bit};
use network_types::ip::Ipv6Hdr;

use crate::{
    family::Family,
    maps::{EDGE_LOCAL_BITS, EDGE_LOCAL_V4, EDGE_LOCAL_V6},
    parse::{self, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, L3},
};

/// IPv4 multicast (224/4), limited broadcast and class E start here.
const IPV4_MULTICAST_FIRST: u8 = 224;
/// The first byte of IPv6 multicast (ff00::/8).
const IPV6_MULTICAST: u8 = 0xFF;
/// Neighbour discovery (RFC 4861): router solicitation (133) to redirect (137).
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_REDIRECT: u8 = 137;

/// `Ok(ports)` for a packet this program forwards: the word holding its
/// TCP/UDP ports for the flow hash (0 without ports). `Err(reason)` for one
/// that goes to the kernel (or is dropped: a martian), checked in this
/// order: options or extension headers, fragments, control traffic,
/// martian sources and destinations, this host's addresses, and a
/// TCP/UDP header cut short by the datagram's length (malformed: the ports
/// are never read from the Ethernet padding after it).
#[inline(always)]
pub fn forwardable<H: Family>(ctx: &XdpContext, ip: &L3<H>) -> Result<u32, Reason> {
    if ip.options {
        return Err(H::OPTIONS);
    }
    if ip.fragment {
        return Err(Reason::Fragment);
    }
    H::control(ctx, ip)?;
    if H::martian(ip) {
        return Err(Reason::Martian);
    }
    if H::is_local(&ip.dst) {
        return Err(Reason::Local);
    }
    if ip.proto == IPPROTO_TCP || ip.proto == IPPROTO_UDP {
        parse::ports(ctx, ip.l4, ip.end).map_err(|()| Reason::Malformed)
    } else {
        Ok(0)
    }
}

/// Multicast, limited broadcast and class E destinations are never
/// forwarded here.
#[inline(always)]
pub fn ipv4_control(dst: &[u8; 4]) -> Result<(), Reason> {
    if dst[0] >= IPV4_MULTICAST_FIRST {
        return Err(Reason::Control);
    }
    Ok(())
}

/// A multicast destination (ff00::/8), link-local (fe80::/10) at either
/// end, and neighbour discovery stay with the kernel.
#[inline(always)]
pub fn ipv6_control(ctx: &XdpContext, ip: &L3<Ipv6Hdr>) -> Result<(), Reason> {
    if ip.dst[0] == IPV6_MULTICAST || is_ipv6_link_local(&ip.dst) || is_ipv6_link_local(&ip.src) {
        return Err(Reason::Control);
    }
    if ip.proto == IPPROTO_ICMPV6 {
        // The type byte inside the datagram, not from the frame's padding.
        if ip.l4 + 1 > ip.end {
            return Err(Reason::Malformed);
        }
        let Ok(icmp_type) = parse::ptr_at::<u8>(ctx, ip.l4) else {
            return Err(Reason::Malformed);
        };
        // SAFETY: ptr_at checked that the type byte is inside the frame.
        if (ND_ROUTER_SOLICIT..=ND_REDIRECT).contains(&unsafe { *icmp_type }) {
            return Err(Reason::Control);
        }
    }
    Ok(())
}

/// fe80::/10.
/// RFC 1812 5.3.7: a router forwards nothing from or to "this network"
/// (0/8), loopback (127/8) or link-local (169.254/16) addresses, nor from a
/// multicast or class E (224/4, 240/4) source. Multicast, class E and
/// broadcast destinations are `control` already (checked first, so DHCP's
/// 0.0.0.0 → 255.255.255.255 stays the kernel's).
#[inline(always)]
pub fn ipv4_martian(src: &[u8; 4], dst: &[u8; 4]) -> bool {
    let special = |a: &[u8; 4]| a[0] == 0 || a[0] == 127 || (a[0] == 169 && a[1] == 254);
    special(src) || special(dst) || src[0] >= IPV4_MULTICAST_FIRST
}

/// RFC 4291: the unspecified (::) and loopback (::1) addresses and
/// IPv4-mapped addresses (::ffff:0:0/96) at either end, and a multicast
/// source. Multicast destinations and link-local addresses are `control`
/// already (so DAD's :: → ff02::1:ffXX:XXXX stays the kernel's).
#[inline(always)]
pub fn ipv6_martian(src: &[u8; 16], dst: &[u8; 16]) -> bool {
    let special = |a: &[u8; 16]| {
        let zeros = a[..10].iter().fold(0u8, |acc, b| acc | b) == 0;
        let tail = u16::from_be_bytes([a[10], a[11]]);
        let low = a[12] | a[13] | a[14];
        // ::, ::1 and ::ffff:a.b.c.d.
        zeros && ((tail == 0 && low == 0 && a[15] <= 1) || tail == 0xFFFF)
    };
    special(src) || special(dst) || src[0] == IPV6_MULTICAST
}

#[inline(always)]
fn is_ipv6_link_local(a: &[u8; 16]) -> bool {
    a[0] == 0xFE && a[1] & 0xC0 == 0x80
}

/// Whether `dst` is one of this host's IPv4 addresses.
#[inline(always)]
pub fn ipv4_is_local(dst: &[u8; 4]) -> bool {
    // SAFETY: the value is only tested for presence, never read.
    maybe_local([dst[2], dst[3]]) && unsafe { EDGE_LOCAL_V4.get(dst) }.is_some()
}

/// Whether `dst` is one of this host's IPv6 addresses.
#[inline(always)]
pub fn ipv6_is_local(dst: &[u8; 16]) -> bool {
    // SAFETY: the value is only tested for presence, never read.
    maybe_local([dst[14], dst[15]]) && unsafe { EDGE_LOCAL_V6.get(dst) }.is_some()
}

/// Whether the address whose last two bytes are `last_two` may be local:
/// false for most packets after one array load.
#[inline(always)]
fn maybe_local(last_two: [u8; 2]) -> bool {
    let bit = local_bit(last_two);
    match EDGE_LOCAL_BITS.get(bit >> 6) {
        Some(word) => (*word >> (bit & 63)) & 1 != 0,
        None => true,
    }
}
