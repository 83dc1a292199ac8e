//! The control protocol's types, shared by edged and edgectl: every request,
//! the reply envelope, and one reply type per verb. docs/protocol.md
//! describes the wire format; its examples are checked against these types
//! (`tests.rs`).
//!
//! Versioning: every request carries `"protocol": PROTOCOL`, every reply
//! carries the protocol edged speaks. edged refuses a request without the
//! field or with another version (reply kind `version`); edgectl refuses a
//! reply without the field or with another version. Compatible additions (a
//! new optional request field, a new reply field, a new verb) keep the
//! version; anything an older peer would misread bumps it.
//!
//! Reply fields are declared in alphabetical order: the order the JSON had
//! when the replies were built as untyped maps, so `edgectl --json` output
//! is unchanged.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{analytics, config::PrefixSpec, desired};

/// The protocol version this build speaks (requests and replies).
pub const PROTOCOL: u32 = 1;
/// The request field that carries the version.
pub const PROTOCOL_FIELD: &str = "protocol";
/// Longest request line accepted (bytes).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Most items in one `prefix_batch` (more than the prefix maps hold).
pub const MAX_BATCH: usize = 1 << 21;

/// One line after a `prefix_batch` request: a prefix to register (`add`,
/// the keys of `prefix_add`'s `spec`) or to unregister (`del`), with the
/// line of the batch file it came from (problems name it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<PrefixSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub del: Option<IpNet>,
}

/// What edgectl asks. On the wire: `{"protocol":1,"command":"...",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Reply: [`Status`].
    Status {},
    /// Reply: [`Stats`]. With `prefix`, that prefix's row only; else the
    /// rows of the prefixes with a counter slot of their own that pass
    /// the filters (all given must match), the `top` busiest when given.
    Stats {
        #[serde(default)]
        prefix: Option<IpNet>,
        /// Only the N prefixes with the most packets (ties: list order).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top: Option<usize>,
        /// Only this registration's prefixes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration: Option<String>,
        /// Only prefixes inside this network (or equal to it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<IpNet>,
        /// Only prefixes from this source: `config`, `live` or `route`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// A private domain's prefixes instead of the public ones (`public`:
        /// the public domain, as without it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`Changed`].
    PrefixAdd { spec: PrefixSpec },
    /// Reply: [`Changed`].
    PrefixDel {
        prefix: IpNet,
        /// A private domain's name: its entry for the prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Registers and unregisters prefixes as one transaction: validated
    /// whole, applied in one change and recorded once, or not at all. The
    /// request line is followed by `count` lines, one [`BatchItem`] each
    /// (at most [`MAX_BATCH`]). Reply: [`Changed`].
    PrefixBatch {
        count: usize,
        /// The items, read from the lines after the request (never part
        /// of the request line itself).
        #[serde(skip)]
        items: Vec<BatchItem>,
    },
    /// Reply: [`PrefixList`]: every registered prefix that passes the
    /// filters (all given must match), the `top` busiest when given.
    PrefixList {
        /// Only the N prefixes with the most packets (ties: list order).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top: Option<usize>,
        /// Only this registration's prefixes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration: Option<String>,
        /// Only prefixes inside this network (or equal to it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<IpNet>,
        /// Only prefixes from this source: `config`, `live` or `route`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// A private domain's prefixes instead of the public ones (`public`:
        /// the public domain, as without it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`Prefix`].
    PrefixShow {
        prefix: IpNet,
        /// A private domain's name: its prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`Lookup`].
    PrefixLookup {
        address: IpAddr,
        /// A private domain's name: its prefixes instead of the public
        /// ones (absent or `public`: the public domain).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`PopList`].
    PopList {
        /// Only this domain's PoPs (`public` or a private domain's name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`Changed`].
    PopDrain { pop: String },
    /// Reply: [`Changed`].
    PopUndrain { pop: String },
    /// Reply: [`PolicyList`].
    PolicyList {
        /// Only this domain's policies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// Reply: [`PolicyShow`].
    PolicyShow { policy: String },
    /// The most recent `limit` events (protection, PoP state, fallback).
    /// Reply: [`Events`].
    Events {
        #[serde(default = "default_limit")]
        limit: usize,
    },
    /// RTT percentiles per PoP over the last `window_seconds`.
    /// Reply: [`Latency`].
    ReportLatency {
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
    /// Customer round-trip times (`[latency]`) over the last
    /// `since_seconds`, one row per prefix, registration or region (`by`).
    /// Reply: [`Customers`].
    ReportCustomers {
        #[serde(default = "default_by")]
        by: GroupBy,
        #[serde(default = "default_since")]
        since_seconds: u64,
    },
    /// Re-read the config file; `force` applies it even when it drops more
    /// of the file's prefixes than `reload_max_shrink_percent`.
    /// Reply: [`Changed`].
    ConfigReload {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Reply: [`LiveList`]: every live change.
    LiveList {},
    /// Drops the live changes of `networks` (or every one with `all`) from
    /// the overlay, as one change: each network goes back to what the
    /// config file says (its entry, or nothing). Reply: [`Changed`], with
    /// `cleared`.
    LiveClear {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        networks: Vec<IpNet>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    /// The config file as edged last applied it, with the live changes on
    /// top of it. Reply: [`ConfigShow`].
    ConfigShow {},
    /// Reply: [`TornDown`].
    Teardown {},
    /// Every path the BMP-monitored peers announce for `prefix` and its
    /// more-specifics (route analytics). Reply: [`RoutePaths`].
    RoutesShow { prefix: IpNet },
    /// Route anomalies: the active ones and the cleared ones edged keeps;
    /// with `since` (Unix seconds), only those raised or cleared since.
    /// Reply: [`Anomalies`].
    RoutesAnomalies {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<f64>,
    },
}

impl Request {
    /// Whether the request only reads (what a member of the socket's
    /// `read_group` may send); every other changes edged.
    pub fn reads_only(&self) -> bool {
        match self {
            Request::Status {}
            | Request::Stats { .. }
            | Request::PrefixList { .. }
            | Request::PrefixShow { .. }
            | Request::PrefixLookup { .. }
            | Request::PopList { .. }
            | Request::PolicyList { .. }
            | Request::PolicyShow { .. }
            | Request::Events { .. }
            | Request::ReportLatency { .. }
            | Request::ReportCustomers { .. }
            | Request::LiveList {}
            | Request::ConfigShow {}
            | Request::RoutesShow { .. }
            | Request::RoutesAnomalies { .. } => true,
            Request::PrefixAdd { .. }
            | Request::PrefixDel { .. }
            | Request::PrefixBatch { .. }
            | Request::PopDrain { .. }
            | Request::PopUndrain { .. }
            | Request::ConfigReload { .. }
            | Request::LiveClear { .. }
            | Request::Teardown {} => false,
        }
    }

    /// The command's name on the wire (`prefix_add`).
    pub fn command(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v["command"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

fn default_limit() -> usize {
    50
}

fn default_window() -> u64 {
    300
}

fn default_by() -> GroupBy {
    GroupBy::Registration
}

fn default_since() -> u64 {
    900
}

/// How `report_customers` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Prefix,
    Registration,
    Region,
}

impl From<GroupBy> for crate::latency::report::GroupBy {
    fn from(g: GroupBy) -> Self {
        match g {
            GroupBy::Prefix => Self::Prefix,
            GroupBy::Registration => Self::Registration,
            GroupBy::Region => Self::Region,
        }
    }
}

/// The request as one line (no newline), with the protocol version.
pub fn encode(request: &Request) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'a> {
        protocol: u32,
        #[serde(flatten)]
        request: &'a Request,
    }
    serde_json::to_vec(&Line {
        protocol: PROTOCOL,
        request,
    })
    .expect("a request encodes")
}

/// A request line edged does not act on, and the reply it gets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub kind: ErrorKind,
    pub message: String,
}

impl Refused {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Decodes one request line: the version first (a request of another
/// version gets kind `version` whatever else it says), then the request.
pub fn decode(line: &[u8]) -> Result<Request, Refused> {
    if line.len() > MAX_REQUEST {
        return Err(Refused::new(
            ErrorKind::Invalid,
            format!("request longer than {MAX_REQUEST} bytes"),
        ));
    }
    let malformed =
        |e: serde_json::Error| Refused::new(ErrorKind::Invalid, format!("malformed request: {e}"));
    let mut object: serde_json::Map<String, Value> =
        serde_json::from_slice(line).map_err(malformed)?;
    match object.remove(PROTOCOL_FIELD) {
        None => {
            return Err(Refused::new(
                ErrorKind::Version,
                format!(
                    "the request has no \"{PROTOCOL_FIELD}\" field; edged speaks protocol {PROTOCOL} (send \"{PROTOCOL_FIELD}\":{PROTOCOL})"
                ),
            ));
        }
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL)) => {}
        Some(v) => {
            return Err(Refused::new(
                ErrorKind::Version,
                format!("the request speaks protocol {v}; edged speaks protocol {PROTOCOL} only"),
            ));
        }
    }
    Request::deserialize(Value::Object(object)).map_err(malformed)
}

/// Why a request failed, as a word scripts can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input: a malformed request, an invalid config or prefix.
    Invalid,
    /// No such prefix, PoP or policy.
    NotFound,
    /// A map is full (the message names it and its limit).
    MapFull,
    /// Anything else (a write failed, edged is stopping).
    Failed,
    /// The peer may not use the socket (root only).
    Denied,
    /// The request's protocol version is missing or not edged's.
    Version,
    /// The control socket is at its connection limit: the connection was
    /// closed without reading a request.
    Busy,
}

/// What edged answers: `ok` with `data` (the verb's reply type), or an
/// `error` message and its `kind` (then `data` is null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response<T = Reply> {
    /// The protocol edged speaks.
    pub protocol: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    #[serde(default = "none")]
    pub data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Response<T> {
    pub fn ok(data: T) -> Self {
        Self {
            protocol: PROTOCOL,
            ok: true,
            error: None,
            kind: None,
            data: Some(data),
        }
    }

    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            protocol: PROTOCOL,
            ok: false,
            error: Some(message.into()),
            kind: Some(kind),
            data: None,
        }
    }
}

impl<T> From<Refused> for Response<T> {
    fn from(r: Refused) -> Self {
        Self::error(r.kind, r.message)
    }
}

/// Decodes a reply line as the reply to a request whose reply type is `T`:
/// the version first (a reply without it or of another version is an
/// error naming both versions), then the rest.
pub fn decode_reply<'a, T: Deserialize<'a>>(line: &'a str) -> anyhow::Result<Response<T>> {
    use anyhow::{Context as _, bail};
    let version = |v: &Value| {
        format!(
            "edged speaks protocol {v}; this edgectl speaks protocol {PROTOCOL} only (use the edgectl that came with edged)"
        )
    };
    // Typed first: a reply of a million rows is read once, never built as a
    // tree of values. A reply without a version does not decode; the
    // version and error are then read on their own, for the message.
    let typed = match serde_json::from_str::<Response<T>>(line) {
        Ok(r) if r.protocol != PROTOCOL => bail!(version(&Value::from(r.protocol))),
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        protocol: Option<Value>,
        #[serde(default)]
        error: Option<Value>,
    }
    let head: Head = serde_json::from_str(line).context("edged's reply is not valid JSON")?;
    match head.protocol {
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL)) => {}
        Some(v) => bail!(version(&v)),
        None => {
            let said = head
                .error
                .as_ref()
                .and_then(Value::as_str)
                .map(|e| format!(" (it said: {e})"))
                .unwrap_or_default();
            bail!(
                "edged's reply has no protocol version: edged predates protocol {PROTOCOL}, the one this edgectl speaks (use the edgectl that came with edged){said}"
            )
        }
    }
    Err(anyhow::Error::new(typed).context("edged's reply does not match the protocol"))
}

/// Any verb's reply, as edged sends it (the verb fixes which; a reader
/// decodes the verb's own type).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Status(Box<Status>),
    Stats(Stats),
    PrefixList(PrefixList),
    /// A [`PrefixList`] straight from the view (edged's side).
    PrefixRows(PrefixRows),
    Prefix(Prefix),
    Lookup(Box<Lookup>),
    Changed(Changed),
    PopList(PopList),
    PolicyList(PolicyList),
    PolicyShow(PolicyShow),
    Events(Events),
    Latency(Latency),
    Customers(Customers),
    LiveList(LiveList),
    ConfigShow(Box<ConfigShow>),
    TornDown(TornDown),
    RoutePaths(RoutePaths),
    Anomalies(Anomalies),
}

/// `status`: the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub backbone_exit: Option<String>,
    /// Route analytics: the BMP listener, what it ingested, the prefixes
    /// held; null when `[bmp]` is off (or from an older edged).
    #[serde(default)]
    pub bmp: Option<Bmp>,
    /// The config file's path.
    pub config: PathBuf,
    pub default_action: String,
    /// PoPs drained by the operator.
    pub drained: Vec<String>,
    /// Bumped on every applied change.
    pub generation: u64,
    /// Changes of the interfaces the config names since edged started, by
    /// interface and kind (`vanished`, `returned`, `replaced`,
    /// `mac_changed`, `mtu_changed`). Absent from an older edged: empty.
    #[serde(default)]
    pub interface_events: BTreeMap<String, BTreeMap<String, u64>>,
    /// Ports whose XDP link edged found gone and attached again.
    #[serde(default)]
    pub link_repairs: LinkRepairs,
    pub maps: Maps,
    /// Restart-only keys (`pin_path`, `socket_path`, `state_path`,
    /// `metrics_address`, `xdp_mode`, `limits.prefixes_v4`,
    /// `limits.prefixes_v6`) the config sets otherwise than edged runs
    /// with: they take effect at the next restart. The paths in this reply
    /// are the running ones.
    #[serde(default)]
    pub pending_restart: Vec<String>,
    pub pid: u32,
    /// The pin directory edged runs with (what teardown removes).
    pub pin_path: PathBuf,
    /// Whether the pins outlive edged.
    pub pins: Pins,
    /// Policies in the config.
    pub policies: usize,
    /// PoPs in the config.
    pub pops: usize,
    pub ports: Vec<Port>,
    pub prefixes: PrefixCounts,
    pub routes: Routes,
    pub socket_path: PathBuf,
    pub state_path: PathBuf,
    pub transit_exit: Option<String>,
    pub uptime_seconds: u64,
    /// edged's version (the crate's, not the protocol's).
    pub version: String,
    /// Every port a PoP leaves through that is a veth, and its peer.
    pub veth_peers: Vec<VethPeer>,
    /// What keeps edged from doing what it says, for people: private pins,
    /// veth peers that drop redirected frames (empty when all is well).
    pub warnings: Vec<String>,
}

/// The ports' XDP links edged found gone (a deleted link pin detaches
/// XDP from its port) and attached again (`status.link_repairs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkRepairs {
    /// The most recent repairs (at most 8), oldest first.
    pub recent: Vec<LinkRepair>,
    /// Repairs since edged started.
    pub total: u64,
}

/// One repaired link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRepair {
    /// What edged found.
    pub found: String,
    pub port: String,
    /// Seconds since the Unix epoch.
    pub time: f64,
}

/// Where the pin directory is visible from (`status.pins`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pins {
    /// What edged compared (mount namespaces, the directory).
    pub detail: String,
    /// `shared`: the pins outlive edged; `private`: only edged's mount
    /// namespace sees them, they vanish when it exits (`--private-pins`);
    /// `unknown`: edged could not tell.
    pub scope: String,
}

/// An egress veth port's peer, the end that receives what XDP redirects
/// into the port (`status.veth_peers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VethPeer {
    /// edged attached its XDP_PASS program to the peer (`--veth-peer-pass`).
    pub edged_pass: bool,
    /// GRO on the peer; null when edged could not read it.
    pub gro: Option<bool>,
    /// The peer's network namespace (`ip netns` name, `pid N` or `id N`);
    /// null when it is edged's own.
    pub netns: Option<String>,
    /// The peer's name; null when edged could not read it.
    pub peer: Option<String>,
    pub port: String,
    /// Why `receives` says what it says, and what to do about it.
    pub reason: String,
    /// Whether frames XDP redirects into the port reach the peer; null
    /// when edged cannot tell.
    pub receives: Option<bool>,
    pub up: Option<bool>,
    /// The peer's XDP program: `none`, `native`, `generic`, `offload`; null
    /// when edged could not read it.
    pub xdp: Option<String>,
}

/// Registered prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrefixCounts {
    /// Added with `prefix add`.
    pub live: usize,
    /// Config prefixes removed with `prefix del`.
    pub removed_live: usize,
    pub total: usize,
}

/// The fill of the maps that fill up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Maps {
    pub policies: Fill,
    pub pops: Fill,
    pub ports: Fill,
    pub prefixes_v4: Fill,
    pub prefixes_v6: Fill,
}

impl Maps {
    /// (name, fill), in the JSON's order.
    pub fn rows(&self) -> [(&'static str, Fill); 5] {
        [
            ("policies", self.policies),
            ("pops", self.pops),
            ("ports", self.ports),
            ("prefixes_v4", self.prefixes_v4),
            ("prefixes_v6", self.prefixes_v6),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub limit: u64,
    pub used: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// The interface is gone (deleted, or renamed away) since edged took
    /// it: no map entry, nothing taken from or sent to it (`ifindex` 0).
    #[serde(default)]
    pub absent: bool,
    /// `public`, or the port's private domain.
    #[serde(default = "public")]
    pub domain: String,
    pub id: u32,
    pub ifindex: u32,
    pub interface: String,
    /// The port's name: the interface's unless tagged (`eth0.100`) or
    /// named in the config.
    #[serde(default)]
    pub name: String,
    /// `peering`, `backbone`, `transit`, ...
    pub role: String,
    /// The port's VLAN tags, outermost first; empty: untagged.
    #[serde(default)]
    pub vlan: Vec<u16>,
}

/// The public domain's name, what an older edged's replies mean.
fn public() -> String {
    "public".into()
}

impl From<&desired::PortView> for Port {
    fn from(p: &desired::PortView) -> Self {
        Self {
            absent: p.absent,
            domain: p.domain.clone(),
            id: p.id,
            ifindex: p.ifindex,
            interface: p.interface.clone(),
            name: p.name.clone(),
            role: p.role.into(),
            vlan: p.vlan.clone(),
        }
    }
}

/// Route sync figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Routes {
    /// Routes left out because they lie in a special-purpose range no
    /// router forwards (loopback, multicast, link-local, ...). Absent
    /// from an older edged: 0.
    #[serde(default)]
    pub martians: usize,
    /// Full dumps (the first included; more mean overruns or table changes).
    pub resyncs: u64,
    /// Routes in the followed tables (best per table and network).
    pub routes: usize,
    /// Routes left out because a prefix map was full.
    pub skipped: usize,
}

impl From<desired::RoutesView> for Routes {
    fn from(r: desired::RoutesView) -> Self {
        Self {
            martians: r.martians,
            resyncs: r.resyncs,
            routes: r.routes,
            skipped: r.skipped,
        }
    }
}

/// `stats`: counters since the program was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// By action name.
    pub actions: BTreeMap<String, Count>,
    pub generation: u64,
    pub pops: Vec<PopCount>,
    pub ports: Vec<PortCount>,
    /// Every registered prefix with a counter slot of its own that passes
    /// the request's filters (the `top` busiest, busiest first), or the
    /// one asked for.
    pub prefixes: Vec<PrefixCount>,
    /// By reason name.
    pub reasons: BTreeMap<String, Count>,
    /// The counter the prefixes beyond the 65,535 counter slots share
    /// (`prefixes`: how many of them pass the filters); absent when every
    /// prefix has a slot of its own, or with `prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedCount>,
}

/// The counter of the prefixes without a counter slot of their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedCount {
    pub bytes: u64,
    pub packets: u64,
    /// Prefixes counted in it.
    pub prefixes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub bytes: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixCount {
    pub bytes: u64,
    pub packets: u64,
    pub prefix: IpNet,
    pub registration: String,
    /// The prefix has no counter slot of its own (beyond 65,535 prefixes):
    /// the figures are the shared counter's. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    pub source: String,
}

/// Which registered prefixes a list or stats request wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixFilter {
    pub registration: Option<String>,
    pub within: Option<IpNet>,
    pub source: Option<String>,
}

impl PrefixFilter {
    /// The source words a filter takes.
    pub const SOURCES: [&'static str; 3] = ["config", "live", "route"];

    /// A filter, or why not (an unknown source).
    pub fn new(
        registration: Option<String>,
        within: Option<IpNet>,
        source: Option<String>,
    ) -> Result<Self, String> {
        if let Some(s) = &source
            && !Self::SOURCES.contains(&s.as_str())
        {
            return Err(format!(
                "source {s:?}: config, live or route (a route table's prefixes)"
            ));
        }
        Ok(Self {
            registration,
            within: within.map(|n| n.trunc()),
            source,
        })
    }

    /// Whether `p` passes.
    pub fn matches(&self, p: &desired::PrefixView) -> bool {
        self.registration
            .as_deref()
            .is_none_or(|r| *p.registration == *r)
            && self.within.is_none_or(|w| w.contains(&p.prefix))
            && self.source.as_deref().is_none_or(|s| {
                matches!(
                    (s, p.source),
                    ("config", crate::plan::Origin::Config)
                        | ("live", crate::plan::Origin::Live)
                        | ("route", crate::plan::Origin::Route { .. })
                )
            })
    }

    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopCount {
    pub bytes: u64,
    pub packets: u64,
    pub pop: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortCount {
    pub bytes: u64,
    /// `public`, or the port's private domain.
    #[serde(default = "public")]
    pub domain: String,
    pub packets: u64,
    /// The port's name (the interface's unless tagged or named).
    pub port: String,
    pub role: String,
}

/// `prefix_show`: one registered prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prefix {
    pub counter_slot: u32,
    pub dscp: Option<u8>,
    pub policy: Option<String>,
    /// `microsoft` or `internet`.
    pub preference: String,
    pub prefix: IpNet,
    pub protect: Vec<String>,
    pub registration: String,
    /// `config`, `live` or `route table N`.
    pub source: String,
}

impl From<&desired::PrefixView> for Prefix {
    fn from(p: &desired::PrefixView) -> Self {
        Self {
            counter_slot: p.counter_slot,
            dscp: p.dscp,
            policy: p.policy.as_deref().map(str::to_string),
            preference: p.preference.into(),
            prefix: p.prefix,
            protect: p.protect.clone(),
            registration: p.registration.to_string(),
            source: p.source.to_string(),
        }
    }
}

/// `prefix_list`: every registered prefix.
pub type PrefixList = Vec<Prefix>;

/// A [`PrefixList`] as edged sends it: rows of a view snapshot, serialized
/// from the view as they go (at a million prefixes, no copy of the list is
/// made, and the connection writes it in pieces: [`PrefixRows::pieces`]).
#[derive(Debug, Clone)]
pub struct PrefixRows {
    pub view: std::sync::Arc<desired::View>,
    /// Indices into the view's prefixes, in order; `None`: all of them.
    pub rows: Option<Vec<u32>>,
}

impl PartialEq for PrefixRows {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A [`Prefix`] borrowed from the view: the same JSON.
#[derive(Serialize)]
pub(crate) struct PrefixRef<'a> {
    counter_slot: u32,
    dscp: Option<u8>,
    policy: Option<&'a str>,
    preference: &'a str,
    prefix: IpNet,
    protect: &'a [String],
    registration: &'a str,
    source: crate::plan::Origin,
}

impl<'a> From<&'a desired::PrefixView> for PrefixRef<'a> {
    fn from(p: &'a desired::PrefixView) -> Self {
        Self {
            counter_slot: p.counter_slot,
            dscp: p.dscp,
            policy: p.policy.as_deref(),
            preference: p.preference,
            prefix: p.prefix,
            protect: &p.protect,
            registration: &p.registration,
            source: p.source,
        }
    }
}

impl PrefixRows {
    pub fn iter(&self) -> Box<dyn Iterator<Item = &desired::PrefixView> + Send + '_> {
        match &self.rows {
            None => Box::new(self.view.prefixes.iter()),
            Some(rows) => Box::new(rows.iter().map(|&i| &self.view.prefixes[i as usize])),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
            .as_ref()
            .map_or(self.view.prefixes.len(), Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The JSON array in pieces of about `bytes` each: the same bytes as
    /// serializing the whole.
    pub fn pieces(&self, bytes: usize) -> impl Iterator<Item = Vec<u8>> + Send + '_ {
        let mut rows = self.iter().peekable();
        let mut first = true;
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut out = Vec::with_capacity(bytes + 512);
            if first {
                out.push(b'[');
                first = false;
            }
            while out.len() < bytes {
                let Some(p) = rows.next() else { break };
                encode_row(&mut out, p);
                if rows.peek().is_some() {
                    out.push(b',');
                }
            }
            if rows.peek().is_none() {
                out.push(b']');
                done = true;
            }
            Some(out)
        })
    }
}

/// Writes `net` as its `Display` does (`198.51.100.0/24`,
/// `2001:db8::/32`: RFC 5952, the longest run of two or more zero groups
/// as `::`), several times faster: a million prefixes are listed.
pub fn write_net(out: &mut Vec<u8>, net: &IpNet) {
    let mut n = itoa::Buffer::new();
    match net {
        IpNet::V4(v4) => {
            for (i, octet) in v4.addr().octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(n.format(*octet).as_bytes());
            }
        }
        IpNet::V6(v6) => {
            let addr = v6.addr();
            if addr.to_ipv4_mapped().is_some() {
                use std::io::Write as _;
                let _ = write!(out, "{addr}");
            } else {
                let groups = addr.segments();
                // The longest run of zero groups (the first of equals), if
                // two or more long.
                let (mut best, mut best_len, mut at, mut len) = (0, 0, 0, 0);
                for (i, &g) in groups.iter().enumerate() {
                    if g == 0 {
                        if len == 0 {
                            at = i;
                        }
                        len += 1;
                        if len > best_len {
                            (best, best_len) = (at, len);
                        }
                    } else {
                        len = 0;
                    }
                }
                let hex = |out: &mut Vec<u8>, g: u16| {
                    const DIGITS: &[u8; 16] = b"0123456789abcdef";
                    let mut started = false;
                    for shift in [12, 8, 4, 0] {
                        let d = (g >> shift) & 0xf;
                        if d != 0 || started || shift == 0 {
                            out.push(DIGITS[d as usize]);
                            started = true;
                        }
                    }
                };
                let mut i = 0;
                while i < 8 {
                    if best_len >= 2 && i == best {
                        out.extend_from_slice(b"::");
                        i += best_len;
                        continue;
                    }
                    if i > 0 && !(best_len >= 2 && i == best + best_len) {
                        out.push(b':');
                    }
                    hex(out, groups[i]);
                    i += 1;
                }
            }
        }
    }
    out.push(b'/');
    out.extend_from_slice(n.format(net.prefix_len()).as_bytes());
}

/// `s` as a JSON string, as serde_json writes it (copied as it is when
/// nothing needs escaping, the common case).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string encodes");
    }
}

/// A row as [`PrefixRef`] serializes it (compact, the same bytes), written
/// by hand: a million rows take a fifth of the time serde's serializer
/// takes, and `prefix_list` is that long.
fn encode_row(out: &mut Vec<u8>, p: &desired::PrefixView) {
    let string = write_json_str;
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"counter_slot\":");
    out.extend_from_slice(n.format(p.counter_slot).as_bytes());
    out.extend_from_slice(b",\"dscp\":");
    match p.dscp {
        Some(d) => out.extend_from_slice(n.format(d).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"policy\":");
    match &p.policy {
        Some(policy) => string(out, policy),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"preference\":");
    string(out, p.preference);
    out.extend_from_slice(b",\"prefix\":\"");
    write_net(out, &p.prefix);
    out.extend_from_slice(b"\",\"protect\":[");
    for (i, port) in p.protect.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, port);
    }
    out.extend_from_slice(b"],\"registration\":");
    string(out, &p.registration);
    out.extend_from_slice(b",\"source\":");
    match p.source {
        crate::plan::Origin::Config => out.extend_from_slice(b"\"config\""),
        crate::plan::Origin::Live => out.extend_from_slice(b"\"live\""),
        crate::plan::Origin::Route { table } => {
            out.extend_from_slice(b"\"route table ");
            out.extend_from_slice(n.format(table).as_bytes());
            out.push(b'"');
        }
    }
    out.push(b'}');
}

impl Serialize for PrefixRows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for p in self.iter() {
            seq.serialize_element(&PrefixRef::from(p))?;
        }
        seq.end()
    }
}

/// `prefix_lookup`: what a packet to or from the address gets now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lookup {
    Registered(Registered),
    Unregistered(Unregistered),
}

/// An address a registered prefix covers (`"registered": true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub address: IpAddr,
    pub counter_slot: u32,
    /// `public`, or the private domain looked up.
    #[serde(default = "public")]
    pub domain: String,
    /// Null: the packet's DSCP is kept.
    pub dscp: Option<u8>,
    /// The exit the customer's traffic takes: the backbone exit
    /// (`microsoft`) or the transit exit (`internet`), by its policy
    /// (`pop:NAME` for an exit named by a PoP); null when not configured.
    pub from_customer: Option<String>,
    /// Where the exit sends the customer's flows now, by share of its
    /// table: its PoPs that are up, its fallback's while none is, or
    /// `none (to the kernel)`.
    pub from_customer_pops: Vec<Share>,
    /// The selection table's key toward the customer (for `internet`, the
    /// transit exit's policy).
    pub policy: Option<String>,
    pub preference: String,
    /// The longest registered prefix that covers the address.
    pub prefix: Option<IpNet>,
    /// Peering ports the prefix is registered on (empty: any).
    pub protect: Vec<String>,
    pub registered: bool,
    pub registration: Option<String>,
    pub source: Option<String>,
    /// Where flows toward the customer go, by share of the table.
    pub toward_customer: Vec<Share>,
}

/// An address no registered prefix covers (`"registered": false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unregistered {
    pub address: IpAddr,
    /// What the program does with such traffic: the config's
    /// `default_action` in the public domain, `drop` in a private one.
    pub default_action: String,
    /// `public`, or the private domain looked up.
    #[serde(default = "public")]
    pub domain: String,
    pub registered: bool,
}

/// One PoP's share of a selection table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The PoP's name, or `none (to the kernel)`.
    pub pop: Option<String>,
    /// `slots` / the table's size.
    pub share: f64,
    pub slots: u64,
}

/// `prefix_add`, `prefix_del`, `pop_drain`, `pop_undrain`, `config_reload`:
/// what the change wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changed {
    pub changes: Changes,
    /// `live_clear` only: the networks whose live changes were dropped.
    /// Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleared: Vec<IpNet>,
    /// `config_reload` only: the restart-only keys the reloaded config sets
    /// otherwise than edged runs with (as in `status`); they wait for the
    /// next restart, everything else was applied. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
}

/// Map entries written and removed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub removed: usize,
    pub written: usize,
}

impl From<desired::Changes> for Changed {
    fn from(c: desired::Changes) -> Self {
        Self {
            changes: Changes {
                removed: c.removed,
                written: c.written,
            },
            pending_restart: Vec::new(),
            cleared: Vec::new(),
        }
    }
}

/// A PoP and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pop {
    /// `public`, or the private domain of its port.
    #[serde(default = "public")]
    pub domain: String,
    pub drained: bool,
    pub encap: Vec<String>,
    pub health: Health,
    pub id: u32,
    pub interface: String,
    /// The next hop: `ADDRESS (MAC)`.
    pub mac: String,
    /// The egress link's MTU the program checks (`null` from an edged that
    /// does not check it).
    #[serde(default)]
    pub mtu: Option<u32>,
    pub name: String,
    /// The port it was given by (`port = "NAME"`), if any.
    #[serde(default)]
    pub port: Option<String>,
    /// The probe, described (`icmp 198.51.100.6 every 1s`), if any.
    pub probe: Option<String>,
    pub region: Option<String>,
    /// The VLAN tags of frames sent to it: `keep` (as received),
    /// `untagged`, `set 100` / `set 300.20`, `push 300`.
    #[serde(default = "keep")]
    pub vlan: String,
}

fn keep() -> String {
    "keep".into()
}

impl Pop {
    pub fn new(p: &desired::PopView, h: &desired::PopHealthView) -> Self {
        Self {
            domain: p.domain.clone(),
            drained: p.drained,
            encap: p.encap.clone(),
            health: h.into(),
            id: p.id,
            interface: p.interface.clone(),
            mac: p.mac.clone(),
            mtu: Some(p.mtu),
            name: p.name.clone(),
            port: p.port.clone(),
            probe: p.probe.clone(),
            region: p.region.clone(),
            vlan: p.vlan.clone(),
        }
    }
}

/// A PoP's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Why the PoP is down whatever its probes say: `interface bb0 is
    /// gone`, `no carrier on bb0`, `next hop 198.51.100.9 does not resolve`.
    #[serde(default)]
    pub down_reason: Option<String>,
    /// Share of the recent probes that failed.
    pub loss: f64,
    pub min_rtt_ms: Option<f64>,
    pub pop: String,
    pub probes: u64,
    /// Smoothed RTT, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Seconds since the state last changed.
    pub since_seconds: Option<f64>,
    /// `up`, `down`, `drained`, `up (no probe)`, `up (not probed yet)`.
    pub state: String,
    /// Healthy and not drained.
    pub up: bool,
}

impl From<&desired::PopHealthView> for Health {
    fn from(h: &desired::PopHealthView) -> Self {
        Self {
            down_reason: h.down_reason.clone(),
            loss: h.loss,
            min_rtt_ms: h.min_rtt_ms,
            pop: h.pop.clone(),
            probes: h.probes,
            rtt_ms: h.rtt_ms,
            since_seconds: h.since_seconds,
            state: h.state.into(),
            up: h.up,
        }
    }
}

/// `pop_list`: every PoP, in config order.
pub type PopList = Vec<Pop>;

/// A policy, its members and its selection tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `public`, or the private domain of its PoPs.
    #[serde(default = "public")]
    pub domain: String,
    pub members: Vec<Member>,
    pub method: String,
    pub name: String,
    pub tables: Vec<Table>,
}

impl From<&desired::PolicyView> for Policy {
    fn from(p: &desired::PolicyView) -> Self {
        Self {
            domain: p.domain.clone(),
            members: p
                .members
                .iter()
                .map(|m| Member {
                    member: m.member.clone(),
                    priority: m.priority,
                    up: m.up,
                    weight: m.weight,
                })
                .collect(),
            method: p.method.into(),
            name: p.name.clone(),
            tables: p
                .tables
                .iter()
                .map(|t| Table {
                    fallback: t.fallback.map(str::to_string),
                    id: t.id,
                    key: t.key.clone(),
                    shares: t.shares.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// `pop:NAME` or `policy:NAME`.
    pub member: String,
    pub priority: u32,
    /// For PoPs: healthy and not drained.
    pub up: bool,
    pub weight: u32,
}

/// A selection table as the config makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Set while no member is up and the fallback fills the table.
    pub fallback: Option<String>,
    pub id: u32,
    /// policy [region] [subnet member].
    pub key: String,
    /// Slots per PoP name (`none` = to the kernel).
    pub shares: Vec<(String, u32)>,
}

/// `policy_list`: every policy.
pub type PolicyList = Vec<Policy>;

/// `policy_show`: a policy and what its tables in the kernel hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyShow {
    /// The first 20 prefixes that use the policy.
    pub first_prefixes: Vec<String>,
    pub policy: Policy,
    /// Prefixes that use the policy.
    pub prefixes: usize,
    /// Slots per selection table.
    pub slots: usize,
    /// The first table's shares.
    pub table: Vec<Share>,
    pub tables: Vec<KernelTable>,
}

/// A selection table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelTable {
    pub fallback: Option<String>,
    pub id: u32,
    pub key: String,
    pub table: Vec<Share>,
}

/// `events`: the most recent events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    /// Oldest first.
    pub events: Vec<Event>,
    /// Protection events received since edged started.
    pub received: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `protection`, `pop`, `fallback`, `route` (route analytics), ...
    pub kind: String,
    pub message: String,
    /// Seconds since the Unix epoch.
    pub time: f64,
}

/// The BMP listener and what it has ingested (in `routes_show` and
/// `routes_anomalies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bmp {
    /// The prefixes held to their registered peering ports while a
    /// hijack of them is active (`hold_on_hijack`). Absent from an older
    /// edged: empty.
    #[serde(default)]
    pub held: Vec<analytics::hold::Held>,
    /// `[bmp] listen` as edged runs it; `None`: off.
    pub listen: Option<String>,
    pub totals: analytics::Totals,
}

/// `routes_show`: the paths for a prefix and its more-specifics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePaths {
    pub bmp: Bmp,
    /// By prefix (shortest first), peer, RIB.
    pub paths: Vec<analytics::PathRow>,
    pub prefix: IpNet,
    /// The registered prefix covering `prefix` and its registration, if
    /// one does (only those and their more-specifics are kept).
    pub registered: Option<IpNet>,
    pub registration: Option<String>,
}

/// `routes_anomalies`: route anomalies, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomalies {
    pub active: Vec<analytics::Anomaly>,
    pub bmp: Bmp,
    /// The most recent cleared ones edged keeps (up to 1,000).
    pub cleared: Vec<analytics::Anomaly>,
}

/// `report_latency`: RTT percentiles per PoP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub pops: Vec<PopLatency>,
    pub window_seconds: u64,
}

/// One PoP's RTTs, milliseconds (null without samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopLatency {
    pub max_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub pop: String,
    pub samples: usize,
}

/// `report_customers`: customer round-trip times, edge ↔ customer host
/// (docs/monitoring.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customers {
    pub by: GroupBy,
    /// Whether customer latency is measured (`[latency]` in the config).
    pub enabled: bool,
    /// The kernel's sampling counters since the maps were created
    /// (`handshake_sent`, `handshake_samples`, `retransmitted`,
    /// `ambiguous`, `ts_sent`, `ts_samples`, `flows`, `flow_failed`,
    /// `hist_full`).
    pub counters: BTreeMap<String, u64>,
    /// Flows followed now, and the flow table's size (`[limits] rtt_flows`).
    pub flows: u64,
    pub flow_limit: u64,
    /// Groups (`registration NAME`, `region NAME`) degraded now.
    pub degraded: Vec<String>,
    /// How often edged reads the kernel's histograms (`period_ms`).
    pub period_seconds: f64,
    /// The span the rows cover: `since_seconds` as asked, cut to what
    /// edged has kept (`retain_minutes`) and been running.
    pub covered_seconds: f64,
    pub since_seconds: u64,
    pub rows: Vec<CustomerRow>,
}

/// One group's round-trip times, milliseconds (null without samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRow {
    /// The prefix, registration or region (`(none)`: prefixes without a
    /// region; `(shared)`: prefixes without a counter slot of their own).
    pub key: String,
    pub samples: u64,
    pub min_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The objective (p90) the row is held to, if any.
    pub objective_ms: Option<f64>,
    /// The share (0-1) of the samples above the objective.
    pub above_objective: Option<f64>,
    /// Whether the group is degraded now (registration and region rows
    /// with an objective; null otherwise).
    pub degraded: Option<bool>,
}

/// `live_list`: every live change made with edgectl on top of the config
/// file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveList {
    /// Live entries in the order they were made (a network changed again
    /// moves to the end), then the file's networks removed.
    pub changes: Vec<LiveChange>,
}

/// One network's live change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveChange {
    /// Who made it (`root (uid 0)`); null when not known.
    pub by: Option<String>,
    /// `added`: a network the config file does not register; `replaced`:
    /// the file's entry for the network, replaced whole by `spec`;
    /// `removed`: the file's entry, removed.
    pub kind: String,
    pub network: IpNet,
    /// The live entry, the keys `prefix_add` was given; null for `removed`.
    pub spec: Option<PrefixSpec>,
    /// The private domain of the change; absent for the public domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Seconds since the Unix epoch; null when not known (made by an edged
    /// that did not record it).
    pub time: Option<f64>,
}

/// `config_show`: what edged runs: the config file's text as it was last
/// applied, and the live changes on top of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigShow {
    /// As in `live_list`.
    pub changes: Vec<LiveChange>,
    /// The config file's path.
    pub config: PathBuf,
    pub generation: u64,
    /// The file's text as edged last read and applied it (the file may
    /// have changed since: a reload reads it again).
    pub text: String,
}

impl ConfigShow {
    /// The live changes as the overlay edged merges onto the file.
    pub fn live(&self) -> crate::config::Live {
        let mut live = crate::config::Live::default();
        for c in &self.changes {
            match (&c.spec, &c.domain) {
                (Some(spec), _) => live.added.push(spec.clone()),
                (None, Some(domain)) => live.removed_private.push(crate::config::DomainNet {
                    domain: domain.clone(),
                    network: c.network,
                }),
                (None, None) => live.removed.push(c.network),
            }
        }
        live
    }
}

/// `teardown`: the pin directory removed; edged exits after replying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TornDown {
    pub torn_down: PathBuf,
}
