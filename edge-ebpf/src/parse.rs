//! Bounds-checked header access and one small parser per layer, in the spirit
//! of xdp-tools' parsing helpers: each returns what the next layer needs, or
//! `Err(())` when the frame is too short or inconsistent.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use edge_common::limits::VLAN_MAX_DEPTH;
use network_types::{eth::EthHdr, ip::Ipv4Hdr, vlan::VlanHdr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

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

/// The link layer: Ethernet plus up to `VLAN_MAX_DEPTH` tags.
pub struct L2 {
    pub eth: *mut EthHdr,
    /// EtherType after the tags (host order).
    pub proto: u16,
    /// Offset of the network header = length of the L2 header (14, 18 or 22).
    pub l3: usize,
}

/// Ethernet plus up to `VLAN_MAX_DEPTH` 802.1Q/802.1ad tags.
#[inline(always)]
pub fn ethernet(ctx: &XdpContext) -> Result<L2, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    let mut proto = u16::from_be(unsafe { (*eth).ether_type });
    let mut l3 = EthHdr::LEN;
    // Fixed bound so the verifier sees a finite loop.
    for _ in 0..VLAN_MAX_DEPTH {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let vlan: *const VlanHdr = ptr_at(ctx, l3)?;
        proto = u16::from_be(unsafe { (*vlan).ether_type });
        l3 += VlanHdr::LEN;
    }
    Ok(L2 { eth, proto, l3 })
}

/// The 32-bit word holding a TCP/UDP header's source and destination ports
/// at `l4`, as it sits in the packet.
#[inline(always)]
pub fn ports(ctx: &XdpContext, l4: usize) -> Result<u32, ()> {
    let p: *const [u8; 4] = ptr_at(ctx, l4)?;
    Ok(u32::from_ne_bytes(unsafe { bytes(p) }))
}

/// `N` bytes of header (`N` even) at a 2-byte aligned address, read as
/// 16-bit loads. Headers are `#[repr(packed)]`, so copying a `[u8; N]`
/// field compiles to `N` byte loads and shifts to reassemble them; every
/// header field read this way (addresses, ports) sits at an even offset
/// of a frame that starts 2-byte aligned.
#[inline(always)]
pub unsafe fn bytes<const N: usize>(p: *const [u8; N]) -> [u8; N] {
    let p = p as *const u16;
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N / 2 {
        let [a, b] = unsafe { *p.add(i) }.to_ne_bytes();
        out[2 * i] = a;
        out[2 * i + 1] = b;
        i += 1;
    }
    out
}

/// IPv6 next-header values that are extension headers (RFC 8200 §4, IANA).
#[inline(always)]
pub fn is_ipv6_extension(next: u8) -> bool {
    matches!(
        next,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// Whether an IPv4 header without options has a correct checksum (RFC
/// 1071: the one's complement sum of its words is 0xFFFF). The sum is taken
/// in memory order, which gives the same verdict in either byte order.
#[inline(always)]
pub fn ipv4_checksum_ok(ip: *const Ipv4Hdr) -> bool {
    let h = unsafe { (ip as *const [u8; Ipv4Hdr::LEN]).read_unaligned() };
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < Ipv4Hdr::LEN {
        sum += u16::from_ne_bytes([h[i], h[i + 1]]) as u32;
        i += 2;
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum == 0xFFFF
}
