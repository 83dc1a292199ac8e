//! Header rewrites: MACs, TTL / hop limit, incremental IPv4 checksum.

use network_types::{eth::EthHdr, ip::Ipv4Hdr};

/// Folds a 32-bit one's complement sum into 16 bits.
#[inline(always)]
fn csum_fold(mut sum: u32) -> u16 {
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum as u16
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word changing
/// from `old` to `new`. All three values in the same (network) byte order.
#[inline(always)]
pub fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    !csum_fold((!check) as u32 + (!old) as u32 + new as u32)
}

/// Decrements the IPv4 TTL and patches the header checksum. The TTL shares
/// its 16-bit word with the protocol field.
#[inline(always)]
pub fn ipv4_decrement_ttl(ip: *mut Ipv4Hdr) {
    unsafe {
        let old = u16::from_ne_bytes([(*ip).ttl, (*ip).proto]);
        (*ip).ttl -= 1;
        let new = u16::from_ne_bytes([(*ip).ttl, (*ip).proto]);
        let check = u16::from_ne_bytes((*ip).check);
        (*ip).check = csum_replace2(check, old, new).to_ne_bytes();
    }
}

#[inline(always)]
pub fn set_macs(eth: *mut EthHdr, src: &[u8; 6], dst: &[u8; 6]) {
    unsafe {
        (*eth).src_addr = *src;
        (*eth).dst_addr = *dst;
    }
}
