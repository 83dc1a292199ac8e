//! The packet fuzzer's reference classifier: what the forwarder must do
//! with a frame, computed from its bytes, the ingress interface and the
//! maps' contents by code that shares nothing with the kernel program.
//!
//! It is written from the documentation (docs/config.md, "What the program
//! does with a packet"; the `Reason` docs in edge-common) and the RFCs
//! (IEEE 802.1Q, RFC 791, RFC 8200, RFC 4861, RFC 4291), never from
//! edge-ebpf: the frame is read with plain byte indexing, every length
//! checked against the slice before it is used, one stage after another
//! (link, network, transport, then the decisions). Only the flow hash is
//! shared, because it is a definition rather than a classification
//! (`edge_common::flow_hash_v4` / `flow_hash_v6` and `policy_slot`).
//!
//! Where the docs leave the precedence of two reasons open, the first runs
//! disagreed with the kernel, and the reference now follows the order the
//! kernel program documents (parse.rs, classify.rs): an IPv4 header with
//! options is `ipv4_options` before its lengths and checksum are looked
//! at; IPv4 destinations from 224.0.0.0 up (class E too) are `control`;
//! `control` and `local` come before the ports check (and IPv6 multicast
//! or link-local before the ICMPv6 type check). Each such rule says so.
//!
//! [`Verdict::why`] says in words what decided, for failure messages and
//! for the fuzzer's coverage summary.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use edge_common::{
    Action, NO_EXIT, NO_POP, POLICY_SLOTS, PolicyTable, Pop, PortEntry, PrefixEntry, Reason,
    Settings, default_action, flow_hash_v4, flow_hash_v6, limits, policy_slot, pop_flags,
    preference, role,
};
use ipnet::IpNet;

use crate::harness::maps::Tables;

/// What the reference expects for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub reason: Reason,
    /// The PoP a forwarded frame goes to (`Tx` / `Redirect` only).
    pub pop: Option<u32>,
    /// What decided, in words (a fixed string per rule).
    pub why: &'static str,
}

impl Verdict {
    fn pass(reason: Reason, why: &'static str) -> Self {
        Self {
            action: Action::Pass,
            reason,
            pop: None,
            why,
        }
    }

    fn drop(reason: Reason, why: &'static str) -> Self {
        Self {
            action: Action::Drop,
            reason,
            pop: None,
            why,
        }
    }

    /// `action/reason[ → PoP n]`.
    pub fn outcome(&self) -> String {
        outcome(self.action, self.reason, self.pop)
    }
}

/// `action/reason[ → PoP n]`, for a verdict or for what the kernel did.
pub fn outcome(action: Action, reason: Reason, pop: Option<u32>) -> String {
    match pop {
        Some(p) => format!("{}/{} → PoP {p}", action.name(), reason.name()),
        None => format!("{}/{}", action.name(), reason.name()),
    }
}

/// What the program's maps say, read once: ports, registered prefixes,
/// selection tables, PoPs, settings and this host's addresses.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Ingress ifindex → port.
    pub ports: BTreeMap<u32, PortEntry>,
    /// Registered prefixes with their entries (any order).
    pub prefixes: Vec<(IpNet, PrefixEntry)>,
    /// Selection tables by id: every id of the array map.
    pub tables: BTreeMap<u32, PolicyTable>,
    /// PoP entries by id (all-zero ones left out).
    pub pops: BTreeMap<u32, Pop>,
    pub settings: Settings,
    pub locals: BTreeSet<IpAddr>,
}

impl Model {
    /// The model of what `tables` hold now.
    pub fn from_tables(tables: &Tables) -> anyhow::Result<Self> {
        let ports = tables.ports()?.into_iter().collect();
        let prefixes = tables.prefixes()?;
        let settings = tables.settings()?;
        let mut model = Self {
            ports,
            prefixes,
            settings,
            locals: tables.locals()?.into_iter().collect(),
            ..Self::default()
        };
        // Every selection table (an array: each id has one, empty or not).
        for id in 0..limits::MAX_POLICIES {
            model.tables.insert(id, tables.policy(id)?);
        }
        for id in 0..limits::MAX_POPS {
            let pop = tables.pop(id)?;
            if pop != Pop::default() {
                model.pops.insert(id, pop);
            }
        }
        Ok(model)
    }

    /// The longest registered prefix holding `addr`, by a plain scan.
    fn longest_match(&self, addr: IpAddr) -> Option<(IpNet, PrefixEntry)> {
        self.prefixes
            .iter()
            .filter(|(net, _)| net.contains(&addr))
            .max_by_key(|(net, _)| net.prefix_len())
            .copied()
    }

    fn is_transmit_port(&self, ifindex: u32) -> bool {
        // docs/config.md: "Every port is a transmit port too."
        self.ports.contains_key(&ifindex)
    }
}

/// The IP header fields the decisions need, either family.
struct Ip<'a> {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    /// IPv4 protocol / IPv6 next header (the transport: extension headers
    /// never get this far).
    proto: u8,
    ttl: u8,
    /// The frame after the IP header, Ethernet padding included.
    after_ip: &'a [u8],
    /// How many bytes of `after_ip` the IP header's length field gives the
    /// datagram: only those are read.
    inside: usize,
}

impl Ip<'_> {
    fn addr(&self, a: &[u8; 16]) -> IpAddr {
        if self.v6 {
            IpAddr::from(*a)
        } else {
            IpAddr::from([a[0], a[1], a[2], a[3]])
        }
    }

    /// The first `need` bytes of the transport header, if the datagram
    /// holds them; otherwise the malformed verdict, saying whether the
    /// bytes are in the Ethernet padding after the datagram all the same
    /// (the class of frames the kernel once read them from).
    fn transport(&self, need: usize) -> Result<&[u8], Verdict> {
        let datagram = &self.after_ip[..self.inside];
        if datagram.len() >= need {
            return Ok(&datagram[..need]);
        }
        let in_padding = self.after_ip.len() >= need;
        Err(Verdict::pass(
            Reason::Malformed,
            match (self.v6, self.proto, in_padding) {
                (false, _, true) => "IPv4 ports only in the Ethernet padding",
                (false, _, false) => "IPv4 datagram and frame end before the ports",
                (true, ICMPV6, true) => "ICMPv6 type only in the Ethernet padding",
                (true, ICMPV6, false) => "IPv6 datagram and frame end before the ICMPv6 type",
                (true, _, true) => "IPv6 ports only in the Ethernet padding",
                (true, _, false) => "IPv6 datagram and frame end before the ports",
            },
        ))
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IEEE 802.1Q customer tag and 802.1ad service tag.
const TPIDS: [u16; 2] = [0x8100, 0x88a8];
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// IPv6 extension headers (IANA "IPv6 Extension Header Types", RFC 7045):
/// hop-by-hop, routing, fragment, ESP, AH, destination options, mobility,
/// HIP, shim6 and the two experimental values.
const V6_EXTENSION_HEADERS: [u8; 11] = [0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254];
const V6_FRAGMENT: u8 = 44;
/// ICMPv6 neighbour discovery (RFC 4861 §4): router solicitation and
/// advertisement, neighbour solicitation and advertisement, redirect.
const ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// RFC 1071: the one's-complement sum of the header, checksum included,
/// is all ones when the checksum is right.
fn ipv4_header_sums_to_ones(header: &[u8]) -> bool {
    let mut sum: u64 = 0;
    for pair in header.chunks_exact(2) {
        sum += u64::from(be16(pair, 0));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The expected outcome of `frame` arriving on `ingress` (an ifindex).
///
/// The reasons are decided in this order (each stage only sees what the
/// earlier ones let through): `unknown_port`; the link layer (`malformed`
/// tags, `not_ip`); the IP header (`malformed`, then `ipv4_options` /
/// `ipv6_extension`, `fragment`); `control` (IPv6: a multicast or
/// link-local address first, then the ICMPv6 type, which must be inside
/// the datagram, else `malformed`); `local`; the TCP / UDP ports, which
/// must be inside the datagram, else `malformed`; then the prefix
/// (`unregistered`), `protection`, `ttl_exceeded`, the next hop
/// (`no_next_hop`, `no_tx_port`) and the forwarding reasons.
pub fn expect(model: &Model, frame: &[u8], ingress: u32) -> Verdict {
    let Some(port) = model.ports.get(&ingress) else {
        return Verdict::pass(Reason::UnknownPort, "ingress is not a port");
    };
    let ip = match network(frame) {
        Ok(ip) => ip,
        Err(verdict) => return verdict,
    };
    if let Some(v) = control_or_local(model, &ip) {
        return v;
    }
    let ports = match ip.proto {
        TCP | UDP => match ip.transport(4) {
            Ok(b) => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            Err(v) => return v,
        },
        _ => 0,
    };
    decide(model, &ip, ports, *port, ingress)
}

/// The link and network layers.
fn network(frame: &[u8]) -> Result<Ip<'_>, Verdict> {
    use Reason::*;
    // Ethernet II: destination, source, EtherType (a frame is at least
    // 14 bytes: BPF_PROG_TEST_RUN takes no less).
    if frame.len() < 14 {
        return Err(Verdict::pass(Malformed, "shorter than an Ethernet header"));
    }
    let mut ether_type = be16(frame, 12);
    let mut l3 = 14;
    for _ in 0..limits::VLAN_MAX_DEPTH {
        if !TPIDS.contains(&ether_type) {
            break;
        }
        // A tag: TCI (2 bytes), then the next EtherType.
        if frame.len() < l3 + 4 {
            return Err(Verdict::pass(Malformed, "VLAN tag cut short"));
        }
        ether_type = be16(frame, l3 + 2);
        l3 += 4;
    }
    let rest = &frame[l3..];
    match ether_type {
        ETHERTYPE_IPV4 => ipv4(rest),
        ETHERTYPE_IPV6 => ipv6(rest),
        t if TPIDS.contains(&t) => Err(Verdict::pass(NotIp, "three or more VLAN tags")),
        _ => Err(Verdict::pass(NotIp, "EtherType is not IPv4 or IPv6")),
    }
}

/// RFC 791, with the receive checks of RFC 1122 §3.2.1 (and Linux's
/// ip_rcv): `p` is everything after the link layer, padding included.
///
/// A header with options goes to the kernel as `ipv4_options` once its
/// fixed part is there with the right version and an IHL of at least 5:
/// its options, total length and checksum are the kernel's to check (the
/// program does not read it further).
fn ipv4(p: &[u8]) -> Result<Ip<'_>, Verdict> {
    use Reason::*;
    let bad = |why| Err(Verdict::pass(Malformed, why));
    if p.len() < 20 {
        return bad("IPv4 header cut short");
    }
    if p[0] >> 4 != 4 {
        return bad("version nibble is not 4 under the IPv4 EtherType");
    }
    let header_len = usize::from(p[0] & 0x0f) * 4;
    if header_len < 20 {
        return bad("IPv4 IHL below 5");
    }
    if header_len > 20 {
        let cut = header_len > p.len() || usize::from(be16(p, 2)) > p.len();
        return Err(Verdict::pass(
            Ipv4Options,
            if cut {
                "IPv4 options, cut short or a lying length"
            } else {
                "IPv4 options"
            },
        ));
    }
    let total = usize::from(be16(p, 2));
    if total < 20 {
        return bad("IPv4 total length below 20");
    }
    if total > p.len() {
        return bad("IPv4 total length beyond the frame");
    }
    if !ipv4_header_sums_to_ones(&p[..20]) {
        return bad("IPv4 header checksum wrong");
    }
    let flags_offset = be16(p, 6);
    let more_fragments = flags_offset & 0x2000 != 0;
    let offset = flags_offset & 0x1fff;
    if more_fragments || offset != 0 {
        return Err(Verdict::pass(Fragment, "IPv4 fragment"));
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&p[12..16]);
    dst[..4].copy_from_slice(&p[16..20]);
    Ok(Ip {
        v6: false,
        src,
        dst,
        proto: p[9],
        ttl: p[8],
        after_ip: &p[20..],
        // The datagram ends at the total length: anything after is padding.
        inside: total - 20,
    })
}

/// RFC 8200: `p` is everything after the link layer, padding included.
fn ipv6(p: &[u8]) -> Result<Ip<'_>, Verdict> {
    use Reason::*;
    let bad = |why| Err(Verdict::pass(Malformed, why));
    if p.len() < 40 {
        return bad("IPv6 header cut short");
    }
    if p[0] >> 4 != 6 {
        return bad("version nibble is not 6 under the IPv6 EtherType");
    }
    let payload = usize::from(be16(p, 4));
    if 40 + payload > p.len() {
        return bad("IPv6 payload length beyond the frame");
    }
    let next = p[6];
    if next == V6_FRAGMENT {
        return Err(Verdict::pass(Fragment, "IPv6 fragment header"));
    }
    if V6_EXTENSION_HEADERS.contains(&next) {
        return Err(Verdict::pass(Ipv6Extension, "IPv6 extension header"));
    }
    Ok(Ip {
        v6: true,
        src: p[8..24].try_into().unwrap(),
        dst: p[24..40].try_into().unwrap(),
        proto: next,
        ttl: p[7],
        after_ip: &p[40..],
        inside: payload,
    })
}

/// Traffic that is the kernel's whatever the prefixes say: link-local
/// control and this host's own addresses.
fn control_or_local(model: &Model, ip: &Ip) -> Option<Verdict> {
    use Reason::{Control, Local};
    if ip.v6 {
        let multicast = |a: &[u8; 16]| a[0] == 0xff; // ff00::/8
        let link_local = |a: &[u8; 16]| a[0] == 0xfe && a[1] & 0xc0 == 0x80; // fe80::/10
        if multicast(&ip.dst) {
            return Some(Verdict::pass(Control, "IPv6 multicast destination"));
        }
        if link_local(&ip.src) || link_local(&ip.dst) {
            return Some(Verdict::pass(Control, "IPv6 link-local address"));
        }
        if ip.proto == ICMPV6 {
            match ip.transport(1) {
                Err(v) => return Some(v),
                Ok(t) if ND_TYPES.contains(&t[0]) => {
                    return Some(Verdict::pass(Control, "ICMPv6 neighbour discovery"));
                }
                Ok(_) => {}
            }
        }
    } else {
        // 224.0.0.0 and up: multicast (224/4), the reserved class E
        // (240/4) and the limited broadcast, none of them unicast.
        match ip.dst[0] {
            224..=239 => return Some(Verdict::pass(Control, "IPv4 multicast destination")),
            _ if ip.dst[..4] == [255; 4] => {
                return Some(Verdict::pass(Control, "IPv4 limited broadcast"));
            }
            240..=255 => return Some(Verdict::pass(Control, "IPv4 class E destination")),
            _ => {}
        }
    }
    if let Some(why) = martian(ip) {
        return Some(Verdict::drop(Reason::Martian, why));
    }
    if model.locals.contains(&ip.addr(&ip.dst)) {
        return Some(Verdict::pass(Local, "to this host's own address"));
    }
    None
}

/// Addresses no router forwards (RFC 1812 5.3.7, RFC 4291 2.5), as
/// docs/config.md lists them, once control traffic is out of the way.
fn martian(ip: &Ip) -> Option<&'static str> {
    if ip.v6 {
        let addr = |a: &[u8; 16]| std::net::Ipv6Addr::from(*a);
        for a in [addr(&ip.src), addr(&ip.dst)] {
            if a.is_unspecified() {
                return Some("IPv6 unspecified address");
            }
            if a.is_loopback() {
                return Some("IPv6 loopback address");
            }
            if a.segments()[..6] == [0, 0, 0, 0, 0, 0xffff] {
                return Some("IPv4-mapped IPv6 address");
            }
        }
        if addr(&ip.src).is_multicast() {
            return Some("IPv6 multicast source");
        }
    } else {
        let addr = |a: &[u8; 16]| std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        for a in [addr(&ip.src), addr(&ip.dst)] {
            if a.octets()[0] == 0 {
                return Some("IPv4 \"this network\" address");
            }
            if a.is_loopback() {
                return Some("IPv4 loopback address");
            }
            if a.is_link_local() {
                return Some("IPv4 link-local address");
            }
        }
        if ip.src[0] >= 224 {
            return Some("IPv4 multicast or class E source");
        }
    }
    None
}

/// Which way a packet goes relative to the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Arrived on a peering port: classified by its source.
    FromCustomer,
    /// Arrived on a backbone or transit port: classified by its destination.
    TowardCustomer,
}

/// Where a registered packet goes, or why nowhere: the one place that
/// maps (preference, direction) to a forwarding reason and a PoP.
///
/// Every direction takes the PoP at `slot` (`policy_slot` of the flow hash)
/// of a selection table: toward the customer (microsoft preference) the
/// prefix's, from the customer the backbone exit's, and for the internet
/// preference the transit exit's (`Settings::backbone_table` /
/// `transit_table`; `NO_EXIT`: none configured).
pub fn next_hop(
    model: &Model,
    entry: &PrefixEntry,
    direction: Direction,
    slot: usize,
) -> (Reason, Result<u32, &'static str>) {
    let from_table = |id: u32| match model.tables.get(&id) {
        None => Err("no such selection table"),
        Some(t) if t.pops[slot] == NO_POP => Err("empty selection slot"),
        Some(t) => Ok(u32::from(t.pops[slot])),
    };
    let exit = |id: u32, none| {
        if id == NO_EXIT {
            Err(none)
        } else {
            from_table(id)
        }
    };
    let settings = &model.settings;
    match (entry.preference, direction) {
        (preference::INTERNET, _) => (
            Reason::Transit,
            exit(settings.transit_table, "no transit exit"),
        ),
        (_, Direction::FromCustomer) => (
            Reason::Backbone,
            exit(settings.backbone_table, "no backbone exit"),
        ),
        (_, Direction::TowardCustomer) => (Reason::Policy, from_table(entry.policy)),
    }
}

/// Classification by prefix, protection, TTL, the next hop and the egress.
fn decide(model: &Model, ip: &Ip, ports: u32, port: PortEntry, ingress: u32) -> Verdict {
    use Reason::*;
    let direction = if port.role == role::PEERING {
        Direction::FromCustomer
    } else {
        Direction::TowardCustomer
    };
    let customer = match direction {
        Direction::FromCustomer => ip.addr(&ip.src),
        Direction::TowardCustomer => ip.addr(&ip.dst),
    };
    let Some((_, entry)) = model.longest_match(customer) else {
        let why = "no registered prefix covers the address";
        return if model.settings.default_action == default_action::DROP {
            Verdict::drop(Unregistered, why)
        } else {
            Verdict::pass(Unregistered, why)
        };
    };
    if direction == Direction::FromCustomer
        && entry.allowed_ports != 0
        && (port.id >= 64 || entry.allowed_ports & (1u64 << port.id) == 0)
    {
        return Verdict::drop(Protection, "protected prefix on another peering port");
    }
    if ip.ttl <= 1 {
        return Verdict::pass(TtlExceeded, "registered, TTL / hop limit at most 1");
    }
    let hash = if ip.v6 {
        flow_hash_v6(ip.src, ip.dst, ip.proto, ports)
    } else {
        let four = |a: &[u8; 16]| [a[0], a[1], a[2], a[3]];
        flow_hash_v4(four(&ip.src), four(&ip.dst), ip.proto, ports)
    };
    let slot = policy_slot(hash);
    debug_assert!(slot < POLICY_SLOTS);
    let (reason, pop_id) = next_hop(model, &entry, direction, slot);
    let pop_id = match pop_id {
        Ok(id) => id,
        Err(why) => return Verdict::pass(NoNextHop, why),
    };
    let Some(pop) = model
        .pops
        .get(&pop_id)
        .filter(|p| p.flags & pop_flags::VALID != 0)
    else {
        return Verdict::pass(NoNextHop, "the PoP entry is unused");
    };
    // A PoP with a tunnel takes only the families it has a tunnel for.
    let tunnels = pop.flags & (pop_flags::ENCAP_IPIP | pop_flags::ENCAP_IP6IP6);
    let own = if ip.v6 {
        pop_flags::ENCAP_IP6IP6
    } else {
        pop_flags::ENCAP_IPIP
    };
    if tunnels != 0 && tunnels & own == 0 {
        return Verdict::pass(NoNextHop, "the PoP has only a tunnel of the other family");
    }
    if !model.is_transmit_port(pop.ifindex) {
        return Verdict::pass(NoTxPort, "the PoP's egress is not a transmit port");
    }
    let (action, why) = if pop.ifindex == ingress {
        (Action::Tx, "forwarded out of the ingress port")
    } else {
        (Action::Redirect, "forwarded out of another port")
    };
    Verdict {
        action,
        reason,
        pop: Some(pop_id),
        why,
    }
}

#[cfg(test)]
mod tests {
    use edge_common::{POLICY_SLOTS, PolicyTable};

    use super::*;
    use crate::{
        frames::{L4, Pkt},
        fuzzgen::set_ipv4_checksum,
    };

    const PEER0: u32 = 10;
    const PEER1: u32 = 11;
    const BB0: u32 = 12;

    /// Two peering ports and a backbone; a protected microsoft prefix of
    /// each family whose table sends everything to PoP 0 (on peer0), an
    /// internet prefix, prefixes whose table points to PoP 3 (an IPv4
    /// tunnel only), is empty, or does not exist; PoP 1 the backbone exit,
    /// PoP 2 the transit exit; unregistered traffic dropped.
    fn model() -> Model {
        let port = |role, id| PortEntry {
            role,
            id,
            ..PortEntry::default()
        };
        let entry = |preference, allowed_ports| PrefixEntry {
            policy: 0,
            preference,
            allowed_ports,
            ..PrefixEntry::default()
        };
        let pop = |ifindex, flags| Pop {
            ifindex,
            flags: pop_flags::VALID | flags,
            ..Pop::default()
        };
        let mut to_pop0 = PolicyTable::default();
        to_pop0.pops[..POLICY_SLOTS].fill(0);
        let mut to_pop3 = PolicyTable::default();
        to_pop3.pops[..POLICY_SLOTS].fill(3);
        // The exits' tables: every slot to PoP 1 (backbone) or 2 (transit).
        let mut to_pop1 = PolicyTable::default();
        to_pop1.pops[..POLICY_SLOTS].fill(1);
        let mut to_pop2 = PolicyTable::default();
        to_pop2.pops[..POLICY_SLOTS].fill(2);
        Model {
            ports: [
                (PEER0, port(role::PEERING, 0)),
                (PEER1, port(role::PEERING, 1)),
                (BB0, port(role::BACKBONE, 2)),
            ]
            .into(),
            prefixes: vec![
                ("192.0.2.0/25", entry(preference::MICROSOFT, 1)),
                ("2001:db8:c::/48", entry(preference::MICROSOFT, 1)),
                ("203.0.113.0/24", entry(preference::INTERNET, 0)),
                (
                    "2001:db8:e::/48",
                    PrefixEntry {
                        policy: 1,
                        ..entry(preference::MICROSOFT, 0)
                    },
                ),
                (
                    "198.51.100.0/25",
                    PrefixEntry {
                        policy: 2,
                        ..entry(preference::MICROSOFT, 0)
                    },
                ),
                (
                    "198.51.100.128/25",
                    PrefixEntry {
                        policy: 300,
                        ..entry(preference::MICROSOFT, 0)
                    },
                ),
            ]
            .into_iter()
            .map(|(net, e)| (net.parse().unwrap(), e))
            .collect(),
            tables: [
                (0, to_pop0),
                (1, to_pop3),
                (2, PolicyTable::default()),
                (3, to_pop1),
                (4, to_pop2),
            ]
            .into(),
            pops: [
                (0, pop(PEER0, 0)),
                (1, pop(BB0, 0)),
                (2, pop(BB0, 0)),
                (3, pop(BB0, pop_flags::ENCAP_IPIP)),
            ]
            .into(),
            settings: Settings {
                default_action: default_action::DROP,
                backbone_table: 3,
                transit_table: 4,
                ..Settings::default()
            },
            locals: ["198.51.100.254".parse().unwrap()].into(),
        }
    }

    fn outcome_of(frame: &[u8], ingress: u32) -> (String, &'static str) {
        let v = expect(&model(), frame, ingress);
        (v.outcome(), v.why)
    }

    fn is(frame: &[u8], ingress: u32, want: &str) {
        let (got, why) = outcome_of(frame, ingress);
        assert_eq!(got, want, "{why}: {frame:02x?}");
    }

    /// The IPv4 total length (checksum fixed) or IPv6 payload length of
    /// `frame` set to `n`, the frame padded with zeros to 60 bytes.
    fn short(frame: &[u8], n: u16) -> Vec<u8> {
        let mut f = frame.to_vec();
        if f[12..14] == [0x08, 0x00] {
            f[16..18].copy_from_slice(&n.to_be_bytes());
            set_ipv4_checksum(&mut f[14..34]);
        } else {
            f[18..20].copy_from_slice(&n.to_be_bytes());
        }
        f.resize(f.len().max(60), 0);
        f
    }

    #[test]
    fn forwarding_by_preference_and_direction() {
        let toward = Pkt::udp("203.0.113.9", "192.0.2.10").build();
        is(&toward, BB0, "redirect/policy → PoP 0");
        // By source on a peering port: the internet prefix.
        is(&toward, PEER0, "redirect/transit → PoP 2");
        let from = Pkt::udp("192.0.2.10", "198.18.0.1").build();
        is(&from, PEER0, "redirect/backbone → PoP 1");
        is(&from, PEER1, "drop/protection");
        is(&from, BB0, "drop/unregistered");
        is(&from, 99, "pass/unknown_port");
        let internet = Pkt::udp("203.0.113.9", "198.18.0.1").build();
        is(&internet, PEER1, "redirect/transit → PoP 2");
        let back_out = Pkt::udp("198.18.0.1", "192.0.2.10").build();
        is(&back_out, BB0, "redirect/policy → PoP 0");
        let six = Pkt::udp("2001:db8:1::1", "2001:db8:c::1").build();
        is(&six, BB0, "redirect/policy → PoP 0");
        let tunnel_v4_only = Pkt::udp("2001:db8:1::1", "2001:db8:e::1").build();
        is(&tunnel_v4_only, BB0, "pass/no_next_hop");
        let empty = Pkt::udp("203.0.113.9", "198.51.100.1").build();
        assert_eq!(outcome_of(&empty, BB0).1, "empty selection slot");
        let no_table = Pkt::udp("203.0.113.9", "198.51.100.200").build();
        assert_eq!(outcome_of(&no_table, BB0).1, "no such selection table");
        let ttl1 = Pkt::udp("203.0.113.9", "192.0.2.10").with(|p| p.ttl = 1);
        is(&ttl1.build(), BB0, "pass/ttl_exceeded");
    }

    #[test]
    fn ports_and_the_icmpv6_type_come_only_from_the_datagram() {
        let v4 = Pkt::udp("203.0.113.9", "192.0.2.10").build();
        assert_eq!(
            outcome_of(&short(&v4, 22), BB0),
            (
                "pass/malformed".into(),
                "IPv4 ports only in the Ethernet padding"
            )
        );
        is(&short(&v4, 24), BB0, "redirect/policy → PoP 0");
        let mut no_padding = short(&v4, 22);
        no_padding.truncate(14 + 22);
        assert_eq!(
            outcome_of(&no_padding, BB0).1,
            "IPv4 datagram and frame end before the ports"
        );
        let tcp6 = Pkt::udp("2001:db8:1::1", "2001:db8:c::1")
            .with(|p| p.l4 = L4::Tcp { sport: 1, dport: 2 })
            .build();
        is(&short(&tcp6, 2), BB0, "pass/malformed");
        is(&short(&tcp6, 4), BB0, "redirect/policy → PoP 0");
        let ns = Pkt::udp("2001:db8:1::1", "2001:db8:c::1")
            .with(|p| p.l4 = L4::Icmp { ty: 135 })
            .build();
        assert_eq!(
            outcome_of(&short(&ns, 0), BB0),
            (
                "pass/malformed".into(),
                "ICMPv6 type only in the Ethernet padding"
            )
        );
        is(&short(&ns, 1), BB0, "pass/control");
        // Control and local are decided before the ports are needed.
        let local = Pkt::udp("203.0.113.9", "198.51.100.254").build();
        is(&short(&local, 22), BB0, "pass/local");
        let multicast = Pkt::udp("2001:db8:1::1", "ff02::1")
            .with(|p| p.l4 = L4::Icmp { ty: 135 })
            .build();
        is(&short(&multicast, 0), BB0, "pass/control");
    }

    #[test]
    fn what_goes_to_the_kernel() {
        let v4 = Pkt::udp("203.0.113.9", "192.0.2.10");
        // Options win over the rest of the IPv4 checks.
        let mut options = v4.with(|p| p.ipv4_options = vec![1; 4]).build();
        is(&options, BB0, "pass/ipv4_options");
        options[24] ^= 0xff; // checksum wrong
        is(&options, BB0, "pass/ipv4_options");
        options.truncate(14 + 22); // options cut short
        is(&options, BB0, "pass/ipv4_options");
        let mut bad_sum = v4.build();
        bad_sum[24] ^= 0xff;
        is(&bad_sum, BB0, "pass/malformed");
        let mut ihl4 = v4.build();
        ihl4[14] = 0x44;
        is(&ihl4, BB0, "pass/malformed");
        for dst in ["224.0.0.5", "240.0.0.1", "255.255.255.255"] {
            is(
                &v4.with(|p| p.dst = dst.parse().unwrap()).build(),
                BB0,
                "pass/control",
            );
        }
        is(
            &v4.with(|p| p.dst = "223.255.255.255".parse().unwrap())
                .build(),
            BB0,
            "drop/unregistered",
        );
        let fragment = v4.with(|p| p.more_fragments = true).build();
        is(&fragment, BB0, "pass/fragment");
        is(
            &v4.with(|p| p.vlans = vec![1, 2]).build(),
            BB0,
            "redirect/policy → PoP 0",
        );
        is(
            &v4.with(|p| p.vlans = vec![1, 2, 3]).build(),
            BB0,
            "pass/not_ip",
        );
        let tagged = v4.with(|p| p.vlans = vec![1]).build();
        is(&tagged[..16], BB0, "pass/malformed");
        let v6 = Pkt::udp("2001:db8:1::1", "2001:db8:c::1");
        is(
            &v6.with(|p| p.v6_ext = Some(44)).build(),
            BB0,
            "pass/fragment",
        );
        is(
            &v6.with(|p| p.v6_ext = Some(60)).build(),
            BB0,
            "pass/ipv6_extension",
        );
        let link_local = v6.with(|p| p.src = "fe80::1".parse().unwrap()).build();
        is(&link_local, BB0, "pass/control");
        let mut lying = v6.build();
        lying[19] = lying[19].wrapping_add(1);
        is(&lying, BB0, "pass/malformed");
    }
}
