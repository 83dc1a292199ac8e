//! BMP (RFC 7854) messages to changes of the view, decoded with
//! bgpkit-parser: Route Monitoring (pre- and post-policy Adj-RIB-In,
//! Loc-RIB), Peer Up / Down, Initiation, Termination. Pure: a frame's
//! bytes in, [`Action`]s out; the session layer applies them.

use std::{net::IpAddr, sync::Arc};

use bgpkit_parser::{
    Elementor,
    models::{AsPathSegment, AttributeValue, BgpMessage, ElemType},
    parser::bmp::{
        messages::{
            BmpMessageBody, BmpPeerType, InitiationTlvType, PerPeerFlags, TerminationTlvValue,
        },
        parse_bmp_msg,
    },
};
use bytes::Bytes;
use ipnet::IpNet;

use super::engine::{Attrs, Engine, Peer, Rib};

/// The BMP version edged speaks (RFC 7854).
pub const VERSION: u8 = 3;
/// The common header: version, message length (u32), type.
pub const HEADER_LEN: usize = 6;
/// The largest message accepted: a BGP message is at most 65,535 bytes
/// (RFC 8654) plus the BMP headers; anything longer is malformed.
pub const MAX_MESSAGE: usize = 1 << 17;

/// Why a session is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BmpError {
    #[error("BMP version {0} (edged speaks version 3)")]
    Version(u8),
    #[error("BMP message length {0} outside {min}-{max}", min = HEADER_LEN, max = MAX_MESSAGE)]
    Length(u32),
    #[error("malformed BMP message (type {kind}): {why}")]
    Malformed { kind: u8, why: String },
}

/// The length of the message whose common header is `header`.
pub fn frame_len(header: &[u8; HEADER_LEN]) -> Result<usize, BmpError> {
    if header[0] != VERSION {
        return Err(BmpError::Version(header[0]));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if (len as usize) < HEADER_LEN || len as usize > MAX_MESSAGE {
        return Err(BmpError::Length(len));
    }
    Ok(len as usize)
}

/// One change a message makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Announce {
        peer: Peer,
        rib: Rib,
        prefixes: Vec<IpNet>,
        attrs: Arc<Attrs>,
    },
    Withdraw {
        peer: Peer,
        rib: Rib,
        prefixes: Vec<IpNet>,
    },
    /// Paths whose AS path holds the monitored router's own AS (a peer
    /// sent the router's own announcement back): BGP loop detection
    /// rejects them, but a pre-policy Adj-RIB-In keeps them and the
    /// router never withdraws them over BMP. Not kept: each withdraws
    /// that peer's path for the prefix.
    Echoed {
        peer: Peer,
        rib: Rib,
        prefixes: Vec<IpNet>,
    },
    EndOfRib {
        peer: Peer,
        v6: bool,
    },
    PeerUp {
        peer: Peer,
        /// The monitored router's AS on this session (the OPEN it sent).
        local_asn: Option<u32>,
    },
    PeerDown {
        peer: Peer,
        reason: String,
    },
    /// The router names itself (Initiation's sysName).
    Initiation {
        sys_name: Option<String>,
    },
    /// The router ends the session.
    Termination {
        reason: String,
    },
    /// Statistics, route mirroring, Adj-RIB-Out: not used.
    Ignored,
    /// A Peer Up whose OPEN messages do not decode: FRR 8 sends an empty
    /// OPEN (19 bytes) when it no longer has the one it received ("bmp:
    /// missing RX OPEN message"). edge uses nothing of a Peer Up but its
    /// log line, so it is logged and the session goes on.
    UnreadablePeerUp {
        why: String,
    },
}

/// BMP message type Peer Up Notification (RFC 7854 section 4.1).
const PEER_UP: u8 = 3;

/// Decodes one whole message (common header included) from `router`.
pub fn decode(router: IpAddr, frame: &[u8]) -> Result<Vec<Action>, BmpError> {
    let kind = frame.get(5).copied().unwrap_or(0);
    let malformed = |why: String| BmpError::Malformed { kind, why };
    let mut data = Bytes::copy_from_slice(frame);
    let msg = match parse_bmp_msg(&mut data) {
        Ok(m) => m,
        Err(e)
            if kind == PEER_UP && frame_len(&header_of(frame)).is_ok_and(|l| l == frame.len()) =>
        {
            return Ok(vec![Action::UnreadablePeerUp { why: e.to_string() }]);
        }
        Err(e) => return Err(malformed(e.to_string())),
    };
    if !data.is_empty() {
        return Err(malformed(format!("{} bytes past the message", data.len())));
    }
    let peer_of = |h: &bgpkit_parser::parser::bmp::messages::BmpPerPeerHeader| Peer {
        router,
        address: h.peer_ip,
        asn: u32::from(h.peer_asn),
        distinguisher: h.peer_distinguisher,
    };
    let header = msg.per_peer_header.as_ref();
    Ok(match msg.message_body {
        BmpMessageBody::RouteMonitoring(rm) => {
            let Some(h) = header else {
                return Err(malformed(
                    "route monitoring without a per-peer header".into(),
                ));
            };
            let rib = match (h.peer_type, h.peer_flags) {
                (BmpPeerType::LocalRib, _) => Rib::LocRib,
                (_, PerPeerFlags::PeerFlags(f)) if f.is_adj_rib_out() => {
                    return Ok(vec![Action::Ignored]);
                }
                (_, PerPeerFlags::PeerFlags(f)) if f.is_post_policy() => Rib::PostPolicy,
                _ => Rib::PrePolicy,
            };
            let peer = peer_of(h);
            let BgpMessage::Update(update) = rm.bgp_message else {
                return Ok(vec![Action::Ignored]);
            };
            if update.is_end_of_rib() {
                let v6 = update.attributes.iter().any(|a| {
                    matches!(a, AttributeValue::MpUnreachNlri(n) if n.afi == bgpkit_parser::models::Afi::Ipv6)
                });
                return Ok(vec![Action::EndOfRib { peer, v6 }]);
            }
            route_monitoring(peer, rib, update, h, rib != Rib::LocRib)
        }
        BmpMessageBody::PeerUpNotification(up) => match header {
            Some(h) => vec![Action::PeerUp {
                peer: peer_of(h),
                local_asn: open_asn(&up.sent_open),
            }],
            None => return Err(malformed("peer up without a per-peer header".into())),
        },
        BmpMessageBody::PeerDownNotification(d) => match header {
            Some(h) => vec![Action::PeerDown {
                peer: peer_of(h),
                reason: format!("{:?}", d.reason),
            }],
            None => return Err(malformed("peer down without a per-peer header".into())),
        },
        BmpMessageBody::InitiationMessage(i) => vec![Action::Initiation {
            sys_name: i
                .tlvs
                .iter()
                .find(|t| t.info_type == InitiationTlvType::SysName)
                .map(|t| t.info.clone()),
        }],
        BmpMessageBody::TerminationMessage(t) => vec![Action::Termination {
            reason: t
                .tlvs
                .iter()
                .map(|t| match &t.info_value {
                    TerminationTlvValue::String(s) => s.clone(),
                    TerminationTlvValue::Reason(r) => format!("{r:?}"),
                })
                .collect::<Vec<_>>()
                .join("; "),
        }],
        BmpMessageBody::StatsReport(_) | BmpMessageBody::RouteMirroring(_) => {
            vec![Action::Ignored]
        }
    })
}

/// The AS of an OPEN message: its 4-octet AS capability (RFC 6793),
/// else its 2-octet My AS unless AS_TRANS.
fn open_asn(open: &BgpMessage) -> Option<u32> {
    use bgpkit_parser::models::{CapabilityValue, ParamValue};
    let BgpMessage::Open(o) = open else {
        return None;
    };
    let four = o.opt_params.iter().find_map(|p| match &p.param_value {
        ParamValue::Capacities(caps) => caps.iter().find_map(|c| match &c.value {
            CapabilityValue::FourOctetAs(f) => Some(f.asn),
            _ => None,
        }),
        ParamValue::Raw(_) => None,
    });
    let two = u32::from(o.asn);
    four.or((two != 0 && two != 23456).then_some(two))
}

fn header_of(frame: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let n = frame.len().min(HEADER_LEN);
    h[..n].copy_from_slice(&frame[..n]);
    h
}

fn route_monitoring(
    peer: Peer,
    rib: Rib,
    update: bgpkit_parser::models::BgpUpdateMessage,
    h: &bgpkit_parser::parser::bmp::messages::BmpPerPeerHeader,
    adj_rib_in: bool,
) -> Vec<Action> {
    let mut announced = Vec::new();
    let mut withdrawn = Vec::new();
    let mut attrs: Option<Arc<Attrs>> = None;
    let mut echoed = false;
    for elem in Elementor::bgp_update_to_elems_iter(update, h.timestamp, &h.peer_ip, &h.peer_asn) {
        match elem.elem_type {
            ElemType::WITHDRAW => withdrawn.push(elem.prefix.prefix),
            ElemType::ANNOUNCE => {
                if attrs.is_none() {
                    let mut a = attrs_of(&elem);
                    if adj_rib_in && let Some(own) = strip_own_as(&mut a, peer.asn) {
                        echoed = a.as_path.contains(&own);
                    }
                    attrs = Some(Arc::new(a));
                }
                announced.push(elem.prefix.prefix);
            }
        }
    }
    let mut out = Vec::new();
    if !withdrawn.is_empty() {
        out.push(Action::Withdraw {
            peer: peer.clone(),
            rib,
            prefixes: withdrawn,
        });
    }
    if attrs.is_some() && echoed {
        out.push(Action::Echoed {
            peer,
            rib,
            prefixes: announced,
        });
    } else if let Some(attrs) = attrs {
        out.push(Action::Announce {
            peer,
            rib,
            prefixes: announced,
            attrs,
        });
    }
    out
}

/// FRR 8's BMP Route Monitoring (pre- and post-policy) encodes the path
/// as the router would send it on, its own AS prepended: an Adj-RIB-In
/// path from an eBGP peer starts with the peer's AS, so a path whose
/// first AS is not the peer's and whose second is has that extra AS in
/// front, and it is dropped (a route server's path, which does not start
/// with its AS, is left alone unless its second AS is the server's).
/// The AS dropped (the router's own) is returned.
fn strip_own_as(a: &mut Attrs, peer_asn: u32) -> Option<u32> {
    if a.as_path.len() >= 2 && a.as_path[0] != peer_asn && a.as_path[1] == peer_asn {
        a.hops = a.hops.saturating_sub(1);
        return Some(a.as_path.remove(0));
    }
    None
}

fn attrs_of(elem: &bgpkit_parser::BgpElem) -> Attrs {
    let mut as_path = Vec::new();
    let mut hops = 0u32;
    if let Some(p) = &elem.as_path {
        for seg in p.iter_segments() {
            match seg {
                AsPathSegment::AsSequence(v) => {
                    as_path.extend(v.iter().map(|a| u32::from(*a)));
                    hops += v.len() as u32;
                }
                AsPathSegment::AsSet(v) => {
                    as_path.extend(v.iter().map(|a| u32::from(*a)));
                    hops += 1;
                }
                // Confederation segments do not count (RFC 5065).
                AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
            }
        }
    }
    let origin_asn = match elem.origin_asns.as_deref() {
        Some([one]) => Some(u32::from(*one)),
        _ => None,
    };
    Attrs {
        as_path,
        origin_asn,
        origin: elem
            .origin
            .map(|o| o.to_string().to_lowercase())
            .unwrap_or_default(),
        communities: elem
            .communities
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect(),
        hops,
    }
}

/// What a session learned of its router, and how its actions apply.
#[derive(Debug)]
pub struct Session {
    pub router: IpAddr,
    pub sys_name: Option<String>,
    /// It sent a route (announcement or withdrawal) or a Peer Up: when
    /// it ends, it may leave stale routes.
    pub routes: bool,
    /// The router's own AS per peer session, from its Peer Up: a path
    /// holding it is an echo of the router's own route.
    pub local_asns: std::collections::HashMap<Peer, u32>,
}

/// What became of a session after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// The router sent Termination.
    Terminated(String),
}

impl Session {
    pub fn new(router: IpAddr) -> Self {
        Self {
            router,
            sys_name: None,
            routes: false,
            local_asns: std::collections::HashMap::new(),
        }
    }

    /// The router, named as it named itself.
    pub fn name(&self) -> String {
        match &self.sys_name {
            Some(n) => format!("{} ({n})", self.router),
            None => self.router.to_string(),
        }
    }

    /// Applies a message's actions to the view.
    pub fn apply(&mut self, actions: Vec<Action>, engine: &mut Engine, now: f64) -> Outcome {
        engine.totals.messages += 1;
        let mut outcome = Outcome::Continue;
        for a in actions {
            if matches!(
                a,
                Action::Announce { .. }
                    | Action::Withdraw { .. }
                    | Action::Echoed { .. }
                    | Action::EndOfRib { .. }
                    | Action::PeerUp { .. }
                    | Action::UnreadablePeerUp { .. }
            ) {
                self.routes = true;
            }
            match a {
                Action::Announce {
                    peer,
                    rib,
                    prefixes,
                    attrs,
                } => {
                    let echoed = rib != Rib::LocRib
                        && self
                            .local_asns
                            .get(&peer)
                            .is_some_and(|own| attrs.as_path.contains(own));
                    for p in prefixes {
                        if echoed {
                            engine.echoed(&peer, rib, p, now);
                        } else {
                            engine.announce(&peer, rib, p, attrs.clone(), now);
                        }
                    }
                }
                Action::Withdraw {
                    peer,
                    rib,
                    prefixes,
                } => {
                    for p in prefixes {
                        engine.withdraw(&peer, rib, p, now);
                    }
                }
                Action::Echoed {
                    peer,
                    rib,
                    prefixes,
                } => {
                    for p in prefixes {
                        engine.echoed(&peer, rib, p, now);
                    }
                }
                Action::EndOfRib { peer, v6 } => engine.end_of_rib(&peer, v6, now),
                Action::PeerUp { peer, local_asn } => {
                    log::info!("bmp {}: {peer} up", self.name());
                    match local_asn {
                        Some(a) => self.local_asns.insert(peer, a),
                        None => self.local_asns.remove(&peer),
                    };
                }
                Action::PeerDown { peer, reason } => {
                    log::info!(
                        "bmp {}: {peer} down ({reason}); its routes are withdrawn",
                        self.name()
                    );
                    engine.peer_down(&peer, now);
                }
                Action::Initiation { sys_name } => {
                    self.sys_name = sys_name;
                    log::info!("bmp {}: initiated", self.name());
                }
                Action::Termination { reason } => outcome = Outcome::Terminated(reason),
                Action::UnreadablePeerUp { why } => log::warn!(
                    "bmp {}: a Peer Up whose OPEN messages do not decode ({why}): ignored, the session goes on (edge needs nothing from it)",
                    self.name()
                ),
                Action::Ignored => {}
            }
        }
        outcome
    }
}
