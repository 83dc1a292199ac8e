//! edge: the XDP forwarder. Reads top to bottom: parse → classify → decide →
//! rewrite → count. Everything that can be computed ahead of time (policy
//! selection tables, next-hop MACs, tunnel endpoints, egress ports) is
//! computed by edged and read from maps.
#![no_std]
#![no_main]

mod events;
mod fib;
mod maps;
mod parse;
mod rewrite;

use aya_ebpf::{
    bindings::xdp_action,
    macros::xdp,
    maps::{PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use edge_common::{
    Action, Counter, DSCP_KEEP, Pop, PortEntry, PrefixEntry, Reason, Settings, default_action,
    flow_hash_v4, flow_hash_v6, limits, local_bit, policy_slot, pop_flags, preference, role,
};
use maps::*;
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};
use parse::L2;

/// What happened to a packet, and which counters it belongs to. Indexes
/// that do not apply stay `NONE`: the counter lookup misses and is skipped.
#[derive(Clone, Copy)]
struct Verdict {
    action: Action,
    reason: Reason,
    port: u32,
    slot: u32,
    pop: u32,
}

const NONE: u32 = u32::MAX;

impl Verdict {
    #[inline(always)]
    fn with(mut self, action: Action, reason: Reason) -> Self {
        self.action = action;
        self.reason = reason;
        self
    }

    #[inline(always)]
    fn pass(self, reason: Reason) -> Self {
        self.with(Action::Pass, reason)
    }
}

/// The forwarder. Every path ends in exactly one (action, reason) pair and
/// is counted once in each. No path returns XDP_ABORTED: a frame the
/// program cannot handle goes to the kernel untouched.
#[xdp]
pub fn edge(ctx: XdpContext) -> u32 {
    run::<false>(&ctx)
}

/// The same forwarder with the IPv4 lookup through the LPM trie (the
/// registry DIR-24-8 is derived from): the baseline of `cargo xtask bench`
/// and the reference of the differential packet test. Never attached.
#[xdp]
pub fn edge_lpm(ctx: XdpContext) -> u32 {
    run::<true>(&ctx)
}

/// Forwards and counts; `LPM` selects the IPv4 lookup.
#[inline(always)]
fn run<const LPM: bool>(ctx: &XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let v = forward::<LPM>(ctx);
    count(&EDGE_ACT_STATS, v.action as u32, bytes);
    count(&EDGE_RSN_STATS, v.reason as u32, bytes);
    count(&EDGE_PORT_STATS, v.port, bytes);
    count(&EDGE_PFX_STATS, v.slot, bytes);
    count(&EDGE_POP_STATS, v.pop, bytes);
    v.action as u32
}

/// `XDP_PASS` only, for veth peers: a veth delivers XDP_REDIRECTed frames
/// only when its peer runs an XDP program.
#[xdp]
pub fn edge_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[inline(always)]
fn forward<const LPM: bool>(ctx: &XdpContext) -> Verdict {
    let v = Verdict {
        action: Action::Pass,
        reason: Reason::Malformed,
        port: NONE,
        slot: NONE,
        pop: NONE,
    };
    let Some(port) = port(ctx.ingress_ifindex() as u32) else {
        return v.pass(Reason::UnknownPort);
    };
    let v = Verdict { port: port.id, ..v };
    let Ok(l2) = parse::ethernet(ctx) else {
        return v.pass(Reason::Malformed);
    };
    // The settings entry always exists (array map); the check is for the verifier.
    let Some(settings) = EDGE_SETTINGS.get(0) else {
        return v.pass(Reason::Malformed);
    };
    match l2.proto {
        parse::ETH_P_IP => forward_v4::<LPM>(ctx, v, port, settings, &l2),
        parse::ETH_P_IPV6 => forward_v6(ctx, v, port, settings, &l2),
        _ => v.pass(Reason::NotIp),
    }
}

/// The port of an ingress ifindex: the array for small ifindexes, the hash
/// beyond it.
#[inline(always)]
fn port(ifindex: u32) -> Option<&'static PortEntry> {
    if ifindex < limits::PORT_INDEX {
        let slot = EDGE_PORT_IDX.get(ifindex)?;
        if slot.valid == 0 {
            return None;
        }
        return Some(&slot.entry);
    }
    unsafe { EDGE_PORTS.get(ifindex) }
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

#[inline(always)]
fn forward_v4<const LPM: bool>(
    ctx: &XdpContext,
    v: Verdict,
    port: &PortEntry,
    settings: &Settings,
    l2: &L2,
) -> Verdict {
    // Parse: the fixed header only; options and fragments go to the kernel.
    let Ok(ip) = parse::ptr_at::<Ipv4Hdr>(ctx, l2.l3) else {
        return v.pass(Reason::Malformed);
    };
    let (vihl, frags, proto) =
        unsafe { ((*ip).vihl, u16::from_be_bytes((*ip).frags), (*ip).proto) };
    let (src, dst) = unsafe {
        (
            parse::bytes(&raw const (*ip).src_addr),
            parse::bytes(&raw const (*ip).dst_addr),
        )
    };
    if vihl >> 4 != 4 || vihl & 0x0F < 5 {
        return v.pass(Reason::Malformed);
    }
    if vihl & 0x0F != 5 {
        return v.pass(Reason::Ipv4Options);
    }
    // What the kernel's ip_rcv() checks: a total length outside the frame
    // or a bad header checksum is not forwarded (found by the packet fuzzer).
    let tot_len = u16::from_be_bytes(unsafe { (*ip).tot_len }) as usize;
    if tot_len < Ipv4Hdr::LEN || l2.l3 + tot_len > frame_len(ctx) || !parse::ipv4_checksum_ok(ip) {
        return v.pass(Reason::Malformed);
    }
    // More-fragments flag or a fragment offset.
    if frags & 0x3FFF != 0 {
        return v.pass(Reason::Fragment);
    }
    // Multicast (224/4), limited broadcast and class E: never forwarded here.
    if dst[0] >= 224 {
        return v.pass(Reason::Control);
    }
    if maybe_local([dst[2], dst[3]]) && unsafe { EDGE_LOCAL_V4.get(dst) }.is_some() {
        return v.pass(Reason::Local);
    }
    let l4_ports = if proto == parse::IPPROTO_TCP || proto == parse::IPPROTO_UDP {
        match parse::ports(ctx, l2.l3 + Ipv4Hdr::LEN) {
            Ok(p) => p,
            Err(()) => return v.pass(Reason::Malformed),
        }
    } else {
        0
    };

    // Classify: by source on peering ports (the customer sending in), by
    // destination elsewhere (toward the customer).
    let from_customer = port.role == role::PEERING;
    let addr = if from_customer { src } else { dst };
    let found = if LPM {
        EDGE_PFX_V4.get(&Key::new(32, addr))
    } else {
        fib::lookup_v4(addr)
    };
    let Some(prefix) = found else {
        return unregistered(v, settings);
    };
    // Decide.
    let hash = flow_hash_v4(src, dst, proto, l4_ports);
    let route = Route {
        from_customer,
        ttl: unsafe { (*ip).ttl },
        hash,
        encap: pop_flags::ENCAP_IPIP,
    };
    let (v, pop) = match decide(ctx, v, port, prefix, settings, route) {
        Ok(d) => d,
        Err(v) => {
            if v.reason == Reason::Protection {
                events::protection(&src, &dst, 4, prefix.slot, port.id);
            }
            return v;
        }
    };

    // Rewrite.
    if prefix.dscp != DSCP_KEEP {
        rewrite::ipv4_set_dscp(ip, prefix.dscp);
    }
    rewrite::ipv4_decrement_ttl(ip);
    if pop.flags & pop_flags::ENCAP_IPIP != 0 {
        // Fails only without headroom, which XDP guarantees (XDP_PACKET_HEADROOM).
        // The frame is already rewritten, so it is dropped, not passed.
        if rewrite::encap_ipip(ctx, l2.l3, pop, settings.encap_ttl).is_err() {
            return v.with(Action::Drop, Reason::EncapFailed);
        }
    } else {
        rewrite::set_macs(l2.eth, pop);
    }
    v
}

#[inline(always)]
fn forward_v6(
    ctx: &XdpContext,
    v: Verdict,
    port: &PortEntry,
    settings: &Settings,
    l2: &L2,
) -> Verdict {
    let Ok(ip) = parse::ptr_at::<Ipv6Hdr>(ctx, l2.l3) else {
        return v.pass(Reason::Malformed);
    };
    let (vcf0, next, src, dst) = unsafe {
        (
            (*ip).vcf[0],
            (*ip).next_hdr,
            parse::bytes(&raw const (*ip).src_addr),
            parse::bytes(&raw const (*ip).dst_addr),
        )
    };
    if vcf0 >> 4 != 6 {
        return v.pass(Reason::Malformed);
    }
    // A payload length beyond the frame (ip6_rcv_core() drops it).
    let payload_len = u16::from_be_bytes(unsafe { (*ip).payload_len }) as usize;
    if l2.l3 + Ipv6Hdr::LEN + payload_len > frame_len(ctx) {
        return v.pass(Reason::Malformed);
    }
    if next == 44 {
        return v.pass(Reason::Fragment);
    }
    if parse::is_ipv6_extension(next) {
        return v.pass(Reason::Ipv6Extension);
    }
    // Multicast (ff00::/8) and link-local (fe80::/10) at either end.
    if dst[0] == 0xFF
        || (dst[0] == 0xFE && dst[1] & 0xC0 == 0x80)
        || (src[0] == 0xFE && src[1] & 0xC0 == 0x80)
    {
        return v.pass(Reason::Control);
    }
    let l4 = l2.l3 + Ipv6Hdr::LEN;
    if next == parse::IPPROTO_ICMPV6 {
        // Neighbour discovery (RFC 4861 types 133-137) stays with the kernel.
        let Ok(icmp_type) = parse::ptr_at::<u8>(ctx, l4) else {
            return v.pass(Reason::Malformed);
        };
        if (133..=137).contains(&unsafe { *icmp_type }) {
            return v.pass(Reason::Control);
        }
    }
    if maybe_local([dst[14], dst[15]]) && unsafe { EDGE_LOCAL_V6.get(dst) }.is_some() {
        return v.pass(Reason::Local);
    }
    let l4_ports = if next == parse::IPPROTO_TCP || next == parse::IPPROTO_UDP {
        match parse::ports(ctx, l4) {
            Ok(p) => p,
            Err(()) => return v.pass(Reason::Malformed),
        }
    } else {
        0
    };

    let from_customer = port.role == role::PEERING;
    let key = Key::new(128, if from_customer { src } else { dst });
    let Some(prefix) = EDGE_PFX_V6.get(&key) else {
        return unregistered(v, settings);
    };
    let hash = flow_hash_v6(src, dst, next, l4_ports);
    let route = Route {
        from_customer,
        ttl: unsafe { (*ip).hop_limit },
        hash,
        encap: pop_flags::ENCAP_IP6IP6,
    };
    let (v, pop) = match decide(ctx, v, port, prefix, settings, route) {
        Ok(d) => d,
        Err(v) => {
            if v.reason == Reason::Protection {
                events::protection(&src, &dst, 6, prefix.slot, port.id);
            }
            return v;
        }
    };

    if prefix.dscp != DSCP_KEEP {
        rewrite::ipv6_set_dscp(ip, prefix.dscp);
    }
    unsafe { (*ip).hop_limit -= 1 };
    if pop.flags & pop_flags::ENCAP_IP6IP6 != 0 {
        if rewrite::encap_ip6ip6(ctx, l2.l3, pop, settings.encap_ttl).is_err() {
            return v.with(Action::Drop, Reason::EncapFailed);
        }
    } else {
        rewrite::set_macs(l2.eth, pop);
    }
    v
}

/// The frame's length in bytes.
#[inline(always)]
fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

/// Unregistered traffic gets the configured default.
#[inline(always)]
fn unregistered(v: Verdict, settings: &Settings) -> Verdict {
    if settings.default_action == default_action::DROP {
        v.with(Action::Drop, Reason::Unregistered)
    } else {
        v.pass(Reason::Unregistered)
    }
}

/// What `decide` needs to know about the packet besides its prefix.
struct Route {
    /// Arrived on a peering port (classified by source).
    from_customer: bool,
    /// TTL or hop limit.
    ttl: u8,
    hash: u32,
    /// The `pop_flags` tunnel bit of the packet's family.
    encap: u32,
}

/// Everything between classification and rewrite: traffic protection, the
/// TTL check, the PoP by routing preference and direction, and the
/// transmit: `XDP_TX` back out of the ingress port, or `XDP_REDIRECT`
/// through the devmap. Done before any rewrite, so a failure passes the
/// frame unmodified.
///
/// | preference | from the customer | toward the customer |
/// |---|---|---|
/// | microsoft (cold potato) | backbone exit | the policy's PoP for this flow |
/// | internet (hot potato) | transit exit | transit exit |
#[inline(always)]
fn decide(
    ctx: &XdpContext,
    v: Verdict,
    port: &PortEntry,
    prefix: &PrefixEntry,
    settings: &Settings,
    route: Route,
) -> Result<(Verdict, &'static Pop), Verdict> {
    let v = Verdict {
        slot: prefix.slot,
        ..v
    };
    // Traffic protection: a prefix registered on some peering ports,
    // arriving from the customer side on another one, is a spoof or hijack.
    if route.from_customer
        && prefix.allowed_ports != 0
        && (prefix.allowed_ports >> (port.id & 63)) & 1 == 0
    {
        return Err(v.with(Action::Drop, Reason::Protection));
    }
    // The kernel sends the ICMP time-exceeded.
    if route.ttl <= 1 {
        return Err(v.pass(Reason::TtlExceeded));
    }
    let (pop_id, reason) = if prefix.preference == preference::INTERNET {
        (settings.transit_exit, Reason::Transit)
    } else if route.from_customer {
        (settings.backbone_exit, Reason::Backbone)
    } else {
        let Some(table) = EDGE_POLICIES.get(prefix.policy) else {
            return Err(v.pass(Reason::NoNextHop));
        };
        // policy_slot() < POLICY_SLOTS ≤ 1024, which the verifier can follow.
        match table.pops.get(policy_slot(route.hash)) {
            Some(&p) => (p as u32, Reason::Policy),
            None => return Err(v.pass(Reason::NoNextHop)),
        }
    };
    let Some(pop) = EDGE_POPS.get(pop_id) else {
        return Err(v.pass(Reason::NoNextHop));
    };
    // Unused, or reached only through a tunnel of the other family.
    let tunnels = pop_flags::ENCAP_IPIP | pop_flags::ENCAP_IP6IP6;
    if pop.flags & pop_flags::VALID == 0
        || (pop.flags & tunnels != 0 && pop.flags & route.encap == 0)
    {
        return Err(v.pass(Reason::NoNextHop));
    }
    let action = if pop.ifindex == ctx.ingress_ifindex() as u32 {
        Action::Tx
    } else if EDGE_TX_PORTS.redirect(pop.ifindex, 0).is_ok() {
        Action::Redirect
    } else {
        return Err(v.pass(Reason::NoTxPort));
    };
    Ok((Verdict { pop: pop_id, ..v }.with(action, reason), pop))
}

/// Per-CPU, so no atomics: XDP runs in softirq context on one CPU.
#[inline(always)]
pub(crate) fn count(map: &PerCpuArray<Counter>, index: u32, bytes: u64) {
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
