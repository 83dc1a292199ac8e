//! The engine and the BMP decoding, without root: messages built by
//! [`synth`], decoded, applied, and the anomalies checked.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    bmp::{self, Action, BmpError, Outcome, Session},
    engine::*,
    synth::{self, SynthPeer},
};
use crate::plan::PlannedRegistration;

const ROUTER: &str = "127.0.0.1";
const CUSTOMER: u32 = 64500;
const UPSTREAM: u32 = 64501;
const EDGE_PEER: u32 = 64496;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn router() -> IpAddr {
    ROUTER.parse().unwrap()
}

fn contoso() -> PlannedRegistration {
    PlannedRegistration {
        name: "contoso".into(),
        origin_asns: vec![CUSTOMER],
        upstream_asns: vec![EDGE_PEER, UPSTREAM],
        rtt_p90: None,
        hold_on_hijack: vec![],
        continent: None,
        scope: crate::plan::Scope::Continent,
    }
}

fn engine() -> Engine {
    let mut e = Engine::default();
    e.configure(
        &[contoso()],
        [
            (net("192.0.2.0/24"), "contoso"),
            (net("2001:db8:c::/48"), "contoso"),
            (net("198.51.100.0/24"), "unmonitored"),
        ],
        0.0,
    );
    e
}

fn peer(addr: &str, asn: u32) -> SynthPeer {
    SynthPeer {
        address: addr.parse().unwrap(),
        asn,
        post_policy: false,
    }
}

/// Feeds one synthetic message through decode and apply.
fn feed(e: &mut Engine, s: &mut Session, msg: &[u8], t: f64) -> Outcome {
    let actions = bmp::decode(s.router, msg).expect("a synthetic message decodes");
    s.apply(actions, e, t)
}

fn active(e: &Engine) -> Vec<(Kind, Option<IpNet>, Option<u32>)> {
    e.anomalies(None)
        .0
        .iter()
        .map(|a| (a.kind, a.prefix, a.asn))
        .collect()
}

#[test]
fn the_legitimate_path_raises_nothing() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    feed(&mut e, &mut s, &synth::initiation("edge-frr"), 1.0);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(
            &p,
            &[net("2001:db8:c::/48")],
            &[EDGE_PEER, UPSTREAM, CUSTOMER],
        ),
        1.0,
    );
    // A deaggregate by the customer itself is fine.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.128/25")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    assert_eq!(active(&e), []);
    assert!(e.take_events().is_empty());
    assert_eq!(s.sys_name.as_deref(), Some("edge-frr"));
    let rows = e.routes(net("192.0.2.0/24"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].attrs.as_path, [EDGE_PEER, CUSTOMER]);
    assert_eq!(rows[0].attrs.origin_asn, Some(CUSTOMER));
    assert_eq!(rows[0].attrs.origin, "igp");
    assert_eq!(rows[0].attrs.hops, 2);
    assert_eq!(rows[0].rib, Rib::PrePolicy);
    // Unregistered prefixes are not kept.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("203.0.113.0/24")], &[EDGE_PEER, 64666]),
        1.0,
    );
    assert_eq!(e.path_count(), 3);
    let stats = &e.registration_stats()["contoso"];
    assert_eq!((stats.visible, stats.prefixes), (2, 2));
    assert_eq!(stats.best_hops, Some(2));
}

#[test]
fn hijacks_and_leaks_are_raised_and_cleared_on_withdrawal() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    let q = peer("203.0.113.2", 64502);
    // Origin hijack: the registered prefix from another origin.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]),
        2.0,
    );
    // Sub-prefix hijack.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/25")], &[64502, 64666]),
        3.0,
    );
    // Leak: the customer's origin, through an AS not allowed.
    let l = peer("203.0.113.3", 64503);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&l, &[net("2001:db8:c::/48")], &[64503, 64510, CUSTOMER]),
        4.0,
    );
    assert_eq!(
        active(&e),
        [
            (Kind::OriginHijack, Some(net("192.0.2.0/24")), Some(64666)),
            (
                Kind::SubPrefixHijack,
                Some(net("192.0.2.0/25")),
                Some(64666)
            ),
            (Kind::RouteLeak, Some(net("2001:db8:c::/48")), Some(64503)),
        ]
    );
    let events = e.take_events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.raised && e.registration == "contoso")
    );
    assert!(
        events[0]
            .message
            .contains("origin hijack: 192.0.2.0/24 (contoso) announced with origin AS64666"),
        "{}",
        events[0].message
    );
    assert!(
        events[1]
            .message
            .contains("a more-specific of 192.0.2.0/24"),
        "{}",
        events[1].message
    );
    let (a, _) = e.anomalies(None);
    assert_eq!(a[0].peers.len(), 1);
    assert_eq!(a[0].since, 2.0);
    // The same hijack seen through a second peer: one anomaly, two peers.
    let r = peer("203.0.113.4", EDGE_PEER);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&r, &[net("192.0.2.0/24")], &[EDGE_PEER, 64502, 64666]),
        5.0,
    );
    assert_eq!(e.anomalies(None).0[0].peers.len(), 2);
    assert!(e.take_events().is_empty());
    // --since
    assert_eq!(e.anomalies(Some(3.5)).0.len(), 1);
    // Withdrawals clear them.
    feed(
        &mut e,
        &mut s,
        &synth::withdraw(&q, &[net("192.0.2.0/24"), net("192.0.2.0/25")]),
        6.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::withdraw(&r, &[net("192.0.2.0/24")]),
        6.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::withdraw(&l, &[net("2001:db8:c::/48")]),
        7.0,
    );
    let events = e.take_events();
    // Three cleared, and the IPv6 prefix (seen once) is now invisible.
    let cleared: Vec<Kind> = events
        .iter()
        .filter(|e| !e.raised)
        .map(|e| e.kind)
        .collect();
    // The origin hijack clears when its second peer withdraws too.
    assert_eq!(
        cleared,
        [Kind::SubPrefixHijack, Kind::OriginHijack, Kind::RouteLeak]
    );
    assert_eq!(
        active(&e),
        [(Kind::VisibilityLoss, Some(net("2001:db8:c::/48")), None)]
    );
    let (_, gone) = e.anomalies(None);
    assert_eq!(gone.len(), 3);
    assert_eq!(gone[0].cleared, Some(6.0));
    let stats = &e.registration_stats()["contoso"];
    assert_eq!(stats.raised[&Kind::OriginHijack], 1);
    assert_eq!(stats.active[&Kind::VisibilityLoss], 1);
}

#[test]
fn visibility_is_lost_and_returns() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    // Never seen: no loss reported.
    e.sweep(0.0);
    assert_eq!(active(&e), []);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::withdraw(&p, &[net("192.0.2.0/24")]),
        2.0,
    );
    assert_eq!(
        active(&e),
        [(Kind::VisibilityLoss, Some(net("192.0.2.0/24")), None)]
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        3.0,
    );
    assert_eq!(active(&e), []);
    let events = e.take_events();
    assert_eq!(events.len(), 2);
    assert!(events[0].raised && events[0].message.contains("no longer announced"));
    assert!(!events[1].raised);
}

#[test]
fn a_peer_down_resets_that_peer_only() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    let q = peer("203.0.113.2", 64502);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]),
        1.0,
    );
    assert_eq!(active(&e).len(), 1);
    feed(&mut e, &mut s, &synth::peer_down(&q), 2.0);
    assert_eq!(active(&e), []);
    assert_eq!(e.path_count(), 1);
    assert_eq!(e.routes(net("192.0.2.0/24"))[0].peer.asn, EDGE_PEER);
}

#[test]
fn a_bmp_session_reset_keeps_anomalies_until_the_router_resends() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let q = peer("203.0.113.2", 64502);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]),
        1.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/25")], &[64502, 64666]),
        1.0,
    );
    e.take_events();
    assert_eq!(
        feed(&mut e, &mut s, &synth::termination(), 2.0),
        Outcome::Terminated("AdministrativelyClosed".into())
    );
    e.session_down(router(), 2.0);
    // Kept, stale; nothing cleared.
    assert_eq!(active(&e).len(), 2);
    assert!(e.routes(net("192.0.2.0/24")).iter().all(|r| r.stale));
    // A new session sends one of them again, then End-of-RIB: the other
    // (withdrawn while the session was down) goes.
    let mut s2 = Session::new(router());
    feed(
        &mut e,
        &mut s2,
        &synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]),
        3.0,
    );
    assert!(e.take_events().is_empty());
    feed(&mut e, &mut s2, &synth::end_of_rib(&q), 4.0);
    assert_eq!(
        active(&e),
        [(Kind::OriginHijack, Some(net("192.0.2.0/24")), Some(64666))]
    );
    // It kept its first time.
    assert_eq!(e.anomalies(None).0[0].since, 1.0);
    assert!(!e.routes(net("192.0.2.0/24"))[0].stale);
    // A router that never comes back: its paths go after the hold.
    e.session_down(router(), 5.0);
    e.sweep(5.0 + STALE_HOLD - 1.0);
    assert_eq!(active(&e).len(), 1);
    assert_eq!(e.totals.paths, 1);
    e.sweep(5.0 + STALE_HOLD);
    assert_eq!(e.path_count(), 0);
    // The totals follow the expiry (no other message needed).
    assert_eq!(e.totals.paths, 0);
    assert_eq!(
        active(&e),
        [(Kind::VisibilityLoss, Some(net("192.0.2.0/24")), None)]
    );
}

/// A peer sends the monitored router's own announcement back: the
/// pre-policy Adj-RIB-In keeps it (FRR reports it, its own AS prepended
/// in front of the peer's path) though BGP rejects it, and no withdrawal
/// ever comes. It is not kept: it raises nothing, and it withdraws the
/// real path it replaces.
#[test]
fn an_echoed_path_is_not_kept() {
    const OWN: u32 = 64510;
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    // The router's own AS prepended (as FRR 8 does) to the echo of its
    // own announcement: OWN, peer, OWN, the customer.
    let echo = [OWN, EDGE_PEER, OWN, CUSTOMER];
    let decoded = bmp::decode(
        router(),
        &synth::announce(&p, &[net("192.0.2.0/24")], &echo),
    )
    .unwrap();
    assert!(
        matches!(decoded.as_slice(), [Action::Echoed { prefixes, .. }] if prefixes == &[net("192.0.2.0/24")]),
        "{decoded:?}"
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &echo),
        1.0,
    );
    assert_eq!(active(&e), []);
    assert!(e.take_events().is_empty());
    assert_eq!(e.path_count(), 0);
    assert_eq!((e.totals.echoed, e.totals.paths), (1, 0));
    // A real path (a hijack), then the peer's echo replaces it: it is
    // withdrawn, and the hijack clears.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, 64666]),
        2.0,
    );
    assert_eq!(
        active(&e),
        [(Kind::OriginHijack, Some(net("192.0.2.0/24")), Some(64666))]
    );
    e.take_events();
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &echo),
        3.0,
    );
    assert!(e.routes(net("192.0.2.0/24")).is_empty());
    assert_eq!((e.totals.echoed, e.totals.paths), (2, 0));
    let ev = e.take_events();
    assert!(
        ev.iter().any(|v| v.kind == Kind::OriginHijack && !v.raised),
        "{ev:?}"
    );
    // A path with the peer's own AS prepended but no echo is kept.
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[OWN, EDGE_PEER, CUSTOMER]),
        4.0,
    );
    let rows = e.routes(net("192.0.2.0/24"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].attrs.as_path, [EDGE_PEER, CUSTOMER]);
    assert_eq!(e.totals.echoed, 2);
    // A router that does not prepend its own AS: the Peer Up's sent
    // OPEN gave it; a path holding it is an echo too.
    s.local_asns.insert(
        Peer {
            router: router(),
            address: p.address,
            asn: EDGE_PEER,
            distinguisher: 0,
        },
        OWN,
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, OWN, CUSTOMER]),
        5.0,
    );
    assert!(e.routes(net("192.0.2.0/24")).is_empty());
    assert_eq!(e.totals.echoed, 3);
}

#[test]
fn as_hops_longer_than_usual() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let p = peer("203.0.113.1", EDGE_PEER);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        1.0,
    );
    feed(
        &mut e,
        &mut s,
        &synth::announce(
            &p,
            &[net("192.0.2.0/24")],
            &[EDGE_PEER, UPSTREAM, CUSTOMER, CUSTOMER],
        ),
        2.0,
    );
    assert_eq!(active(&e), [(Kind::AsHops, None, None)]);
    let (a, _) = e.anomalies(None);
    assert!(
        a[0].message.contains("4 AS hops, longer than its usual 2"),
        "{}",
        a[0].message
    );
    let stats = &e.registration_stats()["contoso"];
    assert_eq!((stats.best_hops, stats.shortest_hops), (Some(4), Some(2)));
    feed(
        &mut e,
        &mut s,
        &synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]),
        3.0,
    );
    assert_eq!(active(&e), []);
}

#[test]
fn a_reconfiguration_reclassifies_and_keeps_start_times() {
    let (mut e, mut s) = (engine(), Session::new(router()));
    let q = peer("203.0.113.2", 64502);
    feed(
        &mut e,
        &mut s,
        &synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]),
        1.0,
    );
    e.take_events();
    let regs = [contoso()];
    e.configure(&regs, [(net("192.0.2.0/24"), "contoso")], 5.0);
    assert!(e.take_events().is_empty());
    assert_eq!(e.anomalies(None).0[0].since, 1.0);
    // 64666 becomes an allowed origin: the hijack clears.
    let mut allowed = contoso();
    allowed.origin_asns.push(64666);
    allowed.upstream_asns.push(64502);
    e.configure(&[allowed], [(net("192.0.2.0/24"), "contoso")], 6.0);
    assert_eq!(active(&e), []);
    let events = e.take_events();
    assert_eq!(events.len(), 1);
    assert!(!events[0].raised);
    // The registration goes: its paths are no longer kept.
    e.configure(&[], [], 7.0);
    assert_eq!(e.path_count(), 0);
    assert!(e.take_events().is_empty());
}

#[test]
fn an_as_set_origin_is_a_hijack_and_an_empty_path_is_the_peers_own() {
    let mut e = engine();
    let router = router();
    let peer = Peer {
        router,
        address: "203.0.113.1".parse().unwrap(),
        asn: CUSTOMER,
        distinguisher: 0,
    };
    let attrs = |as_path: Vec<u32>, origin_asn| {
        std::sync::Arc::new(Attrs {
            hops: as_path.len() as u32,
            as_path,
            origin_asn,
            origin: "igp".into(),
            communities: Vec::new(),
        })
    };
    e.announce(
        &peer,
        Rib::PostPolicy,
        net("192.0.2.0/24"),
        attrs(vec![], None),
        1.0,
    );
    assert_eq!(active(&e), []);
    e.announce(
        &peer,
        Rib::PostPolicy,
        net("192.0.2.0/24"),
        attrs(vec![64502, CUSTOMER, 64666], None),
        2.0,
    );
    assert_eq!(
        active(&e),
        [(Kind::OriginHijack, Some(net("192.0.2.0/24")), None)]
    );
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let p = peer("203.0.113.1", EDGE_PEER);
    let good = synth::announce(&p, &[net("192.0.2.0/24")], &[EDGE_PEER, CUSTOMER]);
    let header: [u8; 6] = good[..6].try_into().unwrap();
    assert_eq!(bmp::frame_len(&header), Ok(good.len()));
    assert_eq!(
        bmp::frame_len(&[1, 0, 0, 0, 6, 0]),
        Err(BmpError::Version(1))
    );
    assert_eq!(
        bmp::frame_len(&[3, 0, 0, 0, 5, 0]),
        Err(BmpError::Length(5))
    );
    assert_eq!(
        bmp::frame_len(&[3, 1, 0, 0, 0, 0]),
        Err(BmpError::Length(1 << 24))
    );
    // Every truncation and a corrupted BGP marker: an error each.
    for n in 0..good.len() {
        assert!(
            bmp::decode(router(), &good[..n]).is_err(),
            "truncated at {n}"
        );
    }
    // Path attributes longer than the message.
    let mut bad = good.clone();
    bad[6 + 42 + 19 + 2] = 0xff;
    let r = bmp::decode(router(), &bad);
    assert!(
        matches!(r, Err(BmpError::Malformed { kind: 0, .. })),
        "{r:?}"
    );
    // Trailing bytes past the message's length.
    let mut long = good.clone();
    long.push(0);
    assert!(bmp::decode(router(), &long).is_err());
    // Peer Down decodes to its peer.
    let d = bmp::decode(router(), &synth::peer_down(&p)).unwrap();
    assert!(matches!(&d[..], [Action::PeerDown { peer, .. }] if peer.asn == EDGE_PEER));
}

/// A session from Debian's FRR 8.4 (bgpd -M bmp, pre- and post-policy),
/// captured: Initiation, a Peer Up with an empty received OPEN (FRR's
/// "missing RX OPEN"), a /25 announced (own AS prepended, as FRR does),
/// End-of-RIB, a /26.
#[test]
fn a_real_frr_session_decodes() {
    let data = include_bytes!("frr-8.4.bmp");
    let (mut e, mut s) = (engine(), Session::new(router()));
    let mut at = 0;
    let mut kinds = Vec::new();
    while at < data.len() {
        let header: [u8; 6] = data[at..at + 6].try_into().unwrap();
        let len = bmp::frame_len(&header).unwrap();
        let actions = bmp::decode(router(), &data[at..at + len]).unwrap();
        kinds.extend(actions.iter().map(|a| {
            format!("{a:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string()
        }));
        s.apply(actions, &mut e, 1.0);
        at += len;
    }
    assert_eq!(
        kinds,
        [
            "Initiation",
            "UnreadablePeerUp",
            "Announce",
            "Announce",
            "EndOfRib",
            "EndOfRib",
            "Announce",
            "Announce"
        ]
    );
    assert_eq!(s.sys_name.as_deref(), Some("edge"));
    let rows = e.routes(net("192.0.2.0/24"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.attrs.as_path == [CUSTOMER] && r.attrs.hops == 1 && r.anomaly.is_none()),
        "{rows:?}"
    );
    assert_eq!(active(&e), []);
}

/// The listener end to end on loopback: a session's first messages (sent
/// at once, so they share the ingest batch with its opening) are applied,
/// events come out, and a malformed message closes that session only.
#[test]
fn the_listener_ingests_and_closes_only_a_malformed_session() {
    use std::{
        io::{Read as _, Write as _},
        time::{Duration, Instant},
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let engine = super::Shared::default();
    super::lock(&engine).configure(&[contoso()], [(net("192.0.2.0/24"), "contoso")], 0.0);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let addr = rt
        .block_on(async {
            super::listener::listen("127.0.0.1:0".parse().unwrap(), engine.clone(), tx)
        })
        .unwrap();
    let q = peer("203.0.113.2", 64502);
    let mut good = std::net::TcpStream::connect(addr).unwrap();
    let mut bytes = synth::initiation("r1");
    bytes.extend(synth::announce(&q, &[net("192.0.2.0/24")], &[64502, 64666]));
    good.write_all(&bytes).unwrap();
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), rx.recv()).await })
        .expect("an event within 5 s")
        .unwrap();
    assert!(
        event.raised && event.kind == Kind::OriginHijack,
        "{event:?}"
    );
    // A malformed message on a second session: it is closed, the first
    // goes on.
    let mut bad = std::net::TcpStream::connect(addr).unwrap();
    bad.write_all(&[3, 0, 0, 0, 48, 0]).unwrap();
    bad.write_all(&[0; 42]).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(bad.read(&mut [0u8; 1]).unwrap_or(1), 0, "closed by edged");
    // A bad common header (version 9, then a length past the limit):
    // closed, and counted as malformed too.
    for header in [[9u8, 0, 0, 0, 6, 4], [3, 0, 0x10, 0, 0, 4]] {
        let mut bad = std::net::TcpStream::connect(addr).unwrap();
        bad.write_all(&header).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(bad.read(&mut [0u8; 1]).unwrap_or(1), 0, "closed by edged");
    }
    good.write_all(&synth::withdraw(&q, &[net("192.0.2.0/24")]))
        .unwrap();
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), rx.recv()).await })
        .expect("an event within 5 s")
        .unwrap();
    assert!(
        !event.raised && event.kind == Kind::OriginHijack,
        "{event:?}"
    );
    let t = Instant::now();
    loop {
        let totals = super::lock(&engine).totals.clone();
        if totals.malformed == 3 && totals.sessions == 1 {
            assert_eq!(totals.sessions_total, 4);
            assert_eq!(totals.messages, 3);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{totals:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
