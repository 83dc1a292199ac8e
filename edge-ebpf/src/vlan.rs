//! Egress VLAN tags: the link-layer header a PoP's frames leave with
//! (`Pop::vlan_mode`), written after the MACs and any tunnel header.
//!
//! The frame grows or shrinks in front (`bpf_xdp_adjust_head`), so the
//! packet's bytes never move; then the whole header before them is written
//! with fixed-size stores, one case per length the result can have.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use edge_common::{Pop, VLAN_VID_MASK, vlan_mode};
use network_types::{eth::EthHdr, vlan::VlanHdr};

use crate::{
    parse::{ETH_P_8021AD, ETH_P_8021Q, ptr_at},
    rewrite,
};

/// Rewrites the tags of the frame, whose link-layer header is `l2_len`
/// bytes (14, 18 or 22) and whose network header has EtherType `proto`
/// (host order), as `pop.vlan_mode` says: `SET` leaves exactly
/// `pop.vlan[..vlan_count]` (802.1Q for one tag, 802.1ad outer and 802.1Q
/// inner for two), `PUSH` puts `pop.vlan[0]` outside the received tags
/// (802.1ad when there are any, else 802.1Q), which stay as they are. The
/// MACs are the PoP's. Priority bits of a written tag are 0. `Err` when
/// the frame cannot grow or shrink (or `vlan_count` is beyond 2): the frame
/// may be half rewritten by then.
///
/// A function of its own in the object (a BPF-to-BPF call) called after
/// customer latency's: its stack frame sits beside that call's, not on
/// top of the forwarder's deepest path (512 bytes in all).
#[inline(never)]
pub fn retag(ctx: &XdpContext, l2_len: usize, pop: &Pop, proto: u16) -> Result<(), ()> {
    let had = (l2_len - EthHdr::LEN) / VlanHdr::LEN;
    let push = pop.vlan_mode == vlan_mode::PUSH;
    // PUSH leaves up to three tags, SET up to two.
    let tags = if push {
        had + 1
    } else if pop.vlan_count <= 2 {
        pop.vlan_count as usize
    } else {
        return Err(());
    };
    // Negative grows the frame in front, positive shrinks it.
    let delta = (had as i32 - tags as i32) * VlanHdr::LEN as i32;
    // SAFETY: `ctx.ctx` is this program's xdp_md; packet pointers taken
    // before the call are not used after it (the verifier enforces it).
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Err(());
    }
    let tci = |i: usize| (pop.vlan[i] & VLAN_VID_MASK).to_be();
    if push {
        // Only the MACs and the new tag are written: the received tags and
        // the EtherType already sit right behind them.
        let tpid = if had == 0 { ETH_P_8021Q } else { ETH_P_8021AD };
        let h: *mut [u16; 8] = ptr_at(ctx, 0)?;
        rewrite::set_macs(h.cast(), pop);
        // SAFETY: ptr_at checked the 16 bytes; the frame starts 2-byte aligned.
        unsafe {
            (*h)[6] = tpid.to_be();
            (*h)[7] = tci(0);
        }
        return Ok(());
    }
    let proto = proto.to_be();
    match tags {
        0 => {
            let h: *mut [u16; 7] = ptr_at(ctx, 0)?;
            rewrite::set_macs(h.cast(), pop);
            // SAFETY: as above, 14 bytes.
            unsafe { (*h)[6] = proto };
        }
        1 => {
            let h: *mut [u16; 9] = ptr_at(ctx, 0)?;
            rewrite::set_macs(h.cast(), pop);
            // SAFETY: as above, 18 bytes.
            unsafe {
                (*h)[6] = ETH_P_8021Q.to_be();
                (*h)[7] = tci(0);
                (*h)[8] = proto;
            }
        }
        _ => {
            let h: *mut [u16; 11] = ptr_at(ctx, 0)?;
            rewrite::set_macs(h.cast(), pop);
            // SAFETY: as above, 22 bytes.
            unsafe {
                (*h)[6] = ETH_P_8021AD.to_be();
                (*h)[7] = tci(0);
                (*h)[8] = ETH_P_8021Q.to_be();
                (*h)[9] = tci(1);
                (*h)[10] = proto;
            }
        }
    }
    Ok(())
}
