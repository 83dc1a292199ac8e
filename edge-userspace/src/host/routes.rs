//! Route sync: registered prefixes from kernel routing tables that a real
//! BGP daemon (BIRD, FRR) fills. edge never speaks BGP; it follows tables.
//!
//! A thread dumps the routes of the configured tables (netlink
//! `RTM_GETROUTE`), then follows route events (`RTNLGRP_IPV4_ROUTE`,
//! `RTNLGRP_IPV6_ROUTE`), coalescing bursts into batches. A receive buffer
//! overrun (`ENOBUFS`: events were lost) triggers a full dump that replaces
//! everything: never silent drift. [`extend`] turns the routes into prefix
//! entries by the config's `[[route_sources]]`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::IpNet;
use log::{info, warn};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::sync::mpsc;

use super::netlink::{messages, netlink_dump};
use crate::plan::{Family, Origin, Plan, PlannedPrefix, PlannedRouteSource, martian};

/// One route of a followed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub net: IpNet,
    pub table: u32,
    /// `rtm_protocol` (12 = bird, 186 = bgp, 4 = static, ...).
    pub protocol: u8,
    /// Route priority (`metric`).
    pub metric: u32,
    /// Destination realm (0 when none).
    pub realm: u32,
}

/// What the sync thread sends the daemon.
#[derive(Debug, Clone)]
pub enum RouteEvent {
    /// Every route of the followed tables (after a start or an overrun).
    Full(Vec<Route>),
    /// Coalesced changes: the route now, or `None` when it was deleted.
    /// Keyed by (table, network, metric).
    Changes(Vec<((u32, IpNet, u32), Option<Route>)>),
}

/// A route without its table and network (the store's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tail {
    protocol: u8,
    metric: u32,
    realm: u32,
}

/// The routes of one (table, network), by ascending metric (one each).
#[derive(Debug, Clone)]
enum Metrics {
    One(Tail),
    /// Two or more.
    Many(Vec<Tail>),
}

impl Metrics {
    fn first(&self) -> Tail {
        match self {
            Metrics::One(t) => *t,
            Metrics::Many(v) => v[0],
        }
    }

    /// Adds `t`, replacing the route of its metric.
    fn insert(&mut self, t: Tail) {
        match self {
            Metrics::One(o) if o.metric == t.metric => *o = t,
            Metrics::One(o) => {
                let o = *o;
                *self = Metrics::Many(if o.metric < t.metric {
                    vec![o, t]
                } else {
                    vec![t, o]
                });
            }
            Metrics::Many(v) => match v.binary_search_by_key(&t.metric, |x| x.metric) {
                Ok(i) => v[i] = t,
                Err(i) => v.insert(i, t),
            },
        }
    }

    /// Removes the route of `metric`; true when none is left.
    fn remove(&mut self, metric: u32) -> bool {
        match self {
            Metrics::One(o) => o.metric == metric,
            Metrics::Many(v) => {
                v.retain(|t| t.metric != metric);
                match v[..] {
                    [] => true,
                    [t] => {
                        *self = Metrics::One(t);
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

/// The routes of the followed tables, as the daemon keeps them.
#[derive(Debug, Clone, Default)]
pub struct RouteStore {
    /// (table, network) → its routes by ascending metric (one metric each);
    /// the first is the route. Nearly every network has one route, kept
    /// inline (at a million routes a map, or a Vec, per network costs
    /// hundreds of MiB).
    routes: BTreeMap<(u32, IpNet), Metrics>,
    /// Full resyncs done (the first dump included).
    pub resyncs: u64,
    /// Routes left out because a prefix map was full, at the last extend.
    pub skipped: usize,
    /// Routes left out because they lie in a special-purpose range no
    /// router forwards (127/8, 224/4, fe80::/10, ...), at the last extend.
    pub martians: usize,
}

impl RouteStore {
    pub fn apply(&mut self, event: RouteEvent) {
        match event {
            RouteEvent::Full(routes) => {
                self.routes.clear();
                self.resyncs += 1;
                for r in routes {
                    self.insert(r);
                }
            }
            RouteEvent::Changes(changes) => {
                for ((table, net, metric), route) in changes {
                    match route {
                        Some(r) => self.insert(r),
                        None => {
                            if let Some(m) = self.routes.get_mut(&(table, net))
                                && m.remove(metric)
                            {
                                self.routes.remove(&(table, net));
                            }
                        }
                    }
                }
            }
        }
    }

    fn insert(&mut self, r: Route) {
        let t = Tail {
            protocol: r.protocol,
            metric: r.metric,
            realm: r.realm,
        };
        match self.routes.entry((r.table, r.net)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Metrics::One(t));
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().insert(t),
        }
    }

    /// The best route of every (table, network).
    pub fn best(&self) -> impl Iterator<Item = Route> + '_ {
        self.routes.iter().map(|(&(table, net), m)| {
            let t = m.first();
            Route {
                net,
                table,
                protocol: t.protocol,
                metric: t.metric,
                realm: t.realm,
            }
        })
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether one of `tables` has a route for `net`.
    pub fn has_net(&self, tables: impl IntoIterator<Item = u32>, net: &IpNet) -> bool {
        tables
            .into_iter()
            .any(|t| self.routes.contains_key(&(t, *net)))
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Adds the routes of `store` to `plan` as prefixes, by the plan's route
/// sources: the first source whose table and filters match a route decides
/// its entry. A network the config or a live change registers keeps that
/// entry; a network in several tables takes the first source's. Routes
/// beyond a prefix map's limit are left out (counted in `store.skipped`).
pub fn extend(plan: &mut Plan, store: &mut RouteStore) {
    store.skipped = 0;
    if plan.route_sources.is_empty() {
        return;
    }
    let mut taken: BTreeSet<IpNet> = plan.prefixes.iter().map(|p| p.net).collect();
    // Private domains' networks, by (domain, network); their routes go to
    // `domain_prefixes`, within the private domains' limit.
    let mut taken_private: BTreeSet<(u32, IpNet)> = plan
        .domain_prefixes
        .iter()
        .map(|(d, p)| (*d, p.net))
        .collect();
    let mut private = [
        plan.domain_prefixes
            .iter()
            .filter(|(_, p)| p.net.addr().is_ipv4())
            .count(),
        plan.domain_prefixes
            .iter()
            .filter(|(_, p)| p.net.addr().is_ipv6())
            .count(),
    ];
    let mut v4 = plan
        .prefixes
        .iter()
        .filter(|p| p.net.addr().is_ipv4())
        .count();
    let mut v6 = plan.prefixes.len() - v4;
    let mut skipped = 0;
    let mut martians: Vec<IpNet> = Vec::new();
    let mut chosen: Vec<(usize, Route)> = store
        .best()
        .filter_map(|r| {
            let i = plan.route_sources.iter().position(|s| matches(s, &r))?;
            Some((i, r))
        })
        .collect();
    chosen.sort_by_key(|(i, r)| (*i, r.net));
    // Exactly what they take: grown by doubling, a million entries of the
    // plan would carry up to as many spare ones (112 bytes each).
    plan.prefixes.reserve_exact(chosen.len());
    for (i, r) in chosen {
        let s = &plan.route_sources[i];
        // A private domain's source fills that domain (validated: its
        // policy is the domain's, no protect), within the private limit.
        let fresh = match s.domain {
            Some(d) => taken_private.insert((d, r.net)),
            None => taken.insert(r.net),
        };
        if !fresh {
            continue;
        }
        if martian(&r.net).is_some() {
            martians.push(r.net);
            continue;
        }
        let is_v6 = r.net.addr().is_ipv6();
        let (n, limit) = match s.domain {
            Some(_) => (
                &mut private[usize::from(is_v6)],
                edge_common::limits::MAX_DOMAIN_PREFIXES,
            ),
            None if is_v6 => (&mut v6, plan.limits.prefixes_v6),
            None => (&mut v4, plan.limits.prefixes_v4),
        };
        if *n >= limit as usize {
            skipped += 1;
            continue;
        }
        *n += 1;
        let prefix = PlannedPrefix {
            net: r.net,
            registration: s
                .registration
                .as_deref()
                .map_or_else(|| r.net.to_string().into(), Into::into),
            origin: Origin::Route { table: r.table },
            preference: s.preference,
            policy: s.policy,
            dscp: s.dscp,
            protect: s.protect.clone(),
            region: None,
            held: Vec::new(),
        };
        match s.domain {
            Some(d) => plan.domain_prefixes.push((d, prefix)),
            None => plan.prefixes.push(prefix),
        }
    }
    store.skipped = skipped;
    if !martians.is_empty() && martians.len() != store.martians {
        warn!(
            "{} routes left out: they lie in special-purpose ranges no router forwards (first: {})",
            martians.len(),
            martians[0]
        );
    }
    store.martians = martians.len();
    if skipped > 0 {
        warn!(
            "{skipped} routes left out: the prefix maps are full ([limits]; private domains: 65,536 per family in all)"
        );
    }
}

/// The route in a netlink message, if it belongs to one of `tables`.
fn route_of(msg: &RouteMessage, tables: &BTreeSet<u32>) -> Option<Route> {
    let h = &msg.header;
    if !matches!(
        h.kind,
        RouteType::Unicast | RouteType::BlackHole | RouteType::Unreachable | RouteType::Prohibit
    ) {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut dst: Option<IpAddr> = None;
    let (mut metric, mut realm) = (0, 0);
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some((*a).into()),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some((*a).into()),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Realm(r) => realm = u32::from(r.destination),
            _ => {}
        }
    }
    if !tables.contains(&table) {
        return None;
    }
    let dst = match (dst, h.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpAddr::from([0u8; 4]),
        (None, AddressFamily::Inet6) => IpAddr::from([0u16; 8]),
        _ => return None,
    };
    let net = IpNet::new(dst, h.destination_prefix_length).ok()?.trunc();
    Some(Route {
        net,
        table,
        protocol: h.protocol.into(),
        metric,
        realm,
    })
}

/// Every route of `tables` (one `RTM_GETROUTE` dump, both families).
pub fn dump(tables: &BTreeSet<u32>) -> Result<Vec<Route>> {
    // A dump the kernel marks inconsistent (the table changed under it) is
    // taken again.
    for _ in 0..10 {
        if let Some(routes) = dump_once(tables)? {
            return Ok(routes);
        }
    }
    bail!("route dump: the tables kept changing during 10 dumps")
}

/// One dump; `None` when the kernel flagged it interrupted.
fn dump_once(tables: &BTreeSet<u32>) -> Result<Option<Vec<Route>>> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Unspec;
    Ok(
        netlink_dump(RouteNetlinkMessage::GetRoute(msg), "route")?.map(|messages| {
            messages
                .iter()
                .filter_map(|m| match m {
                    RouteNetlinkMessage::NewRoute(r) => route_of(r, tables),
                    _ => None,
                })
                .collect()
        }),
    )
}

/// The event socket: subscribed to route changes, with a large receive
/// buffer (`rcvbuf` bytes, forced past rmem_max) and a short read timeout.
fn event_socket(rcvbuf: usize) -> Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    socket.bind_auto().context("netlink bind")?;
    socket.add_membership(libc::RTNLGRP_IPV4_ROUTE)?;
    socket.add_membership(libc::RTNLGRP_IPV6_ROUTE)?;
    let fd = socket.as_raw_fd();
    let size = rcvbuf as libc::c_int;
    // SAFETY: setsockopt with a valid fd and a c_int / timeval argument.
    unsafe {
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            socket.set_rx_buf_sz(rcvbuf)?;
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        ) != 0
        {
            bail!("SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        }
    }
    Ok(socket)
}

/// How the sync thread batches.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Event socket receive buffer, bytes.
    pub rcvbuf: usize,
    /// A batch is sent after this much quiet, or
    pub quiet: Duration,
    /// after this long since its first change, or
    pub max_delay: Duration,
    /// at this many changes.
    pub max_batch: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            rcvbuf: 32 << 20,
            quiet: Duration::from_millis(50),
            max_delay: Duration::from_millis(250),
            max_batch: 50_000,
        }
    }
}

/// A running route sync; dropping it stops the thread.
pub struct Sync {
    pub tables: BTreeSet<u32>,
    stop: Arc<AtomicBool>,
}

impl Drop for Sync {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Sync {
    /// Subscribes to route events, dumps `tables` (returned, to apply
    /// before anything else), then follows the events from a thread of its
    /// own: coalesced changes, a full dump again after any overrun. Events
    /// between the subscription and the dump repeat what the dump has.
    pub fn start(
        tables: BTreeSet<u32>,
        options: SyncOptions,
        tx: mpsc::Sender<RouteEvent>,
    ) -> Result<(Self, Vec<Route>)> {
        let socket = event_socket(options.rcvbuf)?;
        let t = Instant::now();
        let routes = dump(&tables)?;
        info!(
            "route sync: {} routes in tables {tables:?} (dumped in {:?})",
            routes.len(),
            t.elapsed()
        );
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (tables, stop) = (tables.clone(), stop.clone());
            std::thread::Builder::new()
                .name("route-sync".into())
                .spawn(move || {
                    if let Err(e) = follow(&socket, &tables, options, &tx, &stop) {
                        warn!("route sync stopped: {e:#}");
                    }
                })?;
        }
        Ok((Self { tables, stop }, routes))
    }
}

fn follow(
    socket: &Socket,
    tables: &BTreeSet<u32>,
    o: SyncOptions,
    tx: &mpsc::Sender<RouteEvent>,
    stop: &AtomicBool,
) -> Result<()> {
    let full = |why: &str| -> Result<()> {
        let t = Instant::now();
        let routes = dump(tables)?;
        info!(
            "route sync: {} routes in tables {tables:?} ({why}, dumped in {:?})",
            routes.len(),
            t.elapsed()
        );
        tx.blocking_send(RouteEvent::Full(routes))
            .map_err(|_| anyhow::anyhow!("daemon gone"))
    };
    let mut pending: BTreeMap<(u32, IpNet, u32), Option<Route>> = BTreeMap::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut rx = Vec::with_capacity(1 << 20);
    while !stop.load(Ordering::Relaxed) {
        rx.clear();
        match socket.recv(&mut rx, 0) {
            Ok(_) => {
                last = Instant::now();
                for m in messages(&rx) {
                    let (msg, add) = match m.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => (r, true),
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => {
                            (r, false)
                        }
                        _ => continue,
                    };
                    if let Some(r) = route_of(&msg, tables) {
                        pending.insert((r.table, r.net, r.metric), add.then_some(r));
                        first.get_or_insert(last);
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                warn!("route sync: netlink overrun, events lost: full resync");
                pending.clear();
                first = None;
                // The kernel keeps dropping events, without a new ENOBUFS,
                // until the receive queue has been emptied (the socket is
                // "congested"): empty it first, so that every change from
                // the dump on is queued and applied after the dump.
                loop {
                    rx.clear();
                    match socket.recv(&mut rx, libc::MSG_DONTWAIT) {
                        Ok(_) => continue,
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                        Err(_) => break,
                    }
                }
                full("overrun")?;
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("reading route events"),
        }
        let due = first.is_some_and(|f| {
            last.elapsed() >= o.quiet || f.elapsed() >= o.max_delay || pending.len() >= o.max_batch
        });
        if due {
            let batch: Vec<_> = std::mem::take(&mut pending).into_iter().collect();
            first = None;
            if tx.blocking_send(RouteEvent::Changes(batch)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether route `r` is one of `source`'s (table, family, protocol, metric, realm).
fn matches(source: &PlannedRouteSource, r: &Route) -> bool {
    r.table == source.table
        && match source.family {
            Family::Any => true,
            Family::Ipv4 => r.net.addr().is_ipv4(),
            Family::Ipv6 => r.net.addr().is_ipv6(),
        }
        && source.protocol.is_none_or(|p| p == r.protocol)
        && source.metric.is_none_or(|m| m == r.metric)
        && source.realm.is_none_or(|x| x == r.realm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(net: &str, table: u32, metric: u32) -> Route {
        Route {
            net: net.parse().unwrap(),
            table,
            protocol: 12,
            metric,
            realm: 0,
        }
    }

    #[test]
    fn the_lowest_metric_is_the_route_and_deletes_are_per_metric() {
        let mut s = RouteStore::default();
        s.apply(RouteEvent::Full(vec![
            r("192.0.2.0/24", 200, 20),
            r("192.0.2.0/24", 200, 10),
            r("198.51.100.0/24", 200, 5),
        ]));
        assert_eq!(s.len(), 2);
        assert_eq!(s.best().next().unwrap().metric, 10);
        s.apply(RouteEvent::Changes(vec![
            ((200, "192.0.2.0/24".parse().unwrap(), 10), None),
            ((200, "198.51.100.0/24".parse().unwrap(), 5), None),
        ]));
        let best: Vec<_> = s.best().collect();
        assert_eq!(best, [r("192.0.2.0/24", 200, 20)]);
        // Three metrics, one replaced, then removed down to none.
        let net: IpNet = "203.0.113.0/24".parse().unwrap();
        s.apply(RouteEvent::Changes(vec![
            ((200, net, 30), Some(r("203.0.113.0/24", 200, 30))),
            ((200, net, 7), Some(r("203.0.113.0/24", 200, 7))),
            ((200, net, 9), Some(r("203.0.113.0/24", 200, 9))),
            (
                (200, net, 7),
                Some(Route {
                    protocol: 4,
                    ..r("203.0.113.0/24", 200, 7)
                }),
            ),
        ]));
        let best = |s: &RouteStore| s.best().find(|b| b.net == net);
        assert_eq!(best(&s).map(|b| (b.metric, b.protocol)), Some((7, 4)));
        for (gone, next) in [(7, Some(9)), (30, Some(9)), (9, None)] {
            s.apply(RouteEvent::Changes(vec![((200, net, gone), None)]));
            assert_eq!(best(&s).map(|b| b.metric), next);
        }
        assert_eq!(s.len(), 1);
        s.apply(RouteEvent::Full(vec![]));
        assert!(s.is_empty());
        assert_eq!(s.resyncs, 2);
    }

    #[test]
    fn martian_routes_are_left_out_and_counted_a_default_route_is_kept() {
        let mut plan = crate::config::parse(
            "[forwarding]\ntransit_exit = \"isp\"\n\
             [[ports]]\ninterface = \"tr0\"\nrole = \"transit\"\n\
             [[pops]]\nname = \"isp\"\ninterface = \"tr0\"\nmac = \"02:00:00:00:0a:01\"\n\
             [[route_sources]]\ntable = 200\npreference = \"internet\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut s = RouteStore::default();
        s.apply(RouteEvent::Full(vec![
            r("0.0.0.0/0", 200, 1),
            r("127.0.0.0/8", 200, 1),
            r("224.0.0.0/24", 200, 1),
            r("fe80::/64", 200, 1),
            r("192.0.2.0/24", 200, 1),
        ]));
        extend(&mut plan, &mut s);
        let nets: Vec<String> = plan.prefixes.iter().map(|p| p.net.to_string()).collect();
        assert_eq!(nets, ["0.0.0.0/0", "192.0.2.0/24"]);
        assert_eq!((s.martians, s.skipped), (3, 0));
    }

    #[test]
    fn a_private_domains_table_fills_that_domain_only() {
        // Table 300 is domain red's (as a VRF's table would be), 200 the
        // public one; the same network in both, and red's config entry wins
        // over its route.
        let mut plan = crate::config::parse(
            "[forwarding]\ntransit_exit = \"isp\"\n\
             [[domains]]\nname = \"red\"\n\
             [[ports]]\ninterface = \"tr0\"\nrole = \"transit\"\n\
             [[ports]]\ninterface = \"bb0\"\nvlan = [7]\nrole = \"backbone\"\ndomain = \"red\"\n\
             [[pops]]\nname = \"isp\"\ninterface = \"tr0\"\nmac = \"02:00:00:00:0a:01\"\n\
             [[pops]]\nname = \"gw\"\nport = \"bb0.7\"\nmac = \"02:00:00:00:0a:02\"\n\
             [[prefixes]]\nprefix = \"198.51.100.0/24\"\ndomain = \"red\"\npop = \"gw\"\n\
             [[route_sources]]\ntable = 200\npreference = \"internet\"\n\
             [[route_sources]]\ntable = 300\ndomain = \"red\"\npop = \"gw\"\nregistration = \"red-vnets\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut s = RouteStore::default();
        s.apply(RouteEvent::Full(vec![
            r("192.0.2.0/24", 200, 1),
            r("192.0.2.0/24", 300, 1),
            r("198.51.100.0/24", 300, 1),
            r("203.0.113.0/24", 300, 1),
        ]));
        extend(&mut plan, &mut s);
        let public: Vec<String> = plan.prefixes.iter().map(|p| p.net.to_string()).collect();
        assert_eq!(public, ["192.0.2.0/24"]);
        let red: Vec<(String, Origin, String)> = plan
            .domain_prefixes
            .iter()
            .map(|(d, p)| {
                assert_eq!(*d, 0);
                (p.net.to_string(), p.origin, p.registration.to_string())
            })
            .collect();
        assert_eq!(
            red,
            [
                (
                    "198.51.100.0/24".into(),
                    Origin::Config,
                    "198.51.100.0/24".into()
                ),
                (
                    "192.0.2.0/24".into(),
                    Origin::Route { table: 300 },
                    "red-vnets".into()
                ),
                (
                    "203.0.113.0/24".into(),
                    Origin::Route { table: 300 },
                    "red-vnets".into()
                ),
            ]
        );
    }
}
