//! The view of every monitored peer's routes for the registered prefixes
//! and their more-specifics, and the anomalies found in it. Pure: time is
//! passed in, events are collected for the caller; tested without root.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    fmt,
    net::IpAddr,
    sync::Arc,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::trie::Trie;
use crate::plan::PlannedRegistration;

/// Paths of a router whose BMP session ended are kept (stale) this long
/// for it to reconnect and send them again (seconds); a path it sends
/// again is fresh, and its End-of-RIB for a peer sweeps that peer's
/// stale paths at once.
pub const STALE_HOLD: f64 = 60.0;
/// Cleared anomalies kept for `edgectl routes anomalies`.
pub const KEEP_CLEARED: usize = 1000;

/// What kind of anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A registered prefix announced with an origin AS not in its list.
    OriginHijack,
    /// A more-specific of a registered prefix announced with an origin AS
    /// not in its list.
    SubPrefixHijack,
    /// A registered prefix (or more-specific) whose AS path passes
    /// through an AS the registration does not allow.
    RouteLeak,
    /// A registered prefix once announced that no monitored peer
    /// announces any more.
    VisibilityLoss,
    /// A monitored peer's shortest path to a registration is longer than
    /// the shortest it had.
    AsHops,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::OriginHijack,
        Kind::SubPrefixHijack,
        Kind::RouteLeak,
        Kind::VisibilityLoss,
        Kind::AsHops,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OriginHijack => "origin_hijack",
            Kind::SubPrefixHijack => "sub_prefix_hijack",
            Kind::RouteLeak => "route_leak",
            Kind::VisibilityLoss => "visibility_loss",
            Kind::AsHops => "as_hops",
        }
    }

    /// In words (`origin hijack`).
    pub fn title(self) -> &'static str {
        match self {
            Kind::OriginHijack => "origin hijack",
            Kind::SubPrefixHijack => "sub-prefix hijack",
            Kind::RouteLeak => "route leak",
            Kind::VisibilityLoss => "visibility loss",
            Kind::AsHops => "AS hops",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which RIB of a peer a route comes from (the BMP per-peer header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rib {
    /// Adj-RIB-In before the router's import policy.
    PrePolicy,
    /// Adj-RIB-In after it.
    PostPolicy,
    /// The router's Loc-RIB (RFC 9069): its best paths.
    LocRib,
}

impl fmt::Display for Rib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rib::PrePolicy => "pre_policy",
            Rib::PostPolicy => "post_policy",
            Rib::LocRib => "loc_rib",
        })
    }
}

/// A BGP peer of a monitored router.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// The monitored router (the BMP session's remote address).
    pub router: IpAddr,
    /// The peer's address and AS, as the per-peer header gives them.
    pub address: IpAddr,
    pub asn: u32,
    /// The peer distinguisher (route distinguisher of a VRF; 0 global).
    pub distinguisher: u64,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer {} AS{} of router {}",
            self.address, self.asn, self.router
        )?;
        if self.distinguisher != 0 {
            write!(f, " (distinguisher {})", self.distinguisher)?;
        }
        Ok(())
    }
}

/// The attributes of one announcement (shared by its prefixes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// AS_PATH flattened (sets included, in order), prepends kept.
    pub as_path: Vec<u32>,
    /// Communities (standard, extended, large) as text.
    pub communities: Vec<String>,
    /// AS-path length (RFC 4271 route selection: a set counts one, prepends count).
    pub hops: u32,
    /// ORIGIN attribute: `igp`, `egp`, `incomplete` (empty when absent).
    pub origin: String,
    /// The origin AS: the path's last AS; `None` when the path ends in an
    /// AS_SET of several ASes (ambiguous) or is empty.
    pub origin_asn: Option<u32>,
}

/// One path as kept: its attributes, when it was announced, whether its
/// router's BMP session ended since (stale), and what it showed.
#[derive(Clone, Debug)]
struct Stored {
    attrs: Arc<Attrs>,
    /// Unix seconds.
    since: f64,
    stale: bool,
    /// The anomaly it witnesses.
    /// Boxed: most paths show none, and a full table keeps a million.
    anomaly: Option<Box<Key>>,
}

/// The paths of one prefix, by (peer, RIB): a few (monitored peers times
/// RIBs), so a vector (a B-tree node per prefix would cost over a
/// kilobyte each at a full table).
#[derive(Clone, Debug, Default)]
struct Paths(Vec<((Peer, Rib), Stored)>);

impl Paths {
    fn position(&self, key: &(Peer, Rib)) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    fn remove(&mut self, key: &(Peer, Rib)) -> Option<Stored> {
        self.position(key).map(|i| self.0.swap_remove(i).1)
    }

    /// Sets the path of `key`; the one it replaces.
    fn insert(&mut self, key: (Peer, Rib), value: Stored) -> Option<Stored> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&(Peer, Rib), &Stored)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&(Peer, Rib), &mut Stored)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl IntoIterator for Paths {
    type Item = ((Peer, Rib), Stored);
    type IntoIter = std::vec::IntoIter<((Peer, Rib), Stored)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Identity of an anomaly: one per kind, registration, announced prefix,
/// offending AS and (AS hops) peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    kind: Kind,
    registration: String,
    prefix: Option<IpNet>,
    asn: Option<u32>,
    peer: Option<Peer>,
}

/// An anomaly, active or cleared (fields in alphabetical order, as every
/// reply of the control protocol).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// A path that shows it (the first seen).
    pub as_path: Vec<u32>,
    /// The offending origin AS (hijacks) or the AS not allowed (leak).
    pub asn: Option<u32>,
    /// Unix seconds when it cleared (`None`: active).
    pub cleared: Option<f64>,
    pub kind: Kind,
    /// What it is, in words.
    pub message: String,
    /// The monitored peers whose routes show it now.
    pub peers: Vec<Peer>,
    /// The announced prefix (a more-specific for a sub-prefix hijack).
    pub prefix: Option<IpNet>,
    /// The registered prefix concerned.
    pub registered: Option<IpNet>,
    pub registration: String,
    /// Unix seconds when it was raised.
    pub since: f64,
}

/// Something to log and record as an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub registration: String,
    /// `true`: raised; `false`: cleared.
    pub raised: bool,
    pub message: String,
}

/// One path of `routes show`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathRow {
    /// The anomaly it shows (`None`: none).
    pub anomaly: Option<Kind>,
    #[serde(flatten)]
    pub attrs: Attrs,
    pub peer: Peer,
    pub prefix: IpNet,
    pub rib: Rib,
    /// Unix seconds when announced.
    pub since: f64,
    /// Its router's BMP session ended; kept until it sends it again.
    pub stale: bool,
}

/// Per registration, for the metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationStats {
    /// Active anomalies by kind.
    pub active: BTreeMap<Kind, u64>,
    /// Anomalies raised by kind since edged started.
    pub raised: BTreeMap<Kind, u64>,
    /// Over every monitored peer: the shortest current path's AS hops
    /// (the best a peer has now), and the shortest seen.
    pub best_hops: Option<u32>,
    pub shortest_hops: Option<u32>,
    /// Registered prefixes announced by at least one monitored peer.
    pub visible: u64,
    pub prefixes: u64,
}

/// Ingest totals, for the metrics and the `routes` replies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Prefixes announced (every one, kept or not).
    pub announcements: u64,
    /// Sessions closed because a message was malformed.
    pub malformed: u64,
    /// BMP messages applied.
    pub messages: u64,
    /// Paths kept (registered prefixes and their more-specifics).
    pub paths: u64,
    /// Sessions open now, and since edged started.
    pub sessions: u64,
    pub sessions_total: u64,
    /// Prefixes withdrawn.
    pub withdrawals: u64,
    /// Prefixes announced with the monitored router's own AS in their
    /// path (a peer echoing the router's own announcement back): not
    /// kept, as BGP loop detection rejects them.
    #[serde(default)]
    pub echoed: u64,
}

/// Per (registration, peer): the AS hops of its current paths.
#[derive(Debug, Default)]
struct Hops {
    /// Current hops by prefix.
    by_prefix: HashMap<IpNet, u32>,
    /// How many prefixes have each hop count (the current shortest is the
    /// first key: no scan per update).
    counts: BTreeMap<u32, usize>,
    shortest: Option<u32>,
}

impl Hops {
    fn current(&self) -> Option<u32> {
        self.counts.keys().next().copied()
    }

    /// Sets (`Some`) or removes (`None`) a prefix's hop count.
    fn set(&mut self, prefix: IpNet, hops: Option<u32>) {
        let old = match hops {
            Some(h) => {
                *self.counts.entry(h).or_default() += 1;
                self.by_prefix.insert(prefix, h)
            }
            None => self.by_prefix.remove(&prefix),
        };
        if let Some(o) = old
            && let Some(n) = self.counts.get_mut(&o)
        {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&o);
            }
        }
    }
}

/// A registered prefix and its registration (index).
#[derive(Debug, Clone)]
struct Registered {
    net: IpNet,
    registration: usize,
    /// Announced by someone at some point (a loss is reported only after).
    seen: bool,
}

/// The view and its anomalies.
#[derive(Debug, Default)]
pub struct Engine {
    registrations: Vec<PlannedRegistration>,
    registered: Vec<Registered>,
    trie4: Trie,
    trie6: Trie,
    /// Announced prefix → path per (peer, rib).
    routes: HashMap<IpNet, Paths>,
    active: BTreeMap<Key, Anomaly>,
    /// Witnesses of each active path anomaly.
    witnesses: HashMap<Key, BTreeSet<(Peer, Rib)>>,
    cleared: VecDeque<Anomaly>,
    hops: BTreeMap<(usize, Peer), Hops>,
    /// Routers whose session ended: when their stale paths go.
    stale_until: BTreeMap<IpAddr, f64>,
    /// Keys to check after an operation.
    dirty: BTreeSet<Key>,
    dirty_registered: BTreeSet<usize>,
    dirty_hops: BTreeSet<(usize, Peer)>,
    raised: BTreeMap<(usize, Kind), u64>,
    events: Vec<Event>,
    /// Paths in `routes`.
    paths: u64,
    pub totals: Totals,
}

impl Engine {
    /// Sets the registrations and the registered prefixes (network,
    /// registration name; prefixes of undeclared registrations are not
    /// monitored). Kept paths are classified again; anomalies that stay
    /// keep their start time.
    pub fn configure<'a>(
        &mut self,
        registrations: &[PlannedRegistration],
        prefixes: impl IntoIterator<Item = (IpNet, &'a str)>,
        now: f64,
    ) {
        let by_name: HashMap<&str, usize> = registrations
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let old_seen: BTreeSet<IpNet> = self
            .registered
            .iter()
            .filter(|r| r.seen)
            .map(|r| r.net)
            .collect();
        // Registration indexes change: drop what is keyed by them and
        // recompute it from the kept paths.
        let old_names: Vec<String> = self.registrations.iter().map(|r| r.name.clone()).collect();
        let old_raised = std::mem::take(&mut self.raised);
        for ((i, k), n) in old_raised {
            if let Some(j) = by_name.get(old_names[i].as_str()) {
                self.raised.insert((*j, k), n);
            }
        }
        let old_hops = std::mem::take(&mut self.hops);
        self.registrations = registrations.to_vec();
        self.registered.clear();
        self.trie4 = Trie::default();
        self.trie6 = Trie::default();
        for (net, name) in prefixes {
            let Some(&registration) = by_name.get(name) else {
                continue;
            };
            let i = self.registered.len() as u32;
            self.registered.push(Registered {
                net,
                registration,
                seen: old_seen.contains(&net),
            });
            match net {
                IpNet::V4(_) => self.trie4.insert(&net, i),
                IpNet::V6(_) => self.trie6.insert(&net, i),
            }
        }
        for ((i, peer), h) in old_hops {
            if let Some(&j) = by_name.get(old_names[i].as_str()) {
                self.hops.entry((j, peer)).or_default().shortest = h.shortest;
            }
        }
        // Every kept path again: its old witness out, the new one in.
        let prefixes: Vec<IpNet> = self.routes.keys().copied().collect();
        for prefix in prefixes {
            let paths = self.routes.remove(&prefix).unwrap_or_default();
            self.paths -= paths.len() as u64;
            for ((peer, rib), stored) in paths {
                self.unwitness(&prefix, &peer, rib, &stored);
                if self.covering(&prefix).is_some() {
                    self.put(prefix, peer, rib, stored.attrs, stored.since, stored.stale);
                }
            }
        }
        // Anomalies of registrations that are gone or renamed.
        for key in self.active.keys() {
            if !by_name.contains_key(key.registration.as_str()) {
                self.dirty.insert(key.clone());
            }
        }
        self.dirty_registered.extend(0..self.registered.len());
        self.settle(now);
    }

    /// The registered prefix covering `prefix` (index into `registered`).
    fn covering(&self, prefix: &IpNet) -> Option<usize> {
        let trie = match prefix {
            IpNet::V4(_) => &self.trie4,
            IpNet::V6(_) => &self.trie6,
        };
        trie.covering(prefix).map(|(_, i)| i as usize)
    }

    /// What a path for `prefix` (covered by registered `r`) shows.
    fn classify(&self, r: usize, prefix: &IpNet, peer: &Peer, attrs: &Attrs) -> Option<Key> {
        let reg_i = self.registered[r].registration;
        let reg = &self.registrations[reg_i];
        let exact = self.registered[r].net == *prefix;
        // An empty path: the monitored router's own peer originated it
        // (iBGP or the router itself); its AS is the origin.
        let origin = if attrs.as_path.is_empty() {
            Some(peer.asn)
        } else {
            attrs.origin_asn
        };
        let key = |kind, asn| Key {
            kind,
            registration: reg.name.clone(),
            prefix: Some(*prefix),
            asn,
            peer: None,
        };
        if origin.is_none_or(|o| !reg.origin_asns.contains(&o)) {
            let kind = if exact {
                Kind::OriginHijack
            } else {
                Kind::SubPrefixHijack
            };
            return Some(key(kind, origin));
        }
        if !reg.upstream_asns.is_empty() {
            let bad = attrs
                .as_path
                .iter()
                .find(|a| !reg.origin_asns.contains(a) && !reg.upstream_asns.contains(a));
            if let Some(a) = bad {
                return Some(key(Kind::RouteLeak, Some(*a)));
            }
        }
        None
    }

    /// Adds (or replaces) a path.
    pub fn announce(&mut self, peer: &Peer, rib: Rib, prefix: IpNet, attrs: Arc<Attrs>, now: f64) {
        self.totals.announcements += 1;
        if self.covering(&prefix).is_none() {
            return;
        }
        let old = self
            .routes
            .get_mut(&prefix)
            .and_then(|m| m.remove(&(peer.clone(), rib)));
        let since = match old {
            Some(o) => {
                self.paths -= 1;
                self.unwitness(&prefix, peer, rib, &o);
                // The same path sent again (a refresh, a reconnect's
                // table): it keeps its time.
                if o.attrs == attrs { o.since } else { now }
            }
            None => now,
        };
        self.put(prefix, peer.clone(), rib, attrs, since, false);
        self.settle(now);
    }

    /// A path with the monitored router's own AS in it (echoed back by
    /// `peer`): BGP rejects it, so it replaces (withdraws) what `peer`
    /// had for `prefix` in `rib` and is not kept.
    pub fn echoed(&mut self, peer: &Peer, rib: Rib, prefix: IpNet, now: f64) {
        self.totals.announcements += 1;
        self.totals.echoed += 1;
        self.remove_path(peer, rib, prefix, now);
    }

    /// Removes a path.
    pub fn withdraw(&mut self, peer: &Peer, rib: Rib, prefix: IpNet, now: f64) {
        self.totals.withdrawals += 1;
        self.remove_path(peer, rib, prefix, now);
    }

    fn remove_path(&mut self, peer: &Peer, rib: Rib, prefix: IpNet, now: f64) {
        let Some(paths) = self.routes.get_mut(&prefix) else {
            return;
        };
        let Some(old) = paths.remove(&(peer.clone(), rib)) else {
            return;
        };
        self.paths -= 1;
        if paths.is_empty() {
            self.routes.remove(&prefix);
        }
        self.unwitness(&prefix, peer, rib, &old);
        self.settle(now);
    }

    /// A peer went down (Peer Down): its routes are gone.
    pub fn peer_down(&mut self, peer: &Peer, now: f64) {
        self.remove_where(|p, _, _| p == peer);
        self.settle(now);
    }

    /// A router's BMP session ended: its paths are kept, stale, until it
    /// sends them again or [`STALE_HOLD`] passes ([`Engine::sweep`]).
    pub fn session_down(&mut self, router: IpAddr, now: f64) {
        for paths in self.routes.values_mut() {
            for ((p, _), s) in paths.iter_mut() {
                if p.router == router {
                    s.stale = true;
                }
            }
        }
        self.stale_until.insert(router, now + STALE_HOLD);
    }

    /// End-of-RIB from `peer` for one family (`v6`): its table has been
    /// sent again, so what is still stale is gone.
    pub fn end_of_rib(&mut self, peer: &Peer, v6: bool, now: f64) {
        self.remove_where(|p, prefix, s| {
            s.stale && p == peer && matches!(prefix, IpNet::V6(_)) == v6
        });
        self.settle(now);
    }

    /// Removes the stale paths of routers whose hold has passed.
    pub fn sweep(&mut self, now: f64) {
        let due: Vec<IpAddr> = self
            .stale_until
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(r, _)| *r)
            .collect();
        if due.is_empty() {
            return;
        }
        for r in &due {
            self.stale_until.remove(r);
        }
        self.remove_where(|p, _, s| s.stale && due.contains(&p.router));
        self.settle(now);
    }

    fn remove_where(&mut self, f: impl Fn(&Peer, &IpNet, &Stored) -> bool) {
        let mut gone = Vec::new();
        for (prefix, paths) in &self.routes {
            for ((p, rib), s) in paths.iter() {
                if f(p, prefix, s) {
                    gone.push((*prefix, p.clone(), *rib));
                }
            }
        }
        for (prefix, peer, rib) in gone {
            if let Some(paths) = self.routes.get_mut(&prefix)
                && let Some(old) = paths.remove(&(peer.clone(), rib))
            {
                self.paths -= 1;
                if paths.is_empty() {
                    self.routes.remove(&prefix);
                }
                self.unwitness(&prefix, &peer, rib, &old);
            }
        }
    }

    /// Stores a path (covered) and its witness.
    fn put(
        &mut self,
        prefix: IpNet,
        peer: Peer,
        rib: Rib,
        attrs: Arc<Attrs>,
        since: f64,
        stale: bool,
    ) {
        let Some(r) = self.covering(&prefix) else {
            return;
        };
        let anomaly = self.classify(r, &prefix, &peer, &attrs);
        if let Some(key) = &anomaly {
            if !self.active.contains_key(key) {
                let reg = &self.registrations[self.registered[r].registration];
                let message = describe(key, &attrs, reg, self.registered[r].net);
                self.active.insert(
                    key.clone(),
                    Anomaly {
                        kind: key.kind,
                        registration: key.registration.clone(),
                        registered: Some(self.registered[r].net),
                        prefix: Some(prefix),
                        asn: key.asn,
                        as_path: attrs.as_path.clone(),
                        peers: Vec::new(),
                        since,
                        cleared: None,
                        message,
                    },
                );
                // Raised at settle (it may be a reclassification).
                self.dirty.insert(key.clone());
                self.witnesses.entry(key.clone()).or_default();
                self.active.get_mut(key).unwrap().since = f64::NAN;
            }
            self.witnesses
                .entry(key.clone())
                .or_default()
                .insert((peer.clone(), rib));
            self.dirty.insert(key.clone());
        } else {
            let reg = self.registered[r].registration;
            self.hops
                .entry((reg, peer.clone()))
                .or_default()
                .set(prefix, Some(attrs.hops));
            self.dirty_hops.insert((reg, peer.clone()));
        }
        if self.registered[r].net == prefix {
            self.dirty_registered.insert(r);
        }
        let old = self
            .routes
            .entry(prefix)
            .or_insert_with(|| Paths(Vec::with_capacity(1)))
            .insert(
                (peer, rib),
                Stored {
                    attrs,
                    since,
                    stale,
                    anomaly: anomaly.map(Box::new),
                },
            );
        if old.is_none() {
            self.paths += 1;
        }
    }

    /// Takes a removed path's witness out.
    fn unwitness(&mut self, prefix: &IpNet, peer: &Peer, rib: Rib, old: &Stored) {
        if let Some(key) = &old.anomaly {
            if let Some(w) = self.witnesses.get_mut(key) {
                w.remove(&(peer.clone(), rib));
            }
            self.dirty.insert(Key::clone(key));
        } else if let Some(r) = self.covering(prefix) {
            let reg = self.registered[r].registration;
            // A legitimate path of the same peer for the same prefix in
            // another RIB still counts.
            let other = self.routes.get(prefix).and_then(|m| {
                m.iter()
                    .filter(|((p, _), s)| p == peer && s.anomaly.is_none())
                    .map(|(_, s)| s.attrs.hops)
                    .min()
            });
            if let Some(h) = self.hops.get_mut(&(reg, peer.clone())) {
                h.set(*prefix, other);
            }
            self.dirty_hops.insert((reg, peer.clone()));
        }
        if let Some(r) = self.covering(prefix)
            && self.registered[r].net == *prefix
        {
            self.dirty_registered.insert(r);
        }
        let _ = rib;
    }

    /// Raises and clears what the last operation changed.
    fn settle(&mut self, now: f64) {
        self.totals.paths = self.paths;
        for key in std::mem::take(&mut self.dirty) {
            let witnesses: Vec<Peer> = self
                .witnesses
                .get(&key)
                .map(|w| {
                    let mut v: Vec<Peer> = w.iter().map(|(p, _)| p.clone()).collect();
                    v.dedup();
                    v
                })
                .unwrap_or_default();
            let registered = self
                .registrations
                .iter()
                .any(|r| r.name == key.registration);
            if registered && matches!(key.kind, Kind::VisibilityLoss | Kind::AsHops) {
                continue;
            }
            if !registered || witnesses.is_empty() {
                self.witnesses.remove(&key);
                self.clear(&key, now);
            } else if let Some(a) = self.active.get_mut(&key) {
                a.peers = witnesses;
                if a.since.is_nan() {
                    a.since = now;
                    let (message, registration) = (a.message.clone(), a.registration.clone());
                    self.raise(key.kind, registration, message);
                }
            }
        }
        for r in std::mem::take(&mut self.dirty_registered) {
            self.visibility(r, now);
        }
        for (reg, peer) in std::mem::take(&mut self.dirty_hops) {
            self.hops_check(reg, peer, now);
        }
    }

    fn raise(&mut self, kind: Kind, registration: String, message: String) {
        if let Some(i) = self
            .registrations
            .iter()
            .position(|r| r.name == registration)
        {
            *self.raised.entry((i, kind)).or_default() += 1;
        }
        self.events.push(Event {
            kind,
            registration,
            raised: true,
            message,
        });
    }

    fn clear(&mut self, key: &Key, now: f64) {
        let Some(mut a) = self.active.remove(key) else {
            return;
        };
        if a.since.is_nan() {
            // Raised and gone within one operation: never reported.
            return;
        }
        a.cleared = Some(now);
        a.peers.clear();
        self.events.push(Event {
            kind: a.kind,
            registration: a.registration.clone(),
            raised: false,
            message: format!("cleared: {}", a.message),
        });
        if self.cleared.len() == KEEP_CLEARED {
            self.cleared.pop_front();
        }
        self.cleared.push_back(a);
    }

    /// Visibility of registered prefix `r`: lost when no path is left
    /// after one was seen; back when one comes.
    fn visibility(&mut self, r: usize, now: f64) {
        let net = self.registered[r].net;
        let reg = &self.registrations[self.registered[r].registration];
        let visible = self.routes.get(&net).is_some_and(|m| !m.is_empty());
        let key = Key {
            kind: Kind::VisibilityLoss,
            registration: reg.name.clone(),
            prefix: Some(net),
            asn: None,
            peer: None,
        };
        if visible {
            self.registered[r].seen = true;
            self.clear(&key, now);
        } else if self.registered[r].seen && !self.active.contains_key(&key) {
            let message = format!(
                "visibility loss: {net} ({}) is no longer announced by any monitored peer",
                reg.name
            );
            self.active.insert(
                key.clone(),
                Anomaly {
                    kind: Kind::VisibilityLoss,
                    registration: reg.name.clone(),
                    registered: Some(net),
                    prefix: Some(net),
                    asn: None,
                    as_path: Vec::new(),
                    peers: Vec::new(),
                    since: now,
                    cleared: None,
                    message: message.clone(),
                },
            );
            let name = reg.name.clone();
            self.raise(Kind::VisibilityLoss, name, message);
        }
    }

    /// AS hops of (registration, peer): an anomaly while its shortest
    /// current legitimate path is longer than the shortest it had.
    fn hops_check(&mut self, reg: usize, peer: Peer, now: f64) {
        let Some(h) = self.hops.get_mut(&(reg, peer.clone())) else {
            return;
        };
        let current = h.current();
        if let Some(c) = current {
            h.shortest = Some(h.shortest.map_or(c, |s| s.min(c)));
        }
        let shortest = h.shortest;
        let name = self.registrations[reg].name.clone();
        let key = Key {
            kind: Kind::AsHops,
            registration: name.clone(),
            prefix: None,
            asn: None,
            peer: Some(peer.clone()),
        };
        match (current, shortest) {
            (Some(c), Some(s)) if c > s => {
                if let Some(a) = self.active.get_mut(&key) {
                    a.message = hops_message(&name, &peer, c, s);
                } else {
                    let message = hops_message(&name, &peer, c, s);
                    self.active.insert(
                        key,
                        Anomaly {
                            kind: Kind::AsHops,
                            registration: name.clone(),
                            registered: None,
                            prefix: None,
                            asn: None,
                            as_path: Vec::new(),
                            peers: vec![peer],
                            since: now,
                            cleared: None,
                            message: message.clone(),
                        },
                    );
                    self.raise(Kind::AsHops, name, message);
                }
            }
            // Back to its shortest, or no path at all (visibility says so).
            _ => self.clear(&key, now),
        }
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Every path kept for `prefix` and its more-specifics, and for the
    /// registered prefix covering it.
    pub fn routes(&self, prefix: IpNet) -> Vec<PathRow> {
        let mut rows: Vec<PathRow> = Vec::new();
        for (net, paths) in &self.routes {
            if !prefix.contains(net) {
                continue;
            }
            for ((peer, rib), s) in paths.iter() {
                rows.push(PathRow {
                    prefix: *net,
                    peer: peer.clone(),
                    rib: *rib,
                    attrs: (*s.attrs).clone(),
                    since: s.since,
                    stale: s.stale,
                    anomaly: s.anomaly.as_ref().map(|k| k.kind),
                });
            }
        }
        rows.sort_by(|a, b| {
            (a.prefix.prefix_len(), a.prefix, &a.peer, a.rib).cmp(&(
                b.prefix.prefix_len(),
                b.prefix,
                &b.peer,
                b.rib,
            ))
        });
        rows
    }

    /// The registration and registered prefix covering `prefix`, if any.
    pub fn registered_for(&self, prefix: &IpNet) -> Option<(IpNet, &str)> {
        self.covering(prefix).map(|r| {
            let x = &self.registered[r];
            (x.net, self.registrations[x.registration].name.as_str())
        })
    }

    /// Active anomalies, then cleared ones, oldest first; with `since`
    /// (Unix seconds) only those raised or cleared since.
    pub fn anomalies(&self, since: Option<f64>) -> (Vec<Anomaly>, Vec<Anomaly>) {
        let keep =
            |a: &&Anomaly| since.is_none_or(|t| a.since >= t || a.cleared.is_some_and(|c| c >= t));
        let mut active: Vec<Anomaly> = self
            .active
            .values()
            .filter(|a| !a.since.is_nan())
            .filter(keep)
            .cloned()
            .collect();
        active.sort_by(|a, b| a.since.total_cmp(&b.since));
        let cleared = self.cleared.iter().filter(keep).cloned().collect();
        (active, cleared)
    }

    /// The active anomalies, in no particular order (no copy).
    pub fn active(&self) -> impl Iterator<Item = &Anomaly> {
        self.active.values().filter(|a| !a.since.is_nan())
    }

    /// Per registration: anomalies and hops, for the metrics.
    pub fn registration_stats(&self) -> BTreeMap<String, RegistrationStats> {
        let mut out: BTreeMap<String, RegistrationStats> = self
            .registrations
            .iter()
            .map(|r| (r.name.clone(), RegistrationStats::default()))
            .collect();
        for a in self.active.values().filter(|a| !a.since.is_nan()) {
            if let Some(s) = out.get_mut(&a.registration) {
                *s.active.entry(a.kind).or_default() += 1;
            }
        }
        for ((i, k), n) in &self.raised {
            if let Some(s) = out.get_mut(&self.registrations[*i].name) {
                s.raised.insert(*k, *n);
            }
        }
        for ((i, _), h) in &self.hops {
            let s = out.get_mut(&self.registrations[*i].name).unwrap();
            if let Some(c) = h.current() {
                s.best_hops = Some(s.best_hops.map_or(c, |b| b.min(c)));
            }
            if let Some(c) = h.shortest {
                s.shortest_hops = Some(s.shortest_hops.map_or(c, |b| b.min(c)));
            }
        }
        for r in &self.registered {
            let s = out
                .get_mut(&self.registrations[r.registration].name)
                .unwrap();
            s.prefixes += 1;
            if self.routes.get(&r.net).is_some_and(|m| !m.is_empty()) {
                s.visible += 1;
            }
        }
        out
    }

    /// Paths kept.
    pub fn path_count(&self) -> u64 {
        debug_assert_eq!(
            self.paths,
            self.routes.values().map(|m| m.len() as u64).sum::<u64>()
        );
        self.paths
    }
}

fn hops_message(registration: &str, peer: &Peer, current: u32, shortest: u32) -> String {
    format!(
        "AS hops: {registration}'s shortest path through {peer} is {current} AS hops, longer than its usual {shortest}"
    )
}

fn asns(list: &[u32]) -> String {
    list.iter()
        .map(|a| format!("AS{a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn path_text(path: &[u32]) -> String {
    if path.is_empty() {
        return "(empty)".into();
    }
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(key: &Key, attrs: &Attrs, reg: &PlannedRegistration, registered: IpNet) -> String {
    let prefix = key.prefix.unwrap_or(registered);
    let origin = key
        .asn
        .map_or("an unknown AS (AS_SET)".into(), |a| format!("AS{a}"));
    match key.kind {
        Kind::OriginHijack => format!(
            "{}: {prefix} ({}) announced with origin {origin}, path {}; allowed origins: {}",
            key.kind.title(),
            reg.name,
            path_text(&attrs.as_path),
            asns(&reg.origin_asns)
        ),
        Kind::SubPrefixHijack => format!(
            "{}: {prefix}, a more-specific of {registered} ({}), announced with origin {origin}, path {}; allowed origins: {}",
            key.kind.title(),
            reg.name,
            path_text(&attrs.as_path),
            asns(&reg.origin_asns)
        ),
        Kind::RouteLeak => format!(
            "{}: {prefix} ({}) reached us through {origin}, path {}; allowed upstreams: {}",
            key.kind.title(),
            reg.name,
            path_text(&attrs.as_path),
            asns(&reg.upstream_asns)
        ),
        Kind::VisibilityLoss | Kind::AsHops => key.kind.title().into(),
    }
}
