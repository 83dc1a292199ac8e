//! The validated model every layer speaks: ports, PoPs, policies, prefixes
//! and route sources with names resolved to ids and strings parsed. It knows
//! nothing of TOML (that is `config`) nor of maps (that is `dataplane`).

mod martian;
mod probe;

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use edge_common::limits;
use ipnet::IpNet;
pub use martian::martian;
pub use probe::{Probe, ProbeKind};
use serde::Deserialize;

/// Which prefix counters the metrics endpoint serves (`[daemon]`
/// `prefix_metrics`): their series are what a million prefixes multiply.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixMetrics {
    /// None.
    Off,
    /// One pair of series per registration (summed over its prefixes).
    #[default]
    Registration,
    /// Per registration, and one pair per prefix with a counter slot of
    /// its own (up to 65,535, and `other`).
    Prefix,
}

/// How a reload reads the config file (`[daemon]` `reload_settle_ms` and
/// `reload_max_shrink_percent`): guards against applying a file caught
/// half-written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadGuard {
    /// The file must have stayed the same (size, modification time, inode,
    /// contents) this long before a reload reads it.
    pub settle: Duration,
    /// A reload whose file registers fewer prefixes than the running one by
    /// more than this share (percent of the running file's) is refused
    /// unless forced; 100 never refuses.
    pub max_shrink_percent: u32,
}

impl ReloadGuard {
    pub const DEFAULT_SETTLE_MS: u64 = 1000;
    pub const MAX_SETTLE_MS: u64 = 60_000;
    pub const DEFAULT_MAX_SHRINK_PERCENT: u32 = 50;
}

impl Default for ReloadGuard {
    fn default() -> Self {
        Self {
            settle: Duration::from_millis(Self::DEFAULT_SETTLE_MS),
            max_shrink_percent: Self::DEFAULT_MAX_SHRINK_PERCENT,
        }
    }
}

/// Where pinned maps live unless the config says otherwise.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/edge";
/// Where edged listens for edgectl unless the config says otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/edge/edged.sock";
/// Where edged keeps its desired state (live changes, stable ids).
pub const DEFAULT_STATE_PATH: &str = "/var/lib/edge/state.json";

/// Which address family a route source takes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Any,
    Ipv4,
    Ipv6,
}

/// A validated `[[route_sources]]` entry: a filter and the entry its routes get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRouteSource {
    pub table: u32,
    pub family: Family,
    pub protocol: Option<u8>,
    pub metric: Option<u32>,
    pub realm: Option<u32>,
    /// Registration name of its prefixes (default: the prefix).
    pub registration: Option<String>,
    pub preference: Preference,
    pub policy: Option<u32>,
    pub dscp: Option<u8>,
    pub protect: Vec<u32>,
    /// Private domain (index into `Plan::domains`) whose prefixes the
    /// routes become; `None`: public.
    pub domain: Option<u32>,
}

/// A validated `[[registrations]]` entry: the ASNs that may originate its
/// prefixes in BGP and, if declared, the ASNs their paths may pass through;
/// its customer latency objective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRegistration {
    pub name: String,
    /// Empty: route analytics does not watch the registration.
    pub origin_asns: Vec<u32>,
    /// Empty: any path is fine (no leak check).
    pub upstream_asns: Vec<u32>,
    /// The customer RTT the registration's p90 should stay within
    /// (`rtt_p90_ms`); `None`: `[latency] rtt_p90_ms`, if any.
    pub rtt_p90: Option<Duration>,
    /// Port ids of the peering ports a registered prefix of it is held to
    /// while an origin or sub-prefix hijack of it is active
    /// (`hold_on_hijack`); empty: never held.
    pub hold_on_hijack: Vec<u32>,
    /// The connection's continent (a region path) and reach: with
    /// `Scope::Continent`, every PoP its prefixes' policies may choose is
    /// at or below it (validated). `None`: no scope.
    pub continent: Option<Region>,
    pub scope: Scope,
}

/// `[latency]`: passive customer round-trip times (docs/monitoring.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyPlan {
    /// Per flow, the least time between two timestamp samples.
    pub sample_interval: Duration,
    /// How often edged reads the kernel's histograms.
    pub period: Duration,
    /// How far back reports reach.
    pub retain: Duration,
    /// The objective of registrations without their own and of regions.
    pub rtt_p90: Option<Duration>,
    /// The span an objective's p90 is taken over.
    pub window: Duration,
    /// How long past (within) the objective before degraded (recovered).
    pub hold: Duration,
    /// Fewer samples in the window: no verdict either way.
    pub min_samples: u64,
}

impl Default for LatencyPlan {
    fn default() -> Self {
        Self {
            sample_interval: Duration::from_millis(200),
            period: Duration::from_secs(5),
            retain: Duration::from_secs(3600),
            rtt_p90: None,
            window: Duration::from_secs(60),
            hold: Duration::from_secs(30),
            min_samples: 20,
        }
    }
}

/// Sizes of the prefix maps (entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub prefixes_v4: u32,
    pub prefixes_v6: u32,
    /// TCP flows customer latency follows at once.
    pub rtt_flows: u32,
    /// (prefix slot, bucket) pairs of the latency histograms.
    pub rtt_buckets: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            prefixes_v4: limits::MAX_PREFIXES_V4,
            prefixes_v6: limits::MAX_PREFIXES_V6,
            rtt_flows: limits::RTT_FLOWS,
            rtt_buckets: limits::RTT_BUCKETS,
        }
    }
}

/// Where the Prometheus endpoint listens unless the config says otherwise:
/// localhost only.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9477";

/// How the program is attached to the ports.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode with a warning.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

/// What happens to traffic that no registered prefix covers.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Hand it to the kernel (its routing table decides).
    #[default]
    Pass,
    /// Drop it in XDP.
    Drop,
}

/// What a port connects to; decides which address classifies its traffic.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// ISP / IX partners and customers: classified by source address.
    Peering,
    /// The private backbone toward regions and other PoPs.
    Backbone,
    /// Internet transit.
    Transit,
}

impl Role {
    pub fn code(self) -> u32 {
        match self {
            Role::Peering => edge_common::role::PEERING,
            Role::Backbone => edge_common::role::BACKBONE,
            Role::Transit => edge_common::role::TRANSIT,
        }
    }
}

/// A prefix's routing preference.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    /// Cold potato: carried on the backbone.
    #[default]
    Microsoft,
    /// Hot potato: handed to transit here.
    Internet,
}

/// A policy's routing method (Traffic Manager's names).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// All traffic to the healthy member with the lowest priority number.
    Priority,
    /// Flows spread by weight (consistent hashing).
    Weighted,
    /// Flows spread evenly across all healthy members.
    Multivalue,
    /// All traffic to the healthy member with the lowest RTT, with hysteresis.
    Performance,
    /// The most specific region (of the prefix's region path) with a healthy
    /// member wins; flows spread by weight among its members.
    Geographic,
    /// Customer subnets mapped to members, with one fallback member.
    Subnet,
}

/// What a selection table holds when none of its members is up.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// The transit exit's table (the internet path), while a member of it
    /// is up; otherwise `Pass`.
    #[default]
    Transit,
    /// Every slot `NO_POP`: the kernel's routing decides.
    Pass,
    /// The backbone exit's table, while a member of it is up; otherwise
    /// `Pass`. Only the transit exit may fall back to the backbone.
    Backbone,
}

impl Fallback {
    pub fn name(self) -> &'static str {
        match self {
            Fallback::Transit => "transit",
            Fallback::Pass => "pass",
            Fallback::Backbone => "backbone",
        }
    }
}

/// The two exits of `[forwarding]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitKind {
    /// Customer traffic of microsoft-preference prefixes into the backbone.
    Backbone,
    /// Internet-preference traffic, both directions.
    Transit,
}

impl ExitKind {
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::Backbone => "backbone",
            ExitKind::Transit => "transit",
        }
    }
}

/// An exit: a policy (a PoP named as an exit is its `pop:NAME` policy), so
/// it follows health and takes any routing method but `subnet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Policy id.
    pub policy: u32,
    /// What the exit's table holds when no member is up: `Pass`, or the
    /// other exit (`Transit` for the backbone exit, `Backbone` for the
    /// transit exit).
    pub fallback: Fallback,
}

/// The performance method's rule against flapping: the current member is
/// replaced only by one whose RTT is lower by more than
/// `max(absolute, percent % of the current RTT)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    pub absolute: Duration,
    pub percent: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            absolute: Duration::from_millis(DEFAULT_HYSTERESIS_MS),
            percent: DEFAULT_HYSTERESIS_PERCENT,
        }
    }
}

/// Performance hysteresis defaults: 5 ms or 10 %, whichever is larger.
pub const DEFAULT_HYSTERESIS_MS: u64 = 5;
pub const DEFAULT_HYSTERESIS_PERCENT: u32 = 10;

/// Probe defaults: interval, timeout (or the interval if shorter), rise, fall.
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 1000;
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 500;
pub const DEFAULT_PROBE_RISE: u32 = 2;
pub const DEFAULT_PROBE_FALL: u32 = 3;
/// The UDP echo probe's payload unless the config gives one.
pub const DEFAULT_UDP_PAYLOAD: &str = "edge-probe";

/// A region path, most general first (`world > europe > ie`). The empty path
/// is the root: every region is within it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(pub Vec<String>);

impl Region {
    /// Parses `a > b > c`: segments of lowercase letters, digits, `-` and
    /// `_` (input is lowercased), separated by `>`.
    pub fn parse(text: &str) -> Result<Region, String> {
        let mut segments = Vec::new();
        for seg in text.split('>') {
            let seg = seg.trim().to_ascii_lowercase();
            if seg.is_empty() {
                return Err(format!("region {text:?} has an empty segment"));
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "region {text:?}: segment {seg:?} may only hold letters, digits, `-` and `_`"
                ));
            }
            segments.push(seg);
        }
        Ok(Region(segments))
    }

    /// Whether `self` is `ancestor` or lies below it.
    pub fn within(&self, ancestor: &Region) -> bool {
        self.0.starts_with(&ancestor.0)
    }

    /// `self`, its parent, ..., the root (empty path).
    pub fn lineage(&self) -> impl Iterator<Item = Region> + '_ {
        (0..=self.0.len())
            .rev()
            .map(|n| Region(self.0[..n].to_vec()))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        f.write_str(&self.0.join(" > "))
    }
}

/// A validated config: names resolved to ids, strings parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub pin_path: PathBuf,
    pub socket_path: PathBuf,
    /// The group (name or number) whose members may read through the
    /// control socket; `None`: root only.
    pub read_group: Option<String>,
    pub state_path: PathBuf,
    /// How a reload reads the file.
    pub reload: ReloadGuard,
    pub xdp_mode: XdpMode,
    pub limits: Limits,
    /// The Prometheus endpoint, if on.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Which prefix counters the metrics carry.
    pub prefix_metrics: PrefixMetrics,
    pub default_action: DefaultAction,
    /// Where customer traffic (microsoft preference) enters the backbone.
    pub backbone_exit: Option<Exit>,
    /// The transit exit (internet preference).
    pub transit_exit: Option<Exit>,
    pub encap_ttl: u8,
    /// The private routing domains, by name; a domain's index here is
    /// `PlannedPort::domain` and friends (the public domain is `None`).
    pub domains: Vec<String>,
    /// Port index = index (ids are assigned by name when compiled).
    pub ports: Vec<PlannedPort>,
    /// PoP id = index.
    pub pops: Vec<PlannedPop>,
    /// Policy id = index.
    pub policies: Vec<PlannedPolicy>,
    pub prefixes: Vec<PlannedPrefix>,
    /// The private domains' prefixes (config only): the domain's index
    /// in `domains`, and the prefix (its policy one of that domain's).
    pub domain_prefixes: Vec<(u32, PlannedPrefix)>,
    pub route_sources: Vec<PlannedRouteSource>,
    /// Route analytics: who may announce each registration's prefixes.
    pub registrations: Vec<PlannedRegistration>,
    /// Where edged listens for BMP (`[bmp] listen`); `None`: off.
    pub bmp_listen: Option<std::net::SocketAddr>,
    /// Customer latency (`[latency]`); `None`: not measured.
    pub latency: Option<LatencyPlan>,
    /// Networks the config file registers whose entry a live change
    /// replaces (a live `prefix del` of one removes the file's entry too).
    pub shadowed: std::collections::BTreeSet<IpNet>,
    /// Live removals of networks the config file no longer registers
    /// (the file dropped them since): the change that applies this plan
    /// forgets them, so that the file registering one again later
    /// registers it.
    pub stale_removals: std::collections::BTreeSet<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    /// Unique: `name`, else the interface, or `interface.VID[.VID]` for a
    /// tagged port.
    pub name: String,
    pub interface: String,
    pub role: Role,
    /// The port's VLAN tags, outermost first (VIDs 1-4094); empty: the
    /// interface's untagged frames (and, on an interface without tagged
    /// ports, every frame).
    pub vlan: Vec<u16>,
    /// Private domain (index into `Plan::domains`); `None`: public.
    pub domain: Option<u32>,
}

impl Plan {
    /// The interfaces the ports are on, each once, in the order of their
    /// first port: what XDP is attached to.
    pub fn interfaces(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.ports {
            if !out.contains(&p.interface.as_str()) {
                out.push(&p.interface);
            }
        }
        out
    }

    /// Whether the policy named `name` is a private domain's.
    pub fn is_private_policy(&self, name: &str) -> bool {
        self.policies
            .iter()
            .any(|p| p.name == name && p.domain.is_some())
    }

    /// The name of private domain `d` (`None`: `public`).
    pub fn domain_name(&self, d: Option<u32>) -> &str {
        d.and_then(|d| self.domains.get(d as usize))
            .map_or("public", String::as_str)
    }
}

impl PlannedPort {
    /// The default name of a port on `interface` with tags `vlan`.
    pub fn default_name(interface: &str, vlan: &[u16]) -> String {
        let mut name = interface.to_string();
        for v in vlan {
            name.push_str(&format!(".{v}"));
        }
        name
    }
}

/// The VLAN tags of frames sent to a PoP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EgressVlan {
    /// As received.
    #[default]
    Keep,
    /// Exactly these (outermost first; empty: untagged).
    Set(Vec<u16>),
    /// This tag pushed outside the received ones.
    Push(u16),
}

impl fmt::Display for EgressVlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressVlan::Keep => f.write_str("keep"),
            EgressVlan::Set(v) if v.is_empty() => f.write_str("untagged"),
            EgressVlan::Set(v) => {
                let v: Vec<String> = v.iter().map(u16::to_string).collect();
                write!(f, "set {}", v.join("."))
            }
            EgressVlan::Push(v) => write!(f, "push {v}"),
        }
    }
}

/// A registration's reach (ExpressRoute's standard and premium).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only PoPs in the registration's continent.
    #[default]
    Continent,
    /// Any PoP (premium).
    Global,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Continent => "continent",
            Scope::Global => "global",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPop {
    pub name: String,
    /// The egress interface (the named port's, for a PoP given by `port`).
    pub interface: String,
    /// The port it was given by (`port = "NAME"`), index into `Plan::ports`.
    pub port: Option<u32>,
    /// The tags of frames sent to it.
    pub vlan: EgressVlan,
    /// Its port's private domain; `None`: public.
    pub domain: Option<u32>,
    /// The next hop's MAC (zero when `next_hop` gives its address instead).
    pub mac: [u8; 6],
    /// The next hop's address: its MAC comes from the neighbour table.
    pub next_hop: Option<std::net::IpAddr>,
    pub encap_ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    pub encap_ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    /// Where the PoP is (geographic method).
    pub region: Option<Region>,
    /// Its health probe; a PoP without one is up unless drained.
    pub probe: Option<Probe>,
    /// The egress link's MTU from the config; `None`: the interface's.
    pub mtu: Option<u32>,
}

impl PlannedPop {
    /// The least link MTU of a PoP with an IPv6 tunnel: 1280 (the IPv6
    /// minimum) inside the 40-byte outer header.
    pub const IPV6_TUNNEL_MTU: u32 = 1320;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPolicy {
    pub name: String,
    pub method: Method,
    pub members: Vec<Member>,
    /// The table when no member is up.
    pub fallback: Fallback,
    /// Performance method only.
    pub hysteresis: Hysteresis,
    /// The private domain of its members (all in one); `None`: public.
    pub domain: Option<u32>,
}

/// What a policy member points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A PoP id.
    Pop(u32),
    /// Another policy (id), resolved recursively; never a cycle.
    Policy(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub target: Target,
    pub weight: u32,
    pub priority: u32,
    /// Geographic method: the member's region (its own, else its PoP's).
    pub region: Option<Region>,
    /// Subnet method: the customer subnets mapped to this member; the one
    /// member without subnets is the fallback member.
    pub subnets: Vec<IpNet>,
}

impl Member {
    /// A PoP member with the given weight and priority.
    pub fn pop(pop: u32, weight: u32, priority: u32) -> Self {
        Self {
            target: Target::Pop(pop),
            weight,
            priority,
            region: None,
            subnets: Vec::new(),
        }
    }

    /// A nested-policy member with the given weight and priority.
    pub fn policy(policy: u32, weight: u32, priority: u32) -> Self {
        Self {
            target: Target::Policy(policy),
            ..Self::pop(0, weight, priority)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPrefix {
    pub net: IpNet,
    /// Registration name (defaults to the prefix itself).
    pub registration: compact_str::CompactString,
    /// Where the entry comes from.
    pub origin: Origin,
    pub preference: Preference,
    /// Policy id; `None` for internet-preference prefixes without a policy.
    pub policy: Option<u32>,
    pub dscp: Option<u8>,
    /// Port ids of the peering ports the prefix is registered on (empty = any).
    pub protect: Vec<u32>,
    /// Where the customer is (geographic method); `None` = the root.
    pub region: Option<Region>,
    /// Port ids route analytics holds the prefix to while a hijack of it is
    /// active (its registration's `hold_on_hijack`); never from the config,
    /// and only in effect while `protect` is empty (the config's own list
    /// wins): see [`PlannedPrefix::allowed_ports`].
    pub held: Vec<u32>,
}

impl PlannedPrefix {
    /// The peering ports the prefix's traffic is accepted on (empty: any):
    /// the config's `protect`, else what a hijack holds it to.
    pub fn allowed_ports(&self) -> &[u32] {
        if self.protect.is_empty() {
            &self.held
        } else {
            &self.protect
        }
    }
}

/// Where a registered prefix comes from. Precedence, highest first: live
/// changes, the config file, routes (a route for a network the config or a
/// live change registers is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Config,
    /// `edgectl prefix add`.
    Live,
    /// A route in a kernel routing table (`[[route_sources]]`).
    Route {
        table: u32,
    },
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Origin::Route { table } => s.collect_str(&format_args!("route table {table}")),
            Origin::Config => s.serialize_str("config"),
            Origin::Live => s.serialize_str("live"),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config => f.write_str("config"),
            Origin::Live => f.write_str("live"),
            Origin::Route { table } => write!(f, "route table {table}"),
        }
    }
}
