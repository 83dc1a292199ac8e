//! edge: the XDP forwarder. Reads top to bottom: parse (with the port
//! demux: the interface, or the logical port of its VLAN tags) → classify
//! (the public routing domain's tables, or the port's private domain's) →
//! decide → MTU → measure → rewrite (the PoP's VLAN tags last) → count.
//! Everything that can be computed ahead of time (policy selection tables,
//! next-hop MACs, tunnel endpoints, egress ports and tags, logical ports)
//! is computed by edged and read from maps.
#![no_std]
#![no_main]

mod classify;
mod csum;
mod decap;
mod events;
mod family;
mod fib;
mod fib6;
mod icmp;
mod maps;
mod parse;
mod rewrite;
mod rtt;
mod vlan;

use aya_ebpf::{bindings::xdp_action, macros::xdp, maps::PerCpuArray, programs::XdpContext};
use edge_common::{
    Action, Counter, DSCP_KEEP, LportKey, PUBLIC_DOMAIN, Pop, PortEntry, PrefixEntry, Reason,
    Settings, default_action, limits, policy_slot, pop_flags, port_flags, preference, role,
    vlan_mode,
};
use family::Family;
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

/// The same forwarder with both lookups through kernel LPM tries
/// (`EDGE_LPM_V4`/`_V6`, which the bench fills): the baseline of `cargo
/// xtask bench`. Never attached; edged never writes those tries.
#[xdp]
pub fn edge_lpm(ctx: XdpContext) -> u32 {
    run::<true>(&ctx)
}

/// Forwards and counts; `LPM` selects the lookups.
#[inline(always)]
fn run<const LPM: bool>(ctx: &XdpContext) -> u32 {
    let bytes = parse::frame_len(ctx) as u64;
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
    let ifindex = ctx.ingress_ifindex() as u32;
    let Some(iface) = port(ifindex) else {
        return v.pass(Reason::UnknownPort);
    };
    let Ok(l2) = parse::ethernet(ctx) else {
        // Counted on the interface's port, unless no port has that entry.
        let port = if iface.flags & port_flags::NO_UNTAGGED == 0 {
            iface.id
        } else {
            NONE
        };
        return Verdict { port, ..v }.pass(Reason::Malformed);
    };
    // Port demux: on an interface with logical ports, the port of the
    // frame's tags; elsewhere every frame, tagged or not, is the interface's.
    let port = if iface.flags & port_flags::TAGGED == 0 {
        iface
    } else {
        match logical_port(iface, ifindex, l2.outer, l2.inner) {
            Some(p) => p,
            None => return v.pass(Reason::UnknownVlan),
        }
    };
    let v = Verdict { port: port.id, ..v };
    // The settings entry always exists (array map); the check is for the verifier.
    let Some(settings) = EDGE_SETTINGS.get(0) else {
        return v.pass(Reason::Malformed);
    };
    match l2.proto {
        parse::ETH_P_IP => forward_ip::<Ipv4Hdr, LPM>(ctx, v, port, settings, &l2),
        parse::ETH_P_IPV6 => forward_ip::<Ipv6Hdr, LPM>(ctx, v, port, settings, &l2),
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
    // SAFETY: the value stays mapped for the whole run (RCU read side) and
    // is only read; a concurrent update by edged at worst gives this packet
    // the old entry.
    unsafe { EDGE_PORTS.get(ifindex) }
}

/// The port of a frame on an interface with logical ports (`iface`, with
/// `port_flags::TAGGED`): a tagged frame's is the `EDGE_LPORTS` entry of
/// its exact tags, an untagged frame's the interface's own unless
/// `NO_UNTAGGED`; `None` when no port claims the frame.
///
/// A function of its own in the object (a BPF-to-BPF call): its key and
/// branches stay out of the forwarder's stack frame, which customer
/// latency's call fills up to the verifier's 512 bytes.
#[inline(never)]
fn logical_port(
    iface: &'static PortEntry,
    ifindex: u32,
    outer: u16,
    inner: u16,
) -> Option<&'static PortEntry> {
    if outer == 0 {
        return (iface.flags & port_flags::NO_UNTAGGED == 0).then_some(iface);
    }
    let key = LportKey {
        ifindex,
        outer,
        inner,
    };
    // SAFETY: as in `port`: a map value read under RCU, never written.
    unsafe { EDGE_LPORTS.get(key) }
}

/// The pipeline of both families, compiled once for each (`H` is the
/// family's header type, see `family.rs`).
#[inline(always)]
fn forward_ip<H: Family, const LPM: bool>(
    ctx: &XdpContext,
    v: Verdict,
    port: &PortEntry,
    settings: &Settings,
    l2: &L2,
) -> Verdict {
    // Parse.
    let Ok(ip) = H::parse(ctx, l2.l3) else {
        return v.pass(Reason::Malformed);
    };

    // Classify: what is not ours goes to the kernel; the rest by source on
    // peering ports (the customer sending in), by destination elsewhere
    // (toward the customer).
    let ports = match classify::forwardable(ctx, &ip) {
        Ok(ports) => ports,
        // A router discards martians (RFC 1812 5.3.7); the rest is the kernel's.
        Err(Reason::Martian) => return v.with(Action::Drop, Reason::Martian),
        // In a private domain the kernel may have what is for this host
        // (control, local; malformed it drops), never what it would
        // forward by the public domain's routing table (fragments,
        // options, extension headers): those are dropped.
        Err(reason @ (Reason::Fragment | Reason::Ipv4Options | Reason::Ipv6Extension))
            if port.domain != PUBLIC_DOMAIN =>
        {
            return v.with(Action::Drop, reason);
        }
        Err(reason) => return v.pass(reason),
    };
    // The public domain: by source on peering ports, by destination
    // elsewhere, unregistered traffic gets the configured default. A
    // private domain: by destination in its own table, and what it does
    // not hold is dropped: the kernel's routing table is the public
    // domain's, so passing would leak the packet into it.
    let from_customer = port.domain == PUBLIC_DOMAIN && port.role == role::PEERING;
    let prefix = if port.domain == PUBLIC_DOMAIN {
        H::lookup::<LPM>(if from_customer { ip.src } else { ip.dst })
    } else {
        H::domain_lookup(port.domain, &ip.dst)
    };
    let Some(prefix) = prefix else {
        return if port.domain == PUBLIC_DOMAIN {
            unregistered(v, settings)
        } else {
            v.with(Action::Drop, Reason::Unregistered)
        };
    };

    // Decide.
    let hash = H::flow_hash(&ip, ports);
    let route = Route {
        from_customer,
        ttl: H::ttl(ip.hdr),
        hash,
        encap: H::ENCAP,
    };
    let (v, pop) = match decide(ctx, v, port, prefix, settings, route) {
        Ok(d) => d,
        Err(v) => {
            if v.reason == Reason::Protection {
                events::protection(
                    ip.src.as_ref(),
                    ip.dst.as_ref(),
                    H::EVENT,
                    prefix.slot,
                    port.id,
                );
            }
            return v;
        }
    };

    // MTU: a packet the PoP's link cannot carry (with its tunnel header)
    // is not sent: an ICMP error goes back to its sender, or the kernel
    // gets it (icmp.rs). Not sent to the PoP, so not counted for it.
    if exceeds_mtu::<H>(pop, ip.end - l2.l3) {
        let (action, reason) = H::too_big(ctx, l2, &ip, pop);
        // The kernel would fragment or forward it by the public domain's
        // routing: not a private domain's packet.
        let action = if action == Action::Pass && port.domain != PUBLIC_DOMAIN {
            Action::Drop
        } else {
            action
        };
        return Verdict { pop: NONE, ..v }.with(action, reason);
    }

    // Measure: customer latency from forwarded TCP (rtt.rs), before the
    // rewrite moves the headers. Other packets pay these compares, TCP
    // packets that can neither give nor ask for a sample the gate's few
    // loads (`rtt::wanted`).
    // Not in the bench's kernel-trie variant (`edge_lpm`, a lookup
    // reference): its larger frame leaves no stack for the call. Nor in a
    // private domain: classified by destination both ways, it has no
    // answers to sample (only the public side knows who the customer is).
    if !LPM
        && ip.proto == parse::IPPROTO_TCP
        && settings.rtt != 0
        && port.domain == PUBLIC_DOMAIN
        && rtt::wanted(ctx, &ip, from_customer, hash)
    {
        rtt::measure(
            ctx,
            &ip,
            ports,
            rtt::packet_facts(prefix.slot, from_customer, hash),
            settings.rtt_interval_ns,
        );
    }

    // Rewrite.
    if prefix.dscp != DSCP_KEEP {
        H::set_dscp(ip.hdr, prefix.dscp);
    }
    H::decrement_ttl(ip.hdr);
    if pop.flags & H::ENCAP != 0 {
        // Fails only without headroom, which XDP guarantees (XDP_PACKET_HEADROOM).
        // The frame is already rewritten, so it is dropped, not passed.
        if H::encap(ctx, l2.l3, pop, settings.encap_ttl).is_err() {
            return v.with(Action::Drop, Reason::EncapFailed);
        }
    } else {
        rewrite::set_macs(l2.eth, pop);
    }
    // The PoP's VLAN tags, around whatever header is there now (the same
    // length as received: encapsulation adds its header after it).
    if pop.vlan_mode != vlan_mode::KEEP && vlan::retag(ctx, l2.l3, pop, H::ETHER_TYPE).is_err() {
        return v.with(Action::Drop, Reason::EncapFailed);
    }
    v
}

/// Whether an IP packet of `len` bytes, with the tunnel header `pop` adds
/// to its family, is longer than `pop`'s link MTU (0: not checked).
#[inline(always)]
fn exceeds_mtu<H: Family>(pop: &Pop, len: usize) -> bool {
    let tunnel = if pop.flags & H::ENCAP != 0 {
        H::TUNNEL_LEN
    } else {
        0
    };
    pop.mtu != 0 && len + tunnel > pop.mtu as usize
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
/// | microsoft (cold potato) | backbone exit's table | the policy's table |
/// | internet (hot potato) | transit exit's table | transit exit's table |
///
/// A private domain has neither exits nor preferences: the policy's table,
/// no protection. Its PoP must be of the same domain, and where the public
/// domain passes a packet it cannot send (no next hop, no transmit port)
/// a private one drops it: the kernel would route it by the public table.
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
    let public = port.domain == PUBLIC_DOMAIN;
    // Not sent: the kernel's in the public domain, dropped in a private one.
    let unsent = |reason| {
        if public {
            v.pass(reason)
        } else {
            v.with(Action::Drop, reason)
        }
    };
    // Traffic protection: a prefix registered on some peering ports,
    // arriving from the customer side on another one, is a spoof or hijack.
    // (`from_customer` is only ever set in the public domain.)
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
    // Every direction picks its PoP the same way: a selection table that
    // edged computes from the members, method and health, indexed by the
    // flow hash (exits are tables too, so they follow health).
    let (table, reason) = if !public {
        (prefix.policy, Reason::Policy)
    } else if prefix.preference == preference::INTERNET {
        (settings.transit_table, Reason::Transit)
    } else if route.from_customer {
        (settings.backbone_table, Reason::Backbone)
    } else {
        (prefix.policy, Reason::Policy)
    };
    let Some(table) = EDGE_POLICIES.get(table) else {
        return Err(unsent(Reason::NoNextHop));
    };
    // policy_slot() < POLICY_SLOTS ≤ 1024, which the verifier can follow.
    let pop_id = match table.pops.get(policy_slot(route.hash)) {
        Some(&p) => p as u32,
        None => return Err(unsent(Reason::NoNextHop)),
    };
    let Some(pop) = EDGE_POPS.get(pop_id) else {
        return Err(unsent(Reason::NoNextHop));
    };
    // Unused, reached only through a tunnel of the other family, or in
    // another routing domain (config validation prevents the last).
    let tunnels = pop_flags::ENCAP_IPIP | pop_flags::ENCAP_IP6IP6;
    if pop.flags & pop_flags::VALID == 0
        || (pop.flags & tunnels != 0 && pop.flags & route.encap == 0)
        || pop.domain != port.domain
    {
        return Err(unsent(Reason::NoNextHop));
    }
    let action = if pop.ifindex == ctx.ingress_ifindex() as u32 {
        Action::Tx
    } else if EDGE_TX_PORTS.redirect(pop.ifindex, 0).is_ok() {
        Action::Redirect
    } else {
        return Err(unsent(Reason::NoTxPort));
    };
    Ok((Verdict { pop: pop_id, ..v }.with(action, reason), pop))
}

/// Per-CPU, so no atomics: XDP runs in softirq context on one CPU.
#[inline(always)]
pub(crate) fn count(map: &PerCpuArray<Counter>, index: u32, bytes: u64) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU map, and XDP runs in softirq
        // context: nothing else writes it meanwhile.
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
