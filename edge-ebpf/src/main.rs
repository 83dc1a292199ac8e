//! edge: the XDP forwarder. Reads top to bottom: parse → classify → decide →
//! rewrite → count. Everything that can be computed ahead of time (next-hop
//! MACs, egress ports) is computed by edged and read from maps.
#![no_std]
#![no_main]

mod maps;
mod parse;
mod rewrite;

use aya_ebpf::{
    bindings::xdp_action,
    macros::xdp,
    maps::{PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use edge_common::{Action, Counter, POP_F_VALID, Pop, PrefixEntry, Reason};
use maps::{EDGE_ACT_STATS, EDGE_PFX_V4, EDGE_PFX_V6, EDGE_POPS, EDGE_RSN_STATS, EDGE_TX_PORTS};
use network_types::{eth::EthHdr, ip::Ipv6Hdr};

type Verdict = (Action, Reason);

/// Malformed frames go to the kernel untouched: it drops and accounts for
/// them as it always does, and the operator sees them in `malformed`.
const MALFORMED: Verdict = (Action::Pass, Reason::Malformed);

/// The forwarder. Every path ends in exactly one (action, reason) pair,
/// each counted once. No path aborts: a frame we cannot handle is passed.
#[xdp]
pub fn edge(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let (action, reason) = forward(&ctx);
    count(&EDGE_ACT_STATS, action as u32, bytes);
    count(&EDGE_RSN_STATS, reason as u32, bytes);
    action as u32
}

/// `XDP_PASS` only, for veth peers: a veth delivers XDP_REDIRECTed frames
/// only when its peer runs an XDP program.
#[xdp]
pub fn edge_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[inline(always)]
fn forward(ctx: &XdpContext) -> Verdict {
    let Ok((eth, proto, l3)) = parse::ethernet(ctx) else {
        return MALFORMED;
    };
    match proto {
        parse::ETH_P_IP => forward_v4(ctx, eth, l3),
        parse::ETH_P_IPV6 => forward_v6(ctx, eth, l3),
        _ => (Action::Pass, Reason::NotIp),
    }
}

#[inline(always)]
fn forward_v4(ctx: &XdpContext, eth: *mut EthHdr, l3: usize) -> Verdict {
    let Ok(ip) = parse::ipv4(ctx, l3) else {
        return MALFORMED;
    };
    let key = Key::new(32, unsafe { (*ip).dst_addr });
    let Some(prefix) = EDGE_PFX_V4.get(&key) else {
        return (Action::Pass, Reason::Unregistered);
    };
    // Checked after the lookup so that only traffic we would forward counts
    // here (not link-local control traffic). The kernel sends time-exceeded.
    if unsafe { (*ip).ttl } <= 1 {
        return (Action::Pass, Reason::TtlExceeded);
    }
    let (pop, action) = match next_hop(ctx, prefix) {
        Ok(hop) => hop,
        Err(verdict) => return verdict,
    };
    rewrite::set_macs(eth, &pop.src_mac, &pop.dst_mac);
    rewrite::ipv4_decrement_ttl(ip);
    (action, Reason::Forwarded)
}

#[inline(always)]
fn forward_v6(ctx: &XdpContext, eth: *mut EthHdr, l3: usize) -> Verdict {
    let Ok(ip) = parse::ptr_at::<Ipv6Hdr>(ctx, l3) else {
        return MALFORMED;
    };
    if unsafe { (*ip).vcf[0] } >> 4 != 6 {
        return MALFORMED;
    }
    let key = Key::new(128, unsafe { (*ip).dst_addr });
    let Some(prefix) = EDGE_PFX_V6.get(&key) else {
        return (Action::Pass, Reason::Unregistered);
    };
    if unsafe { (*ip).hop_limit } <= 1 {
        return (Action::Pass, Reason::TtlExceeded);
    }
    let (pop, action) = match next_hop(ctx, prefix) {
        Ok(hop) => hop,
        Err(verdict) => return verdict,
    };
    rewrite::set_macs(eth, &pop.src_mac, &pop.dst_mac);
    unsafe { (*ip).hop_limit -= 1 };
    (action, Reason::Forwarded)
}

/// Resolves the prefix's PoP and sets up the transmit: `XDP_TX` back out of
/// the ingress port, or `XDP_REDIRECT` through the devmap. Decided before
/// any rewrite, so a failure passes the frame unmodified.
#[inline(always)]
fn next_hop(ctx: &XdpContext, prefix: &PrefixEntry) -> Result<(&'static Pop, Action), Verdict> {
    let Some(pop) = EDGE_POPS.get(prefix.pop) else {
        return Err((Action::Pass, Reason::NoNextHop));
    };
    if pop.flags & POP_F_VALID == 0 {
        return Err((Action::Pass, Reason::NoNextHop));
    }
    if pop.ifindex == ctx.ingress_ifindex() as u32 {
        return Ok((pop, Action::Tx));
    }
    match EDGE_TX_PORTS.redirect(pop.ifindex, 0) {
        Ok(_) => Ok((pop, Action::Redirect)),
        Err(_) => Err((Action::Pass, Reason::NoTxPort)),
    }
}

/// Per-CPU, so no atomics: XDP runs in softirq context on one CPU.
#[inline(always)]
fn count(map: &PerCpuArray<Counter>, index: u32, bytes: u64) {
    if let Some(c) = map.get_ptr_mut(index) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
