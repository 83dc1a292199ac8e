//! The TOML config: schema, parsing and whole-file validation.
//!
//! A config is parsed and validated as a whole before anything is applied;
//! every problem is reported with its line, not just the first one. The
//! result is a [`Plan`]: names resolved to ids, strings parsed, ready to be
//! written into the maps.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::Range,
    path::PathBuf,
    time::Duration,
};

use edge_common::limits;
use ipnet::IpNet;
use macaddr::MacAddr6;
use serde::Deserialize;
use toml::Spanned;

use crate::health::{Probe, ProbeKind};

/// Where pinned maps live unless the config says otherwise.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/edge";
/// Where edged listens for edgectl unless the config says otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/edge/edged.sock";
/// Where edged keeps its desired state (live changes, stable ids).
pub const DEFAULT_STATE_PATH: &str = "/var/lib/edge/state.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    daemon: Daemon,
    #[serde(default)]
    forwarding: Forwarding,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    ports: Vec<PortConfig>,
    #[serde(default)]
    pops: Vec<PopConfig>,
    #[serde(default)]
    policies: Vec<PolicyConfig>,
    #[serde(default)]
    prefixes: Vec<PrefixConfig>,
    #[serde(default)]
    route_sources: Vec<RouteSourceConfig>,
}

/// Which address family a route source takes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Any,
    Ipv4,
    Ipv6,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Protocol {
    Number(i64),
    Name(String),
}

/// Routes of a kernel table that become registered prefixes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSourceConfig {
    table: Spanned<i64>,
    #[serde(default)]
    family: Family,
    protocol: Option<Spanned<Protocol>>,
    metric: Option<Spanned<i64>>,
    realm: Option<Spanned<i64>>,
    registration: Option<String>,
    #[serde(default)]
    preference: Preference,
    policy: Option<Spanned<String>>,
    pop: Option<Spanned<String>>,
    dscp: Option<Spanned<Dscp>>,
    #[serde(default)]
    protect: Vec<Spanned<String>>,
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
}

impl PlannedRouteSource {
    pub fn matches(&self, r: &crate::routes::Route) -> bool {
        r.table == self.table
            && match self.family {
                Family::Any => true,
                Family::Ipv4 => r.net.addr().is_ipv4(),
                Family::Ipv6 => r.net.addr().is_ipv6(),
            }
            && self.protocol.is_none_or(|p| p == r.protocol)
            && self.metric.is_none_or(|m| m == r.metric)
            && self.realm.is_none_or(|x| x == r.realm)
    }
}

/// Route protocol names of /etc/iproute2/rt_protos.
pub fn protocol_by_name(name: &str) -> Option<u8> {
    Some(match name {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "gated" => 8,
        "ra" => 9,
        "mrt" => 10,
        "zebra" => 11,
        "bird" => 12,
        "dnrouted" => 13,
        "xorp" => 14,
        "ntk" => 15,
        "dhcp" => 16,
        "keepalived" => 18,
        "babel" => 42,
        "openr" => 99,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        "eigrp" => 192,
        _ => return None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Daemon {
    #[serde(default = "default_pin_path")]
    pin_path: PathBuf,
    #[serde(default)]
    xdp_mode: XdpMode,
    /// Prometheus endpoint; an empty string turns it off.
    metrics_address: Option<Spanned<String>>,
    #[serde(default = "default_socket_path")]
    socket_path: PathBuf,
    #[serde(default = "default_state_path")]
    state_path: PathBuf,
}

impl Default for Daemon {
    fn default() -> Self {
        Self {
            pin_path: default_pin_path(),
            xdp_mode: XdpMode::default(),
            metrics_address: None,
            socket_path: default_socket_path(),
            state_path: default_state_path(),
        }
    }
}

fn default_socket_path() -> PathBuf {
    DEFAULT_SOCKET_PATH.into()
}

fn default_state_path() -> PathBuf {
    DEFAULT_STATE_PATH.into()
}

/// Map sizes: lower them to save kernel memory on small hosts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsConfig {
    prefixes_v4: Option<Spanned<i64>>,
    prefixes_v6: Option<Spanned<i64>>,
}

/// Sizes of the prefix maps (entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub prefixes_v4: u32,
    pub prefixes_v6: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            prefixes_v4: limits::MAX_PREFIXES_V4,
            prefixes_v6: limits::MAX_PREFIXES_V6,
        }
    }
}

/// Where the Prometheus endpoint listens unless the config says otherwise:
/// localhost only.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9477";

fn default_pin_path() -> PathBuf {
    DEFAULT_PIN_PATH.into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Forwarding {
    #[serde(default)]
    default_action: DefaultAction,
    backbone_exit: Option<Spanned<String>>,
    transit_exit: Option<Spanned<String>>,
    encap_ttl: Option<Spanned<i64>>,
}

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

/// What a policy's table holds when none of its members is up.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Every slot to `transit_exit` (the internet path).
    #[default]
    Transit,
    /// Every slot `NO_POP`: the kernel's routing decides.
    Pass,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortConfig {
    interface: Spanned<String>,
    role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tunnel {
    source: String,
    destination: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PopConfig {
    name: Spanned<String>,
    interface: Spanned<String>,
    mac: Option<Spanned<String>>,
    /// The next hop's address, its MAC taken from the neighbour table.
    next_hop: Option<Spanned<String>>,
    encap_ipv4: Option<Spanned<Tunnel>>,
    encap_ipv6: Option<Spanned<Tunnel>>,
    region: Option<Spanned<String>>,
    probe: Option<Spanned<ProbeConfig>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ProbeType {
    Icmp,
    Tcp,
    Http,
    Udp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    #[serde(rename = "type")]
    kind: ProbeType,
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
    path: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    status: Option<Spanned<i64>>,
    payload: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    interval_ms: Option<Spanned<i64>>,
    timeout_ms: Option<Spanned<i64>>,
    rise: Option<Spanned<i64>>,
    fall: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberConfig {
    pop: Option<Spanned<String>>,
    policy: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    priority: Option<Spanned<i64>>,
    region: Option<Spanned<String>>,
    subnets: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyConfig {
    name: Spanned<String>,
    method: Method,
    members: Spanned<Vec<Spanned<MemberConfig>>>,
    fallback: Option<Spanned<Fallback>>,
    hysteresis_ms: Option<Spanned<i64>>,
    hysteresis_percent: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Dscp {
    Number(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefixConfig {
    prefix: Spanned<String>,
    registration: Option<String>,
    #[serde(default)]
    preference: Preference,
    policy: Option<Spanned<String>>,
    /// Shorthand for a single-member policy.
    pop: Option<Spanned<String>>,
    dscp: Option<Spanned<Dscp>>,
    #[serde(default)]
    protect: Vec<Spanned<String>>,
    region: Option<Spanned<String>>,
}

/// The attribute keys shared by `[[prefixes]]` and `[[route_sources]]`.
struct AttrsConfig<'a> {
    /// Where problems without a key of their own point.
    at: Range<usize>,
    preference: Preference,
    policy: &'a Option<Spanned<String>>,
    pop: &'a Option<Spanned<String>>,
    dscp: &'a Option<Spanned<Dscp>>,
    protect: &'a [Spanned<String>],
}

/// Resolved attributes.
struct Attrs {
    policy: Option<u32>,
    dscp: Option<u8>,
    protect: Vec<u32>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
    /// A map limit is exceeded (edgectl exits with 4).
    pub map_full: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found in a config, in file order.
#[derive(Debug, thiserror::Error)]
#[error("invalid config ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
    .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Invalid(pub Vec<Problem>);

/// A validated config: names resolved to ids, strings parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub pin_path: PathBuf,
    pub socket_path: PathBuf,
    pub state_path: PathBuf,
    pub xdp_mode: XdpMode,
    pub limits: Limits,
    /// The Prometheus endpoint, if on.
    pub metrics_address: Option<std::net::SocketAddr>,
    pub default_action: DefaultAction,
    /// PoP id where customer traffic (microsoft preference) enters the backbone.
    pub backbone_exit: Option<u32>,
    /// PoP id of the transit exit (internet preference).
    pub transit_exit: Option<u32>,
    pub encap_ttl: u8,
    /// Port id = index.
    pub ports: Vec<PlannedPort>,
    /// PoP id = index.
    pub pops: Vec<PlannedPop>,
    /// Policy id = index.
    pub policies: Vec<PlannedPolicy>,
    pub prefixes: Vec<PlannedPrefix>,
    pub route_sources: Vec<PlannedRouteSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    pub interface: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPop {
    pub name: String,
    pub interface: String,
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
    pub registration: String,
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

/// DSCP names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF, RFC 5865 VA, RFC 8622 LE).
pub fn dscp_by_name(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "be" | "df" | "default" => 0,
        "le" => 1,
        "ef" => 46,
        "va" | "voice-admit" => 44,
        _ => {
            if let Some(c) = n.strip_prefix("cs") {
                let c: u8 = c.parse().ok().filter(|c| *c <= 7)?;
                c << 3
            } else if let Some(af) = n.strip_prefix("af") {
                let b = af.as_bytes();
                if b.len() != 2 || !(b'1'..=b'4').contains(&b[0]) || !(b'1'..=b'3').contains(&b[1])
                {
                    return None;
                }
                ((b[0] - b'0') << 3) | ((b[1] - b'0') << 1)
            } else {
                return None;
            }
        }
    })
}

/// Parses and validates `text`; `Err` lists every problem with its line.
pub fn parse(text: &str) -> Result<Plan, Invalid> {
    let file: File = toml::from_str(text).map_err(|e| {
        Invalid(vec![Problem {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
            map_full: false,
        }])
    })?;
    Validator {
        text,
        base_len: text.len(),
        problems: Vec::new(),
    }
    .run(file)
}

/// Live changes made with edgectl on top of the config file: prefixes added
/// (or replacing the file's entry for the same prefix) and prefixes removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Live {
    #[serde(default)]
    pub added: Vec<PrefixSpec>,
    #[serde(default)]
    pub removed: Vec<IpNet>,
}

/// A prefix as `edgectl prefix add` gives it: the keys of a `[[prefixes]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixSpec {
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dscp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protect: Vec<String>,
}

/// Parses and validates the config `text` with the live changes applied:
/// a live prefix replaces the file's entry for the same network, a removed
/// prefix is left out. Problems in live changes carry no line.
pub fn parse_with(text: &str, live: &Live) -> Result<Plan, Invalid> {
    if live.added.is_empty() && live.removed.is_empty() {
        return parse(text);
    }
    #[derive(serde::Serialize)]
    struct Added<'a> {
        prefixes: &'a [PrefixSpec],
    }
    let extra = toml::to_string(&Added {
        prefixes: &live.added,
    })
    .map_err(|e| {
        Invalid(vec![Problem {
            line: None,
            message: format!("live changes: {e}"),
            map_full: false,
        }])
    })?;
    let combined = format!("{text}\n{extra}");
    let base_lines = line_of(text, text.len());
    let relabel = |mut problems: Vec<Problem>| {
        for p in &mut problems {
            if p.line.is_some_and(|l| l > base_lines) {
                p.line = None;
                p.message = format!("live change: {}", p.message);
            }
        }
        Invalid(problems)
    };
    let mut file: File = toml::from_str(&combined).map_err(|e| {
        relabel(vec![Problem {
            line: e.span().map(|s| line_of(&combined, s.start)),
            message: e.message().trim().to_string(),
            map_full: false,
        }])
    })?;
    let net_of = |p: &PrefixConfig| p.prefix.get_ref().parse::<IpNet>().ok();
    let live_nets: Vec<IpNet> = file
        .prefixes
        .iter()
        .filter(|p| p.prefix.span().start >= text.len())
        .filter_map(net_of)
        .collect();
    file.prefixes.retain(|p| {
        p.prefix.span().start >= text.len()
            || !net_of(p).is_some_and(|n| live_nets.contains(&n) || live.removed.contains(&n))
    });
    Validator {
        text: &combined,
        base_len: text.len(),
        problems: Vec::new(),
    }
    .run(file)
    .map_err(|e| relabel(e.0))
}

struct Validator<'a> {
    text: &'a str,
    /// Length of the config file's own text; entries past it are live changes.
    base_len: usize,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn bad(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let line = span.map(|s| line_of(self.text, s.start));
        self.problems.push(Problem {
            line,
            message: message.into(),
            map_full: false,
        });
    }

    fn limit(&mut self, what: &str, n: usize, limit: u32) {
        if n > limit as usize {
            self.bad(None, format!("{n} {what} exceed the limit of {limit}"));
        }
    }

    fn run(mut self, file: File) -> Result<Plan, Invalid> {
        let ports = self.ports(&file.ports);
        let port_ids: HashMap<&str, u32> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.interface.as_str(), i as u32))
            .collect();
        let pops = self.pops(&file.pops, &port_ids);
        let pop_ids: HashMap<&str, u32> = pops
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        let mut policies = self.policies(&file.policies, &pops);
        let fwd = &file.forwarding;
        let backbone_exit = fwd
            .backbone_exit
            .as_ref()
            .and_then(|n| self.pop_ref(n, &pop_ids, "backbone_exit"));
        let transit_exit = fwd
            .transit_exit
            .as_ref()
            .and_then(|n| self.pop_ref(n, &pop_ids, "transit_exit"));
        let encap_ttl = match &fwd.encap_ttl {
            None => 64,
            Some(t) if (1..=255).contains(t.get_ref()) => *t.get_ref() as u8,
            Some(t) => {
                self.bad(
                    Some(t.span()),
                    format!("encap_ttl {} is outside 1-255", t.get_ref()),
                );
                64
            }
        };
        let limits = self.limits(&file.limits);
        let prefixes = self.prefixes(
            &file.prefixes,
            &ports,
            &port_ids,
            &pop_ids,
            &mut policies,
            limits,
        );
        let route_sources = self.route_sources(
            &file.route_sources,
            &ports,
            &port_ids,
            &pop_ids,
            &mut policies,
        );
        self.fallbacks(&file.policies, &mut policies, transit_exit);
        let metrics_address = match &file.daemon.metrics_address {
            None => DEFAULT_METRICS_ADDRESS.parse().ok(),
            Some(a) if a.get_ref().is_empty() => None,
            Some(a) => match a.get_ref().parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.bad(
                        Some(a.span()),
                        format!("metrics_address {:?} is not an IP:port", a.get_ref()),
                    );
                    None
                }
            },
        };

        let peering = ports.iter().any(|p| p.role == Role::Peering);
        if backbone_exit.is_none()
            && peering
            && prefixes
                .iter()
                .any(|p| p.preference == Preference::Microsoft)
        {
            self.bad(None, "[forwarding] backbone_exit is required: peering ports carry microsoft-preference prefixes");
        }
        if transit_exit.is_none()
            && prefixes
                .iter()
                .any(|p| p.preference == Preference::Internet)
        {
            self.bad(
                None,
                "[forwarding] transit_exit is required: some prefixes have the internet preference",
            );
        }

        if !self.problems.is_empty() {
            return Err(Invalid(self.problems));
        }
        let plan = Plan {
            pin_path: file.daemon.pin_path,
            socket_path: file.daemon.socket_path,
            state_path: file.daemon.state_path,
            xdp_mode: file.daemon.xdp_mode,
            limits,
            metrics_address,
            default_action: fwd.default_action,
            backbone_exit,
            transit_exit,
            encap_ttl,
            ports,
            pops,
            policies,
            prefixes,
            route_sources,
        };
        // Regions and subnet members multiply the tables a policy needs.
        let tables = crate::resolve::Layout::new(&plan).keys.len();
        if tables > limits::MAX_POLICIES as usize {
            self.bad(
                None,
                format!(
                    "{tables} selection tables (policies × prefix regions × subnet members) exceed the limit of {}",
                    limits::MAX_POLICIES
                ),
            );
            return Err(Invalid(self.problems));
        }
        Ok(plan)
    }

    /// Each policy's fallback: as configured, else `transit` when there is
    /// a transit exit and `pass` when there is none.
    fn fallbacks(
        &mut self,
        config: &[PolicyConfig],
        policies: &mut [PlannedPolicy],
        transit_exit: Option<u32>,
    ) {
        for (i, policy) in policies.iter_mut().enumerate() {
            let configured = config.get(i).and_then(|c| c.fallback.as_ref());
            policy.fallback = match configured {
                Some(f) if *f.get_ref() == Fallback::Transit && transit_exit.is_none() => {
                    self.bad(
                        Some(f.span()),
                        format!(
                            "policy {}: fallback = \"transit\" needs [forwarding] transit_exit",
                            policy.name
                        ),
                    );
                    Fallback::Pass
                }
                Some(f) => *f.get_ref(),
                None if transit_exit.is_some() => Fallback::Transit,
                None => Fallback::Pass,
            };
        }
    }

    fn route_sources(
        &mut self,
        sources: &[RouteSourceConfig],
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
    ) -> Vec<PlannedRouteSource> {
        let mut out = Vec::new();
        for s in sources {
            let table = *s.table.get_ref();
            if !(1..=i64::from(u32::MAX)).contains(&table) || [253, 255].contains(&table) {
                self.bad(
                    Some(s.table.span()),
                    format!("route source table {table} must be 1-4294967295 and not local (255) or default (253)"),
                );
                continue;
            }
            let what = format!("route source table {table}");
            let mut number = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u32>, ()> {
                match v {
                    None => Ok(None),
                    Some(v) if (0..=i64::from(u32::MAX)).contains(v.get_ref()) => {
                        Ok(Some(*v.get_ref() as u32))
                    }
                    Some(v) => {
                        self.bad(
                            Some(v.span()),
                            format!("{what}: {key} {} is out of range", v.get_ref()),
                        );
                        Err(())
                    }
                }
            };
            let (Ok(metric), Ok(realm)) = (number(&s.metric, "metric"), number(&s.realm, "realm"))
            else {
                continue;
            };
            let protocol = match &s.protocol {
                None => None,
                Some(p) => match p.get_ref() {
                    Protocol::Number(n) if (0..=255).contains(n) => Some(*n as u8),
                    Protocol::Name(n) if protocol_by_name(n).is_some() => protocol_by_name(n),
                    _ => {
                        self.bad(
                            Some(p.span()),
                            format!("{what}: protocol must be 0-255 or a name of /etc/iproute2/rt_protos (bird, bgp, static, zebra, ...)"),
                        );
                        continue;
                    }
                },
            };
            let Some(Attrs {
                policy,
                dscp,
                protect,
            }) = self.attrs(
                &what,
                AttrsConfig {
                    at: s.table.span(),
                    preference: s.preference,
                    policy: &s.policy,
                    pop: &s.pop,
                    dscp: &s.dscp,
                    protect: &s.protect,
                },
                ports,
                port_ids,
                pop_ids,
                policies,
            )
            else {
                continue;
            };
            out.push(PlannedRouteSource {
                table: table as u32,
                family: s.family,
                protocol,
                metric,
                realm,
                registration: s.registration.clone(),
                preference: s.preference,
                policy,
                dscp,
                protect,
            });
        }
        out
    }

    fn limits(&mut self, l: &LimitsConfig) -> Limits {
        let mut size = |v: &Option<Spanned<i64>>, key: &str, max: u32| match v {
            None => max,
            Some(v) if (1..=i64::from(max)).contains(v.get_ref()) => *v.get_ref() as u32,
            Some(v) => {
                self.bad(
                    Some(v.span()),
                    format!("[limits] {key} {} is outside 1-{max}", v.get_ref()),
                );
                max
            }
        };
        Limits {
            prefixes_v4: size(&l.prefixes_v4, "prefixes_v4", limits::MAX_PREFIXES_V4),
            prefixes_v6: size(&l.prefixes_v6, "prefixes_v6", limits::MAX_PREFIXES_V6),
        }
    }

    fn pop_ref(
        &mut self,
        name: &Spanned<String>,
        pop_ids: &HashMap<&str, u32>,
        what: &str,
    ) -> Option<u32> {
        let id = pop_ids.get(name.get_ref().as_str()).copied();
        if id.is_none() {
            self.bad(
                Some(name.span()),
                format!("{what}: unknown PoP {:?}", name.get_ref()),
            );
        }
        id
    }

    fn ports(&mut self, ports: &[PortConfig]) -> Vec<PlannedPort> {
        let mut out: Vec<PlannedPort> = Vec::new();
        for port in ports {
            let name = port.interface.get_ref();
            if name.is_empty() || name.len() > 15 {
                self.bad(
                    Some(port.interface.span()),
                    format!("interface name {name:?} must be 1-15 characters"),
                );
            } else if out.iter().any(|p| &p.interface == name) {
                self.bad(
                    Some(port.interface.span()),
                    format!("port {name} is listed twice"),
                );
            } else {
                out.push(PlannedPort {
                    interface: name.clone(),
                    role: port.role,
                });
            }
        }
        self.limit("ports", out.len(), limits::MAX_PORTS);
        out
    }

    fn pops(&mut self, pops: &[PopConfig], port_ids: &HashMap<&str, u32>) -> Vec<PlannedPop> {
        let mut out: Vec<PlannedPop> = Vec::new();
        for pop in pops {
            let name = pop.name.get_ref();
            if name.is_empty() {
                self.bad(Some(pop.name.span()), "PoP name must not be empty");
            } else if out.iter().any(|p| &p.name == name) {
                self.bad(
                    Some(pop.name.span()),
                    format!("PoP {name} is defined twice"),
                );
            }
            let interface = pop.interface.get_ref();
            if !port_ids.contains_key(interface.as_str()) {
                self.bad(
                    Some(pop.interface.span()),
                    format!("PoP {name}: interface {interface} is not a listed port"),
                );
            }
            let mac = match &pop.mac {
                None => [0; 6],
                Some(m) => match m.get_ref().parse::<MacAddr6>() {
                    Ok(mac) if mac.is_nil() || mac.is_multicast() => {
                        self.bad(
                            Some(m.span()),
                            format!("PoP {name}: MAC {mac} is not a unicast address"),
                        );
                        [0; 6]
                    }
                    Ok(mac) => mac.into_array(),
                    Err(e) => {
                        self.bad(
                            Some(m.span()),
                            format!("PoP {name}: bad MAC {:?}: {e}", m.get_ref()),
                        );
                        [0; 6]
                    }
                },
            };
            let next_hop = match (&pop.mac, &pop.next_hop) {
                (Some(_), None) => None,
                (None, Some(ip)) => match ip.get_ref().parse::<std::net::IpAddr>() {
                    Ok(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
                    _ => {
                        self.bad(
                            Some(ip.span()),
                            format!(
                                "PoP {name}: next_hop {:?} is not a unicast IP address",
                                ip.get_ref()
                            ),
                        );
                        None
                    }
                },
                (Some(_), Some(ip)) => {
                    self.bad(
                        Some(ip.span()),
                        format!("PoP {name}: give either mac or next_hop, not both"),
                    );
                    None
                }
                (None, None) => {
                    self.bad(
                        Some(pop.name.span()),
                        format!("PoP {name}: needs mac (the next hop's MAC) or next_hop (its address, resolved from the neighbour table)"),
                    );
                    None
                }
            };
            let encap_ipv4 = pop
                .encap_ipv4
                .as_ref()
                .and_then(|t| self.tunnel::<Ipv4Addr>(name, t, "encap_ipv4"));
            let encap_ipv6 = pop
                .encap_ipv6
                .as_ref()
                .and_then(|t| self.tunnel::<Ipv6Addr>(name, t, "encap_ipv6"));
            let region = pop
                .region
                .as_ref()
                .and_then(|r| self.region(r, &format!("PoP {name}")));
            let probe = pop
                .probe
                .as_ref()
                .and_then(|p| self.probe(name, interface, p));
            out.push(PlannedPop {
                name: name.clone(),
                interface: interface.clone(),
                mac,
                next_hop,
                encap_ipv4,
                encap_ipv6,
                region,
                probe,
            });
        }
        self.limit("PoPs", out.len(), limits::MAX_POPS);
        out
    }

    fn region(&mut self, text: &Spanned<String>, what: &str) -> Option<Region> {
        match Region::parse(text.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                self.bad(Some(text.span()), format!("{what}: {e}"));
                None
            }
        }
    }

    /// `v` within `range`, else a problem and `None`.
    fn ranged(
        &mut self,
        v: &Spanned<i64>,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        if range.contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            self.bad(
                Some(v.span()),
                format!(
                    "{what} {} is outside {}-{}",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    fn probe(&mut self, pop: &str, interface: &str, p: &Spanned<ProbeConfig>) -> Option<Probe> {
        let what = format!("PoP {pop}: probe");
        let c = p.get_ref();
        let mut ok = true;
        let address = match c.address.get_ref().parse::<IpAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.bad(
                    Some(c.address.span()),
                    format!(
                        "{what}: address {:?} is not an IP address",
                        c.address.get_ref()
                    ),
                );
                ok = false;
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        };
        // Keys that only some probe types take.
        let kind_name = format!("{:?}", c.kind).to_lowercase();
        fn only(key: &'static str, types: &[ProbeType]) -> (&'static str, Vec<ProbeType>) {
            (key, types.to_vec())
        }
        let rules = [
            (
                c.port.as_ref().map(Spanned::span),
                only("port", &[ProbeType::Tcp, ProbeType::Http, ProbeType::Udp]),
            ),
            (
                c.path.as_ref().map(Spanned::span),
                only("path", &[ProbeType::Http]),
            ),
            (
                c.host.as_ref().map(Spanned::span),
                only("host", &[ProbeType::Http]),
            ),
            (
                c.status.as_ref().map(Spanned::span),
                only("status", &[ProbeType::Http]),
            ),
            (
                c.payload.as_ref().map(Spanned::span),
                only("payload", &[ProbeType::Udp]),
            ),
        ];
        for (span, (key, types)) in rules {
            if let Some(span) = span
                && !types.contains(&c.kind)
            {
                self.bad(
                    Some(span),
                    format!("{what}: `{key}` does not apply to a {kind_name} probe"),
                );
                ok = false;
            }
        }
        let port = match &c.port {
            Some(v) => self
                .ranged(v, 1..=65535, &format!("{what}: port"))
                .map(|p| p as u16),
            None if matches!(c.kind, ProbeType::Tcp | ProbeType::Udp) => {
                self.bad(
                    Some(p.span()),
                    format!("{what}: a {kind_name} probe needs a port"),
                );
                None
            }
            None => Some(80),
        };
        ok &= port.is_some();
        let port = port.unwrap_or(0);
        let kind = match c.kind {
            ProbeType::Icmp => ProbeKind::Icmp,
            ProbeType::Tcp => ProbeKind::Tcp { port },
            ProbeType::Udp => {
                let payload = c
                    .payload
                    .as_ref()
                    .map_or(DEFAULT_UDP_PAYLOAD, |p| p.get_ref().as_str());
                if payload.is_empty() || payload.len() > 1024 {
                    self.bad(
                        c.payload.as_ref().map(Spanned::span),
                        format!("{what}: payload must be 1-1024 bytes"),
                    );
                    ok = false;
                }
                ProbeKind::Udp {
                    port,
                    payload: payload.as_bytes().to_vec(),
                }
            }
            ProbeType::Http => {
                let path = c.path.as_ref().map_or("/", |p| p.get_ref().as_str());
                if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    self.bad(
                        c.path.as_ref().map(Spanned::span),
                        format!("{what}: path {path:?} must start with `/` and hold no spaces or control characters"),
                    );
                    ok = false;
                }
                let host = c.host.as_ref().map(|h| h.get_ref().clone());
                if let Some(h) = &host
                    && (h.is_empty() || h.bytes().any(|b| b <= b' ' || b == 0x7f))
                {
                    self.bad(
                        c.host.as_ref().map(Spanned::span),
                        format!("{what}: host {h:?} must be non-empty without spaces or control characters"),
                    );
                    ok = false;
                }
                let status = match &c.status {
                    None => Some(200),
                    Some(v) => self.ranged(v, 100..=599, &format!("{what}: status")),
                };
                ok &= status.is_some();
                ProbeKind::Http {
                    port,
                    path: path.to_string(),
                    host,
                    status: status.unwrap_or(200) as u16,
                }
            }
        };
        let device = match &c.interface {
            None => Some(interface.to_string()),
            Some(d) if d.get_ref().is_empty() => None,
            Some(d) if d.get_ref().len() > 15 => {
                self.bad(
                    Some(d.span()),
                    format!(
                        "{what}: interface name {:?} is longer than 15 characters",
                        d.get_ref()
                    ),
                );
                ok = false;
                None
            }
            Some(d) => Some(d.get_ref().clone()),
        };
        let interval = match &c.interval_ms {
            None => Some(DEFAULT_PROBE_INTERVAL_MS as i64),
            Some(v) => self.ranged(v, 50..=600_000, &format!("{what}: interval_ms")),
        };
        let timeout = match &c.timeout_ms {
            None => interval.map(|i| i.min(DEFAULT_PROBE_TIMEOUT_MS as i64)),
            Some(v) => self.ranged(v, 10..=60_000, &format!("{what}: timeout_ms")),
        };
        if let (Some(i), Some(t), Some(span)) = (interval, timeout, c.timeout_ms.as_ref())
            && t > i
        {
            self.bad(
                Some(span.span()),
                format!("{what}: timeout_ms {t} is longer than interval_ms {i}"),
            );
            ok = false;
        }
        let mut count = |v: &Option<Spanned<i64>>, key: &str, default: u32| match v {
            None => Some(default),
            Some(v) => self
                .ranged(v, 1..=100, &format!("{what}: {key}"))
                .map(|n| n as u32),
        };
        let rise = count(&c.rise, "rise", DEFAULT_PROBE_RISE);
        let fall = count(&c.fall, "fall", DEFAULT_PROBE_FALL);
        match (ok, interval, timeout, rise, fall) {
            (true, Some(interval), Some(timeout), Some(rise), Some(fall)) => Some(Probe {
                kind,
                address,
                device,
                interval: Duration::from_millis(interval as u64),
                timeout: Duration::from_millis(timeout as u64),
                rise,
                fall,
            }),
            _ => None,
        }
    }

    fn tunnel<A: std::str::FromStr>(
        &mut self,
        pop: &str,
        t: &Spanned<Tunnel>,
        what: &str,
    ) -> Option<(A, A)> {
        let parse = |s: &str| s.parse::<A>().ok();
        match (parse(&t.get_ref().source), parse(&t.get_ref().destination)) {
            (Some(s), Some(d)) => Some((s, d)),
            _ => {
                self.bad(
                    Some(t.span()),
                    format!("PoP {pop}: {what} needs a source and destination of the right address family"),
                );
                None
            }
        }
    }

    fn policies(&mut self, policies: &[PolicyConfig], pops: &[PlannedPop]) -> Vec<PlannedPolicy> {
        let pop_ids: HashMap<&str, u32> = pops
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        // Policy id = position in the file; members may name later policies.
        let mut policy_ids: HashMap<&str, u32> = HashMap::new();
        for (i, p) in policies.iter().enumerate() {
            policy_ids
                .entry(p.name.get_ref().as_str())
                .or_insert(i as u32);
        }
        let mut out: Vec<PlannedPolicy> = Vec::new();
        for policy in policies {
            let name = policy.name.get_ref();
            if name.is_empty() || name.starts_with("pop:") {
                self.bad(
                    Some(policy.name.span()),
                    format!("policy name {name:?} must be non-empty and not start with `pop:`"),
                );
            } else if out.iter().any(|p| &p.name == name) {
                self.bad(
                    Some(policy.name.span()),
                    format!("policy {name} is defined twice"),
                );
            }
            if policy.members.get_ref().is_empty() {
                self.bad(
                    Some(policy.members.span()),
                    format!("policy {name} has no members"),
                );
            }
            let method = policy.method;
            let mut members: Vec<Member> = Vec::new();
            for (i, spanned) in policy.members.get_ref().iter().enumerate() {
                let m = spanned.get_ref();
                let target = match (&m.pop, &m.policy) {
                    (Some(pop), None) => {
                        let Some(id) = self.pop_ref(pop, &pop_ids, &format!("policy {name}"))
                        else {
                            continue;
                        };
                        (Target::Pop(id), pop)
                    }
                    (None, Some(nested)) => match policy_ids.get(nested.get_ref().as_str()) {
                        Some(&id) if policies[id as usize].method == Method::Subnet => {
                            self.bad(
                                Some(nested.span()),
                                format!(
                                    "policy {name}: subnet policy {} cannot be a member (it maps customer addresses, which only a prefix has)",
                                    nested.get_ref()
                                ),
                            );
                            continue;
                        }
                        Some(&id) => (Target::Policy(id), nested),
                        None => {
                            self.bad(
                                Some(nested.span()),
                                format!(
                                    "policy {name}: unknown member policy {:?}",
                                    nested.get_ref()
                                ),
                            );
                            continue;
                        }
                    },
                    _ => {
                        self.bad(
                            Some(spanned.span()),
                            format!("policy {name}: a member names either a pop or a policy"),
                        );
                        continue;
                    }
                };
                let (target, target_name) = target;
                if members.iter().any(|x| x.target == target) {
                    self.bad(
                        Some(target_name.span()),
                        format!("policy {name}: {} is a member twice", target_name.get_ref()),
                    );
                    continue;
                }
                let mut number = |v: &Option<Spanned<i64>>, what: &str, default: u32| match v {
                    None => default,
                    Some(v) => self
                        .ranged(v, 1..=1000, &format!("policy {name}: {what}"))
                        .map_or(default, |n| n as u32),
                };
                let weight = number(&m.weight, "weight", 1);
                let priority = number(&m.priority, "priority", i as u32 + 1);
                let own_region = match &m.region {
                    Some(r) if method != Method::Geographic => {
                        self.bad(
                            Some(r.span()),
                            format!(
                                "policy {name}: a member region applies to the geographic method only"
                            ),
                        );
                        None
                    }
                    Some(r) => self.region(r, &format!("policy {name}")),
                    None => None,
                };
                let region = match (own_region, target) {
                    (Some(r), _) => Some(r),
                    (None, Target::Pop(p)) if method == Method::Geographic => {
                        pops[p as usize].region.clone()
                    }
                    _ => None,
                };
                if method == Method::Geographic && region.is_none() && m.region.is_none() {
                    self.bad(
                        Some(target_name.span()),
                        format!(
                            "policy {name}: member {} has no region (give the member or its PoP a region)",
                            target_name.get_ref()
                        ),
                    );
                }
                let mut subnets = Vec::new();
                match &m.subnets {
                    Some(list) if method != Method::Subnet => self.bad(
                        Some(list.span()),
                        format!("policy {name}: subnets apply to the subnet method only"),
                    ),
                    Some(list) => {
                        if list.get_ref().is_empty() {
                            self.bad(
                                Some(list.span()),
                                format!(
                                    "policy {name}: empty subnets (leave the key out for the fallback member)"
                                ),
                            );
                        }
                        for text in list.get_ref() {
                            if let Some(net) = self.cidr(text, &format!("policy {name}: subnet")) {
                                let dup = members
                                    .iter()
                                    .flat_map(|x| &x.subnets)
                                    .chain(&subnets)
                                    .any(|n| *n == net);
                                if dup {
                                    self.bad(
                                        Some(text.span()),
                                        format!("policy {name}: subnet {net} is mapped twice"),
                                    );
                                } else {
                                    subnets.push(net);
                                }
                            }
                        }
                    }
                    None => {}
                }
                members.push(Member {
                    target,
                    weight,
                    priority,
                    region,
                    subnets,
                });
            }
            if method == Method::Subnet {
                let fallbacks = policy
                    .members
                    .get_ref()
                    .iter()
                    .filter(|m| m.get_ref().subnets.is_none())
                    .count();
                if fallbacks != 1 {
                    self.bad(
                        Some(policy.members.span()),
                        format!(
                            "policy {name}: a subnet policy needs exactly one member without subnets (the fallback member), not {fallbacks}"
                        ),
                    );
                }
            }
            let mut hysteresis = Hysteresis::default();
            for (v, key, range) in [
                (&policy.hysteresis_ms, "hysteresis_ms", 0..=10_000),
                (&policy.hysteresis_percent, "hysteresis_percent", 0..=1000),
            ] {
                let Some(v) = v else { continue };
                if method != Method::Performance {
                    self.bad(
                        Some(v.span()),
                        format!("policy {name}: {key} applies to the performance method only"),
                    );
                } else if let Some(n) = self.ranged(v, range, &format!("policy {name}: {key}")) {
                    if key == "hysteresis_ms" {
                        hysteresis.absolute = Duration::from_millis(n as u64);
                    } else {
                        hysteresis.percent = n as u32;
                    }
                }
            }
            out.push(PlannedPolicy {
                name: name.clone(),
                method,
                members,
                // Set once the exits are known (`fallbacks`).
                fallback: Fallback::Pass,
                hysteresis,
            });
        }
        self.nesting(policies, &out);
        out
    }

    /// Resolves what a prefix (or a route source) asks for: its policy (a
    /// `pop` shorthand becomes a one-member policy), DSCP and protection.
    fn attrs(
        &mut self,
        what: &str,
        c: AttrsConfig<'_>,
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
    ) -> Option<Attrs> {
        let policy = match (&c.policy, &c.pop) {
            (Some(_), Some(pop)) => {
                self.bad(
                    Some(pop.span()),
                    format!("{what}: give either policy or pop, not both"),
                );
                return None;
            }
            (Some(name), None) => match policies.iter().position(|p| &p.name == name.get_ref()) {
                Some(id) => Some(id as u32),
                None => {
                    self.bad(
                        Some(name.span()),
                        format!("{what}: unknown policy {:?}", name.get_ref()),
                    );
                    return None;
                }
            },
            (None, Some(pop)) => {
                let pop_id = self.pop_ref(pop, pop_ids, what)?;
                let name = format!("pop:{}", pop.get_ref());
                Some(match policies.iter().position(|p| p.name == name) {
                    Some(id) => id as u32,
                    None => {
                        policies.push(PlannedPolicy {
                            name,
                            method: Method::Priority,
                            members: vec![Member::pop(pop_id, 1, 1)],
                            fallback: Fallback::Pass,
                            hysteresis: Hysteresis::default(),
                        });
                        (policies.len() - 1) as u32
                    }
                })
            }
            (None, None) if c.preference == Preference::Internet => None,
            (None, None) => {
                self.bad(
                    Some(c.at.clone()),
                    format!("{what}: the microsoft preference needs a policy (or a pop)"),
                );
                return None;
            }
        };
        let dscp = match c.dscp {
            None => None,
            Some(d) => match d.get_ref() {
                Dscp::Number(n) if (0..=63).contains(n) => Some(*n as u8),
                Dscp::Number(n) => {
                    self.bad(Some(d.span()), format!("{what}: DSCP {n} is outside 0-63"));
                    None
                }
                Dscp::Name(name) => match dscp_by_name(name) {
                    Some(v) => Some(v),
                    None => {
                        self.bad(Some(d.span()), format!("{what}: unknown DSCP class {name:?} (ef, af11-af43, cs0-cs7, be, le, va, or 0-63)"));
                        None
                    }
                },
            },
        };
        let mut protect = Vec::new();
        for p in c.protect {
            match port_ids.get(p.get_ref().as_str()) {
                Some(&id) if ports[id as usize].role == Role::Peering => protect.push(id),
                Some(_) => self.bad(
                    Some(p.span()),
                    format!(
                        "{what}: protect names {}, which is not a peering port",
                        p.get_ref()
                    ),
                ),
                None => self.bad(
                    Some(p.span()),
                    format!("{what}: protect names unknown port {:?}", p.get_ref()),
                ),
            }
        }
        Some(Attrs {
            policy,
            dscp,
            protect,
        })
    }

    /// Nested policies form no cycle.
    fn nesting(&mut self, config: &[PolicyConfig], planned: &[PlannedPolicy]) {
        for (id, (policy, c)) in planned.iter().zip(config).enumerate() {
            // A path from `id` back to itself; reported once, at the
            // policy of the cycle that comes first in the file.
            if let Some(cycle) = cycle_from(planned, id as u32)
                && cycle.iter().all(|&q| q >= id as u32)
            {
                let names: Vec<&str> = cycle
                    .iter()
                    .chain([&(id as u32)])
                    .map(|&q| planned[q as usize].name.as_str())
                    .collect();
                self.bad(
                    Some(c.name.span()),
                    format!(
                        "policy {}: nested policies form a cycle: {}",
                        policy.name,
                        names.join(" > ")
                    ),
                );
            }
        }
    }

    /// A CIDR without host bits.
    fn cidr(&mut self, text: &Spanned<String>, what: &str) -> Option<IpNet> {
        match text.get_ref().parse::<IpNet>() {
            Ok(net) if net.trunc() != net => {
                self.bad(
                    Some(text.span()),
                    format!(
                        "{what} {net} has host bits set (did you mean {}?)",
                        net.trunc()
                    ),
                );
                None
            }
            Ok(net) => Some(net),
            Err(e) => {
                self.bad(
                    Some(text.span()),
                    format!("{what}: bad CIDR {:?}: {e}", text.get_ref()),
                );
                None
            }
        }
    }

    fn prefixes(
        &mut self,
        prefixes: &[PrefixConfig],
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
        sizes: Limits,
    ) -> Vec<PlannedPrefix> {
        let mut out = Vec::new();
        let mut seen: HashMap<IpNet, usize> = HashMap::new();
        let (mut v4, mut v6) = (0usize, 0usize);
        for entry in prefixes {
            let text = entry.prefix.get_ref();
            let net = match text.parse::<IpNet>() {
                Ok(net) if net.trunc() != net => {
                    self.bad(
                        Some(entry.prefix.span()),
                        format!(
                            "prefix {net} has host bits set (did you mean {}?)",
                            net.trunc()
                        ),
                    );
                    continue;
                }
                Ok(net) => net,
                Err(e) => {
                    self.bad(
                        Some(entry.prefix.span()),
                        format!("bad prefix {text:?}: {e}"),
                    );
                    continue;
                }
            };
            if let Some(first) = seen.insert(net, line_of(self.text, entry.prefix.span().start)) {
                self.bad(
                    Some(entry.prefix.span()),
                    format!("prefix {net} is already registered on line {first}"),
                );
                continue;
            }
            let what = format!("prefix {net}");
            let Some(Attrs {
                policy,
                dscp,
                protect,
            }) = self.attrs(
                &what,
                AttrsConfig {
                    at: entry.prefix.span(),
                    preference: entry.preference,
                    policy: &entry.policy,
                    pop: &entry.pop,
                    dscp: &entry.dscp,
                    protect: &entry.protect,
                },
                ports,
                port_ids,
                pop_ids,
                policies,
            )
            else {
                continue;
            };
            let region = entry
                .region
                .as_ref()
                .and_then(|r| self.region(r, &format!("prefix {net}")));
            match net {
                IpNet::V4(_) => v4 += 1,
                IpNet::V6(_) => v6 += 1,
            }
            out.push(PlannedPrefix {
                net,
                registration: entry
                    .registration
                    .clone()
                    .unwrap_or_else(|| net.to_string()),
                origin: if entry.prefix.span().start >= self.base_len {
                    Origin::Live
                } else {
                    Origin::Config
                },
                preference: entry.preference,
                policy,
                dscp,
                protect,
                region,
            });
        }
        for (family, n, limit, map) in [
            (
                "IPv4",
                v4,
                sizes.prefixes_v4,
                edge_common::map_names::PREFIX_V4,
            ),
            (
                "IPv6",
                v6,
                sizes.prefixes_v6,
                edge_common::map_names::PREFIX_V6,
            ),
        ] {
            if n > limit as usize {
                self.bad(
                    None,
                    format!("map {map} is full: {n} {family} prefixes exceed its limit of {limit} entries ([limits] prefixes_{})", family.to_lowercase()),
                );
                if let Some(p) = self.problems.last_mut() {
                    p.map_full = true;
                }
            }
        }
        self.limit("policies", policies.len(), limits::MAX_POLICIES);
        out
    }
}

/// The policies on a path of nested members from `start` back to `start`
/// (starting with `start`), if there is one.
fn cycle_from(policies: &[PlannedPolicy], start: u32) -> Option<Vec<u32>> {
    fn walk(
        policies: &[PlannedPolicy],
        at: u32,
        start: u32,
        path: &mut Vec<u32>,
        seen: &mut Vec<bool>,
    ) -> bool {
        path.push(at);
        for m in &policies[at as usize].members {
            if let Target::Policy(q) = m.target {
                if q == start {
                    return true;
                }
                if !seen[q as usize] {
                    seen[q as usize] = true;
                    if walk(policies, q, start, path, seen) {
                        return true;
                    }
                }
            }
        }
        path.pop();
        false
    }
    let mut path = Vec::new();
    let mut seen = vec![false; policies.len()];
    walk(policies, start, start, &mut path, &mut seen).then_some(path)
}

/// 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[daemon]
pin_path = "/sys/fs/bpf/test"
xdp_mode = "generic"

[forwarding]
default_action = "drop"
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0b:01"

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0c:01"
encap_ipv4 = { source = "198.51.100.1", destination = "203.0.113.1" }

[[policies]]
name = "eu"
method = "weighted"
members = [{ pop = "ams", weight = 3 }, { pop = "core", weight = 1 }]

[[prefixes]]
prefix = "203.0.113.0/24"
registration = "contoso"
policy = "eu"
dscp = "af41"
protect = ["peer0"]

[[prefixes]]
prefix = "2001:db8:b::/48"
preference = "internet"
dscp = 46

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "ams"
"#;

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_config_resolves_names() {
        let plan = parse(GOOD).unwrap();
        assert_eq!(plan.pin_path, PathBuf::from("/sys/fs/bpf/test"));
        assert_eq!(plan.xdp_mode, XdpMode::Generic);
        assert_eq!(plan.default_action, DefaultAction::Drop);
        assert_eq!((plan.backbone_exit, plan.transit_exit), (Some(0), Some(1)));
        assert_eq!(
            plan.ports[2],
            PlannedPort {
                interface: "tr0".into(),
                role: Role::Transit
            }
        );
        assert_eq!(
            plan.pops[2].encap_ipv4,
            Some((
                "198.51.100.1".parse().unwrap(),
                "203.0.113.1".parse().unwrap()
            ))
        );
        assert_eq!(
            plan.policies[0].members,
            vec![Member::pop(2, 3, 1), Member::pop(0, 1, 2)]
        );
        let p = &plan.prefixes[0];
        assert_eq!(
            (
                p.registration.as_str(),
                p.policy,
                p.dscp,
                p.protect.as_slice()
            ),
            ("contoso", Some(0), Some(34), &[0][..])
        );
        let p = &plan.prefixes[1];
        assert_eq!(
            (p.preference, p.policy, p.dscp),
            (Preference::Internet, None, Some(46))
        );
        // `pop = "ams"` became a single-member priority policy.
        assert_eq!(plan.prefixes[2].policy, Some(1));
        assert_eq!(plan.policies[1].name, "pop:ams");
        assert_eq!(plan.policies[1].method, Method::Priority);
    }

    #[test]
    fn defaults_apply() {
        let plan = parse("").unwrap();
        assert_eq!(plan.pin_path, PathBuf::from(DEFAULT_PIN_PATH));
        assert_eq!(plan.xdp_mode, XdpMode::Auto);
        assert_eq!(plan.default_action, DefaultAction::Pass);
        assert_eq!(plan.encap_ttl, 64);
        assert_eq!(
            plan.metrics_address,
            Some("127.0.0.1:9477".parse().unwrap())
        );
        assert_eq!(
            parse("[daemon]\nmetrics_address = \"\"")
                .unwrap()
                .metrics_address,
            None
        );
        assert_eq!(
            problems("[daemon]\nmetrics_address = \"localhost\""),
            ["line 2: metrics_address \"localhost\" is not an IP:port"]
        );
    }

    #[test]
    fn dscp_names() {
        for (name, value) in [
            ("ef", 46),
            ("AF41", 34),
            ("af11", 10),
            ("af43", 38),
            ("cs1", 8),
            ("cs7", 56),
            ("be", 0),
            ("le", 1),
        ] {
            assert_eq!(dscp_by_name(name), Some(value), "{name}");
        }
        for bad in ["af44", "af51", "cs8", "gold", "af1"] {
            assert_eq!(dscp_by_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let p = problems("[daemon]\npin_path = \"/x\"\ncolour = 1\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 3: unknown field `colour`"), "{p:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let text = GOOD
            .replace("203.0.113.0/24", "203.0.113.1/24")
            .replace("weight = 3", "weight = 0")
            .replace("dscp = 46", "dscp = 64")
            .replace("02:00:00:00:0b:01", "02:00:00:zz:0b:01")
            .replace("protect = [\"peer0\"]", "protect = [\"bb0\", \"nope\"]")
            .replace(
                "destination = \"203.0.113.1\"",
                "destination = \"2001:db8::1\"",
            );
        assert_eq!(
            problems(&text),
            vec![
                "line 31: PoP isp: bad MAC \"02:00:00:zz:0b:01\": Unexpected character 'z' at position 10",
                "line 37: PoP ams: encap_ipv4 needs a source and destination of the right address family",
                "line 42: policy eu: weight 0 is outside 1-1000",
                "line 45: prefix 203.0.113.1/24 has host bits set (did you mean 203.0.113.0/24?)",
                "line 54: prefix 2001:db8:b::/48: DSCP 64 is outside 0-63",
            ]
        );
        let text = GOOD.replace("protect = [\"peer0\"]", "protect = [\"bb0\", \"nope\"]");
        assert_eq!(
            problems(&text),
            vec![
                "line 49: prefix 203.0.113.0/24: protect names bb0, which is not a peering port",
                "line 49: prefix 203.0.113.0/24: protect names unknown port \"nope\"",
            ]
        );
    }

    #[test]
    fn duplicates_and_unknown_names() {
        let text = format!(
            "{GOOD}\n[[prefixes]]\nprefix = \"203.0.113.0/24\"\npop = \"ams\"\n\n[[prefixes]]\nprefix = \"192.0.2.0/24\"\npolicy = \"nyc\"\n\n[[pops]]\nname = \"ams\"\ninterface = \"eth9\"\nmac = \"01:00:5e:00:00:01\"\n"
        );
        assert_eq!(
            problems(&text),
            vec![
                "line 69: PoP ams is defined twice",
                "line 70: PoP ams: interface eth9 is not a listed port",
                "line 71: PoP ams: MAC 01:00:5E:00:00:01 is not a unicast address",
                "line 61: prefix 203.0.113.0/24 is already registered on line 45",
                "line 66: prefix 192.0.2.0/24: unknown policy \"nyc\"",
            ]
        );
    }

    #[test]
    fn exits_are_required_where_traffic_needs_them() {
        let text = GOOD
            .replace("backbone_exit = \"core\"\n", "")
            .replace("transit_exit = \"isp\"\n", "");
        assert_eq!(
            problems(&text),
            vec![
                "[forwarding] backbone_exit is required: peering ports carry microsoft-preference prefixes",
                "[forwarding] transit_exit is required: some prefixes have the internet preference",
            ]
        );
    }

    #[test]
    fn bad_prefix_text() {
        let p = problems("[[prefixes]]\nprefix = \"203.0.113.0/33\"\npop = \"x\"\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 2: bad prefix \"203.0.113.0/33\""),
            "{p:?}"
        );
    }

    const HEALTH: &str = r#"
[forwarding]
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"
region = "world > europe > ie"
probe = { type = "icmp", address = "203.0.113.1" }

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0b:01"
probe = { type = "http", address = "2001:db8::1", path = "/health", status = 204, interval_ms = 2000, timeout_ms = 1000, rise = 1, fall = 5, interface = "" }

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0c:01"
region = "world > Europe > NL"

[pops.probe]
type = "udp"
address = "198.51.100.7"
port = 7
interval_ms = 200

[[policies]]
name = "eu"
method = "performance"
members = [{ pop = "core" }, { pop = "ams" }]
hysteresis_ms = 8
hysteresis_percent = 15
fallback = "pass"

[[policies]]
name = "geo"
method = "geographic"
members = [{ policy = "eu", region = "world > europe" }, { pop = "isp", region = "world", weight = 2 }]

[[policies]]
name = "sites"
method = "subnet"
members = [{ pop = "ams", subnets = ["192.0.2.0/26", "2001:db8:5::/48"] }, { policy = "geo" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "sites"
region = "world > europe > fr"
"#;

    #[test]
    fn health_and_method_keys_resolve() {
        let plan = parse(HEALTH).unwrap_or_else(|e| panic!("{e}"));
        let core = &plan.pops[0];
        assert_eq!(
            core.region,
            Some(Region::parse("world > europe > ie").unwrap())
        );
        assert_eq!(
            core.probe,
            Some(Probe {
                kind: ProbeKind::Icmp,
                address: "203.0.113.1".parse().unwrap(),
                device: Some("bb0".into()),
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                rise: 2,
                fall: 3,
            }),
            "defaults: the PoP's interface, 1 s / 500 ms / 2 / 3"
        );
        let isp = plan.pops[1].probe.as_ref().unwrap();
        assert_eq!(
            (
                isp.kind.clone(),
                isp.device.as_deref(),
                isp.interval,
                isp.timeout,
                isp.rise,
                isp.fall
            ),
            (
                ProbeKind::Http {
                    port: 80,
                    path: "/health".into(),
                    host: None,
                    status: 204
                },
                None,
                Duration::from_secs(2),
                Duration::from_secs(1),
                1,
                5
            )
        );
        let ams = plan.pops[2].probe.as_ref().unwrap();
        assert_eq!(
            ams.kind,
            ProbeKind::Udp {
                port: 7,
                payload: DEFAULT_UDP_PAYLOAD.as_bytes().to_vec()
            }
        );
        // A short interval shortens the default timeout.
        assert_eq!(
            (ams.interval, ams.timeout),
            (Duration::from_millis(200), Duration::from_millis(200))
        );
        assert_eq!(
            plan.pops[2].region.as_ref().unwrap().to_string(),
            "world > europe > nl"
        );

        let eu = &plan.policies[0];
        assert_eq!(eu.method, Method::Performance);
        assert_eq!(eu.fallback, Fallback::Pass);
        assert_eq!(
            eu.hysteresis,
            Hysteresis {
                absolute: Duration::from_millis(8),
                percent: 15
            }
        );
        let geo = &plan.policies[1];
        assert_eq!(
            geo.fallback,
            Fallback::Transit,
            "default with a transit exit"
        );
        assert_eq!(geo.members[0].target, Target::Policy(0));
        assert_eq!(
            geo.members[0].region,
            Some(Region::parse("world>europe").unwrap())
        );
        assert_eq!(
            (geo.members[1].target, geo.members[1].weight),
            (Target::Pop(1), 2)
        );
        let sites = &plan.policies[2];
        assert_eq!(
            sites.members[0].subnets,
            vec![
                "192.0.2.0/26".parse::<IpNet>().unwrap(),
                "2001:db8:5::/48".parse().unwrap()
            ]
        );
        assert!(sites.members[1].subnets.is_empty());
        assert_eq!(
            plan.prefixes[0].region,
            Some(Region(vec!["world".into(), "europe".into(), "fr".into()]))
        );
    }

    #[test]
    fn regions_parse_and_nest() {
        let ie = Region::parse(" World >europe> IE ").unwrap();
        assert_eq!(ie.to_string(), "world > europe > ie");
        assert!(ie.within(&Region::parse("world > europe").unwrap()));
        assert!(ie.within(&Region::default()));
        assert!(!ie.within(&Region::parse("world > eu").unwrap()));
        assert_eq!(
            ie.lineage().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["world > europe > ie", "world > europe", "world", "(root)"]
        );
        assert!(Region::parse("world >> ie").is_err());
        assert!(Region::parse("").is_err());
        assert!(Region::parse("world > new york").is_err());
    }

    #[test]
    fn health_and_method_problems_are_reported_with_their_lines() {
        let text = HEALTH
            .replace(
                "address = \"203.0.113.1\"",
                "address = \"203.0.113.1\", port = 7",
            )
            .replace("status = 204", "status = 700")
            .replace("timeout_ms = 1000", "timeout_ms = 3000")
            .replace("rise = 1", "rise = 0")
            .replace(
                "region = \"world > Europe > NL\"",
                "region = \"world > > nl\"",
            )
            .replace("port = 7\ninterval_ms = 200", "interval_ms = 20")
            .replace("hysteresis_ms = 8", "hysteresis_ms = -1")
            .replace("region = \"world\", weight = 2", "weight = 2")
            .replace("\"192.0.2.0/26\"", "\"192.0.2.1/26\"")
            .replace("{ policy = \"geo\" }", "{ policy = \"nowhere\" }")
            .replace("region = \"world > europe > fr\"", "region = \"world/fr\"");
        assert_eq!(
            problems(&text),
            vec![
                "line 19: PoP core: probe: `port` does not apply to a icmp probe",
                "line 25: PoP isp: probe: status 700 is outside 100-599",
                "line 25: PoP isp: probe: timeout_ms 3000 is longer than interval_ms 2000",
                "line 25: PoP isp: probe: rise 0 is outside 1-100",
                "line 31: PoP ams: region \"world > > nl\" has an empty segment",
                "line 33: PoP ams: probe: a udp probe needs a port",
                "line 36: PoP ams: probe: interval_ms 20 is outside 50-600000",
                "line 42: policy eu: hysteresis_ms -1 is outside 0-10000",
                "line 49: policy geo: member isp has no region (give the member or its PoP a region)",
                "line 54: policy sites: subnet 192.0.2.1/26 has host bits set (did you mean 192.0.2.0/26?)",
                "line 54: policy sites: unknown member policy \"nowhere\"",
                "line 59: prefix 192.0.2.0/24: region \"world/fr\": segment \"world/fr\" may only hold letters, digits, `-` and `_`",
            ]
        );
    }

    #[test]
    fn method_specific_keys_and_member_shapes_are_checked() {
        let text = HEALTH
            .replace(
                "members = [{ pop = \"core\" }, { pop = \"ams\" }]",
                "members = [{ pop = \"core\", region = \"world\" }, { pop = \"ams\", policy = \"geo\" }, { pop = \"core\" }]",
            )
            .replace("{ policy = \"geo\" }]", "{ policy = \"geo\" }, { pop = \"core\" }]")
            .replace("prefix = \"192.0.2.0/24\"", "prefix = \"192.0.2.0/24\"\npop = \"core\"");
        assert_eq!(
            problems(&text),
            vec![
                "line 42: policy eu: a member region applies to the geographic method only",
                "line 42: policy eu: a member names either a pop or a policy",
                "line 42: policy eu: core is a member twice",
                "line 55: policy sites: a subnet policy needs exactly one member without subnets (the fallback member), not 2",
                "line 59: prefix 192.0.2.0/24: give either policy or pop, not both",
            ]
        );
        let text = HEALTH
            .replace("hysteresis_ms = 8\nhysteresis_percent = 15\n", "")
            .replace(
                "method = \"geographic\"",
                "method = \"geographic\"\nhysteresis_percent = 5",
            )
            .replace(
                "subnets = [\"192.0.2.0/26\", \"2001:db8:5::/48\"]",
                "subnets = []",
            )
            .replace(
                "{ policy = \"eu\", region",
                "{ policy = \"eu\", subnets = [\"10.0.0.0/8\"], region",
            );
        assert_eq!(
            problems(&text),
            vec![
                "line 49: policy geo: subnets apply to the subnet method only",
                "line 48: policy geo: hysteresis_percent applies to the performance method only",
                "line 54: policy sites: empty subnets (leave the key out for the fallback member)",
            ]
        );
    }

    #[test]
    fn nested_policies_may_not_loop_or_nest_a_subnet_policy() {
        let text = format!(
            "{HEALTH}\n[[policies]]\nname = \"a\"\nmethod = \"priority\"\nmembers = [{{ policy = \"b\" }}]\n\n[[policies]]\nname = \"b\"\nmethod = \"weighted\"\nmembers = [{{ pop = \"core\" }}, {{ policy = \"c\" }}]\n\n[[policies]]\nname = \"c\"\nmethod = \"priority\"\nmembers = [{{ policy = \"a\" }}, {{ policy = \"sites\" }}]\n\n[[policies]]\nname = \"self\"\nmethod = \"priority\"\nmembers = [{{ policy = \"self\" }}]\n"
        );
        assert_eq!(
            problems(&text),
            vec![
                "line 75: policy c: subnet policy sites cannot be a member (it maps customer addresses, which only a prefix has)",
                "line 63: policy a: nested policies form a cycle: a > b > c > a",
                "line 78: policy self: nested policies form a cycle: self > self",
            ]
        );
    }

    #[test]
    fn explicit_transit_fallback_needs_a_transit_exit() {
        let text = HEALTH
            .replace("transit_exit = \"isp\"\n", "")
            .replace("fallback = \"pass\"", "fallback = \"transit\"");
        assert_eq!(
            problems(&text),
            ["line 44: policy eu: fallback = \"transit\" needs [forwarding] transit_exit"]
        );
    }

    #[test]
    fn too_many_region_tables_are_refused() {
        let mut text = HEALTH.to_string();
        for i in 0..300 {
            text.push_str(&format!(
                "\n[[prefixes]]\nprefix = \"10.{}.{}.0/24\"\npolicy = \"geo\"\nregion = \"world > r{i}\"\n",
                i / 256,
                i % 256
            ));
        }
        assert_eq!(
            problems(&text),
            [
                "302 selection tables (policies × prefix regions × subnet members) exceed the limit of 256"
            ]
        );
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../docs/config.md");
        let example = doc
            .split("### Example\n\n```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/config.md has an example");
        let text = format!(
            "[[ports]]\ninterface = \"bb0\"\nrole = \"backbone\"\n\n[[ports]]\ninterface = \"bb1\"\nrole = \"backbone\"\n{example}"
        );
        let plan = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let layout = crate::resolve::Layout::new(&plan);
        assert_eq!(layout.more_specific.len(), 1);
        assert_eq!(
            layout.table_of(0).unwrap().to_string(),
            "by-site [world > europe > fr] [policy:near]"
        );
    }
}

#[cfg(test)]
mod shipped_example {
    /// dist/edge.toml, the complete example, is a valid config that uses
    /// every section.
    #[test]
    fn the_complete_example_is_valid() {
        let text = include_str!("../../dist/edge.toml");
        let plan = super::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.ports.len(), 4);
        assert_eq!(plan.pops.len(), 5);
        assert!(plan.pops.iter().filter(|p| p.probe.is_some()).count() == 4);
        assert!(plan.pops.iter().any(|p| p.next_hop.is_some()));
        assert_eq!(plan.route_sources.len(), 2);
        assert_eq!(plan.prefixes.len(), 6);
        for section in [
            "[daemon]",
            "[limits]",
            "[forwarding]",
            "[[ports]]",
            "[[pops]]",
            "[[policies]]",
            "[[prefixes]]",
            "[[route_sources]]",
        ] {
            assert!(text.contains(section), "{section}");
        }
    }
}
