//! The TOML config: schema, parsing and whole-file validation.
//!
//! A config is parsed and validated as a whole before anything is applied;
//! every problem is reported with its line, not just the first one. The
//! result is a [`Plan`]: names resolved to ids, strings parsed, ready to be
//! written into the maps.

use std::{
    collections::HashMap,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    ops::Range,
    path::PathBuf,
};

use edge_common::limits;
use ipnet::IpNet;
use macaddr::MacAddr6;
use serde::Deserialize;
use toml::Spanned;

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
    mac: Spanned<String>,
    encap_ipv4: Option<Spanned<Tunnel>>,
    encap_ipv6: Option<Spanned<Tunnel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberConfig {
    pop: Spanned<String>,
    weight: Option<Spanned<i64>>,
    priority: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyConfig {
    name: Spanned<String>,
    method: Method,
    members: Spanned<Vec<MemberConfig>>,
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
    pub mac: [u8; 6],
    pub encap_ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    pub encap_ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPolicy {
    pub name: String,
    pub method: Method,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub pop: u32,
    pub weight: u32,
    pub priority: u32,
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
        let mut policies = self.policies(&file.policies, &pop_ids);
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
        Ok(Plan {
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
        })
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
            let mac = match pop.mac.get_ref().parse::<MacAddr6>() {
                Ok(mac) if mac.is_nil() || mac.is_multicast() => {
                    self.bad(
                        Some(pop.mac.span()),
                        format!("PoP {name}: MAC {mac} is not a unicast address"),
                    );
                    [0; 6]
                }
                Ok(mac) => mac.into_array(),
                Err(e) => {
                    self.bad(
                        Some(pop.mac.span()),
                        format!("PoP {name}: bad MAC {:?}: {e}", pop.mac.get_ref()),
                    );
                    [0; 6]
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
            out.push(PlannedPop {
                name: name.clone(),
                interface: interface.clone(),
                mac,
                encap_ipv4,
                encap_ipv6,
            });
        }
        self.limit("PoPs", out.len(), limits::MAX_POPS);
        out
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

    fn policies(
        &mut self,
        policies: &[PolicyConfig],
        pop_ids: &HashMap<&str, u32>,
    ) -> Vec<PlannedPolicy> {
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
            let mut members: Vec<Member> = Vec::new();
            for (i, m) in policy.members.get_ref().iter().enumerate() {
                let Some(pop) = self.pop_ref(&m.pop, pop_ids, &format!("policy {name}")) else {
                    continue;
                };
                if members.iter().any(|x| x.pop == pop) {
                    self.bad(
                        Some(m.pop.span()),
                        format!("policy {name}: PoP {} is a member twice", m.pop.get_ref()),
                    );
                    continue;
                }
                let mut number = |v: &Option<Spanned<i64>>, what: &str, default: u32| match v {
                    None => default,
                    Some(v) if (1..=1000).contains(v.get_ref()) => *v.get_ref() as u32,
                    Some(v) => {
                        self.bad(
                            Some(v.span()),
                            format!("policy {name}: {what} {} is outside 1-1000", v.get_ref()),
                        );
                        default
                    }
                };
                let weight = number(&m.weight, "weight", 1);
                let priority = number(&m.priority, "priority", i as u32 + 1);
                members.push(Member {
                    pop,
                    weight,
                    priority,
                });
            }
            out.push(PlannedPolicy {
                name: name.clone(),
                method: policy.method,
                members,
            });
        }
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
                let Some(pop_id) = self.pop_ref(pop, pop_ids, what) else {
                    return None;
                };
                let name = format!("pop:{}", pop.get_ref());
                Some(match policies.iter().position(|p| p.name == name) {
                    Some(id) => id as u32,
                    None => {
                        let member = Member {
                            pop: pop_id,
                            weight: 1,
                            priority: 1,
                        };
                        policies.push(PlannedPolicy {
                            name,
                            method: Method::Priority,
                            members: vec![member],
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
            vec![
                Member {
                    pop: 2,
                    weight: 3,
                    priority: 1
                },
                Member {
                    pop: 0,
                    weight: 1,
                    priority: 2
                }
            ]
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
}
