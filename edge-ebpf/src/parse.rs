//! Bounds-checked header access and one small parser per layer, in the spirit
//! of xdp-tools' parsing helpers: each takes the cursor and returns the next
//! protocol, or `Err(())` when the frame is too short or inconsistent.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use edge_common::limits::VLAN_MAX_DEPTH;
use network_types::{eth::EthHdr, ip::Ipv4Hdr, vlan::VlanHdr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

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

/// Ethernet plus up to `VLAN_MAX_DEPTH` 802.1Q/802.1ad tags. Returns the
/// Ethernet header, the EtherType (host order) and the offset of the network
/// header.
#[inline(always)]
pub fn ethernet(ctx: &XdpContext) -> Result<(*mut EthHdr, u16, usize), ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    let mut proto = u16::from_be(unsafe { (*eth).ether_type });
    let mut off = EthHdr::LEN;
    // Fixed bound so the verifier sees a finite loop.
    for _ in 0..VLAN_MAX_DEPTH {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let vlan: *const VlanHdr = ptr_at(ctx, off)?;
        proto = u16::from_be(unsafe { (*vlan).ether_type });
        off += VlanHdr::LEN;
    }
    Ok((eth, proto, off))
}

/// IPv4 header at `off`: checks version and IHL (options are allowed and
/// skipped, never assumed absent) and that the whole header is in the frame.
#[inline(always)]
pub fn ipv4(ctx: &XdpContext, off: usize) -> Result<*mut Ipv4Hdr, ()> {
    let ip: *mut Ipv4Hdr = ptr_at(ctx, off)?;
    let vihl = unsafe { (*ip).vihl };
    let ihl = ((vihl & 0x0F) as usize) * 4;
    if vihl >> 4 != 4 || ihl < Ipv4Hdr::LEN || ctx.data() + off + ihl > ctx.data_end() {
        return Err(());
    }
    Ok(ip)
}
