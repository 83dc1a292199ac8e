//! `edge_test_decap`, for tests only (never attached by edged): the far
//! end of a tunnel in a lab without tunnel devices (no kernel modules).
//! Attached to the PoP's end of a veth, it strips the outer header of
//! IPv4-in-IPv4 and IPv6-in-IPv6 and passes the inner packet to the stack;
//! everything else passes untouched. Being an XDP program, it also makes
//! the veth take the frames edge redirects into it.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    parse::{self, ETH_P_IP, ETH_P_IPV6, IPPROTO_IPIP, IPPROTO_IPV6},
    rewrite,
};

#[xdp]
pub fn edge_test_decap(ctx: XdpContext) -> u32 {
    // A frame that is not a tunnel packet passes as it is.
    let _ = decap(&ctx);
    xdp_action::XDP_PASS
}

/// Strips the outer header of a tunnel packet.
#[inline(always)]
fn decap(ctx: &XdpContext) -> Result<(), ()> {
    let l2 = parse::ethernet(ctx)?;
    let outer = match l2.proto {
        ETH_P_IP => {
            let ip = parse::ipv4(ctx, l2.l3)?;
            if ip.proto != IPPROTO_IPIP || ip.options || ip.fragment {
                return Err(());
            }
            Ipv4Hdr::LEN
        }
        ETH_P_IPV6 => {
            let ip = parse::ipv6(ctx, l2.l3)?;
            if ip.proto != IPPROTO_IPV6 {
                return Err(());
            }
            Ipv6Hdr::LEN
        }
        _ => return Err(()),
    };
    rewrite::strip(ctx, l2.l3, outer)
}
