//! A synthetic BMP sender's messages: what the tests, the benchmark and
//! the fuzz target's seeds feed edged. The BGP UPDATE inside is encoded by
//! bgpkit-parser; only the BMP framing (RFC 7854 section 4) is written here.

use std::net::IpAddr;

use bgpkit_parser::models::{
    AsPath, AsnLength, AttributeValue, Attributes, BgpMessage, BgpUpdateMessage, NetworkPrefix,
    Nlri, Origin,
};
use ipnet::IpNet;

use super::bmp::VERSION;

/// BMP message types (RFC 7854 section 4.1).
mod kind {
    pub const ROUTE_MONITORING: u8 = 0;
    pub const PEER_DOWN: u8 = 2;
    pub const INITIATION: u8 = 4;
    pub const TERMINATION: u8 = 5;
}

/// The monitored peer a message is about.
#[derive(Debug, Clone, Copy)]
pub struct SynthPeer {
    pub address: IpAddr,
    pub asn: u32,
    pub post_policy: bool,
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + body.len());
    out.push(VERSION);
    out.extend_from_slice(&((6 + body.len()) as u32).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

fn per_peer(p: &SynthPeer) -> Vec<u8> {
    let mut h = Vec::with_capacity(42);
    h.push(0); // global instance peer
    let mut flags = 0u8;
    if p.address.is_ipv6() {
        flags |= 0x80;
    }
    if p.post_policy {
        flags |= 0x40;
    }
    h.push(flags);
    h.extend_from_slice(&0u64.to_be_bytes());
    match p.address {
        IpAddr::V4(a) => {
            h.extend_from_slice(&[0; 12]);
            h.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => h.extend_from_slice(&a.octets()),
    }
    h.extend_from_slice(&p.asn.to_be_bytes());
    h.extend_from_slice(&[192, 0, 2, 1]); // BGP identifier
    h.extend_from_slice(&[0; 8]); // timestamp: unavailable
    h
}

/// Initiation with sysName.
pub fn initiation(sys_name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&2u16.to_be_bytes());
    body.extend_from_slice(&(sys_name.len() as u16).to_be_bytes());
    body.extend_from_slice(sys_name.as_bytes());
    message(kind::INITIATION, &body)
}

/// Termination: administratively closed.
pub fn termination() -> Vec<u8> {
    message(kind::TERMINATION, &[0, 1, 0, 2, 0, 0])
}

/// Peer Down: the remote system closed the session without a notification.
pub fn peer_down(p: &SynthPeer) -> Vec<u8> {
    let mut body = per_peer(p);
    body.push(4);
    message(kind::PEER_DOWN, &body)
}

fn update(p: &SynthPeer, u: BgpUpdateMessage) -> Vec<u8> {
    let bgp = BgpMessage::Update(u)
        .encode(AsnLength::Bits32)
        .expect("an UPDATE of a few prefixes encodes");
    let mut body = per_peer(p);
    body.extend_from_slice(&bgp);
    message(kind::ROUTE_MONITORING, &body)
}

/// Route Monitoring: `prefixes` (one family) announced with `as_path`.
pub fn announce(p: &SynthPeer, prefixes: &[IpNet], as_path: &[u32]) -> Vec<u8> {
    let mut attrs = vec![
        AttributeValue::Origin(Origin::IGP),
        AttributeValue::AsPath(AsPath::from_sequence(as_path)),
    ];
    let nlri: Vec<NetworkPrefix> = prefixes
        .iter()
        .map(|n| NetworkPrefix::new(*n, None))
        .collect();
    let v6 = prefixes.first().is_some_and(|n| matches!(n, IpNet::V6(_)));
    let announced = if v6 {
        let mut reach = Nlri::new_reachable(nlri[0], Some("2001:db8::1".parse().unwrap()));
        reach.prefixes = nlri;
        attrs.push(AttributeValue::MpReachNlri(reach));
        Vec::new()
    } else {
        attrs.push(AttributeValue::NextHop("192.0.2.1".parse().unwrap()));
        nlri
    };
    update(
        p,
        BgpUpdateMessage {
            withdrawn_prefixes: Vec::new(),
            attributes: Attributes::from_iter(attrs),
            announced_prefixes: announced,
        },
    )
}

/// Route Monitoring: `prefixes` (one family) withdrawn.
pub fn withdraw(p: &SynthPeer, prefixes: &[IpNet]) -> Vec<u8> {
    let nlri: Vec<NetworkPrefix> = prefixes
        .iter()
        .map(|n| NetworkPrefix::new(*n, None))
        .collect();
    let v6 = prefixes.first().is_some_and(|n| matches!(n, IpNet::V6(_)));
    let (withdrawn, attrs) = if v6 {
        let mut unreach = Nlri::new_unreachable(nlri[0]);
        unreach.prefixes = nlri;
        (Vec::new(), vec![AttributeValue::MpUnreachNlri(unreach)])
    } else {
        (nlri, Vec::new())
    };
    update(
        p,
        BgpUpdateMessage {
            withdrawn_prefixes: withdrawn,
            attributes: Attributes::from_iter(attrs),
            announced_prefixes: Vec::new(),
        },
    )
}

/// Route Monitoring: End-of-RIB for IPv4 unicast (an empty UPDATE).
pub fn end_of_rib(p: &SynthPeer) -> Vec<u8> {
    update(
        p,
        BgpUpdateMessage {
            withdrawn_prefixes: Vec::new(),
            attributes: Attributes::default(),
            announced_prefixes: Vec::new(),
        },
    )
}
