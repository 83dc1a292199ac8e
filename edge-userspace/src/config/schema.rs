//! The TOML schema: the file's shape as serde reads it, with spans for
//! error lines. Nothing here is validated; `validate` turns it into a plan.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::plan::{
    DEFAULT_PIN_PATH, DEFAULT_SOCKET_PATH, DEFAULT_STATE_PATH, DefaultAction, Fallback, Family,
    Method, Preference, PrefixMetrics, Role, Scope, XdpMode,
};

/// `[[domains]]`: a private routing domain (a customer's private peering).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainConfig {
    pub(crate) name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(default)]
    pub(crate) daemon: Daemon,
    #[serde(default)]
    pub(crate) forwarding: Forwarding,
    #[serde(default)]
    pub(crate) limits: LimitsConfig,
    #[serde(default)]
    pub(crate) domains: Vec<DomainConfig>,
    #[serde(default)]
    pub(crate) ports: Vec<PortConfig>,
    #[serde(default)]
    pub(crate) pops: Vec<PopConfig>,
    #[serde(default)]
    pub(crate) policies: Vec<PolicyConfig>,
    #[serde(default)]
    pub(crate) prefixes: Vec<PrefixConfig>,
    #[serde(default)]
    pub(crate) route_sources: Vec<RouteSourceConfig>,
    #[serde(default)]
    pub(crate) registrations: Vec<RegistrationConfig>,
    pub(crate) bmp: Option<BmpConfig>,
    pub(crate) latency: Option<LatencyConfig>,
}

/// `[latency]`: passive customer round-trip times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LatencyConfig {
    /// `false` keeps the section but measures nothing.
    pub(crate) enabled: Option<bool>,
    pub(crate) sample_interval_ms: Option<Spanned<i64>>,
    pub(crate) period_ms: Option<Spanned<i64>>,
    pub(crate) retain_minutes: Option<Spanned<i64>>,
    pub(crate) rtt_p90_ms: Option<Spanned<i64>>,
    pub(crate) window_ms: Option<Spanned<i64>>,
    pub(crate) hold_ms: Option<Spanned<i64>>,
    pub(crate) min_samples: Option<Spanned<i64>>,
}

/// `[[registrations]]`: who may announce a registration's prefixes in BGP
/// (route analytics over BMP).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationConfig {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) origin_asns: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    pub(crate) upstream_asns: Option<Spanned<Vec<Spanned<i64>>>>,
    /// The customer latency objective.
    pub(crate) rtt_p90_ms: Option<Spanned<i64>>,
    /// Route analytics: the peering ports a hijacked prefix is held to.
    #[serde(default)]
    pub(crate) hold_on_hijack: Option<Spanned<Vec<Spanned<String>>>>,
    /// The connection's continent, a region path.
    pub(crate) continent: Option<Spanned<String>>,
    pub(crate) scope: Option<Spanned<Scope>>,
}

/// `[bmp]`: where edged listens for BGP speakers' BMP sessions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BmpConfig {
    pub(crate) listen: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Protocol {
    Number(i64),
    Name(String),
}

/// Routes of a kernel table that become registered prefixes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteSourceConfig {
    pub(crate) table: Spanned<i64>,
    #[serde(default)]
    pub(crate) family: Family,
    pub(crate) protocol: Option<Spanned<Protocol>>,
    pub(crate) metric: Option<Spanned<i64>>,
    pub(crate) realm: Option<Spanned<i64>>,
    pub(crate) registration: Option<String>,
    #[serde(default)]
    pub(crate) preference: Preference,
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) pop: Option<Spanned<String>>,
    pub(crate) dscp: Option<Spanned<Dscp>>,
    #[serde(default)]
    pub(crate) protect: Vec<Spanned<String>>,
    /// A private domain's name: the routes become its prefixes.
    pub(crate) domain: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Daemon {
    #[serde(default = "default_pin_path")]
    pub(crate) pin_path: PathBuf,
    #[serde(default)]
    pub(crate) xdp_mode: XdpMode,
    /// Prometheus endpoint; an empty string turns it off.
    pub(crate) metrics_address: Option<Spanned<String>>,
    #[serde(default = "default_socket_path")]
    pub(crate) socket_path: PathBuf,
    #[serde(default = "default_state_path")]
    pub(crate) state_path: PathBuf,
    /// A reload reads the file once it stayed the same this long (ms).
    pub(crate) reload_settle_ms: Option<Spanned<i64>>,
    /// A reload dropping more than this share of the file's prefixes
    /// needs `--force`.
    pub(crate) reload_max_shrink_percent: Option<Spanned<i64>>,
    /// A group whose members may use the read-only commands.
    #[serde(default)]
    pub(crate) read_group: String,
    /// Which prefix counters the metrics carry.
    #[serde(default)]
    pub(crate) prefix_metrics: PrefixMetrics,
}

impl Default for Daemon {
    fn default() -> Self {
        Self {
            pin_path: default_pin_path(),
            xdp_mode: XdpMode::default(),
            metrics_address: None,
            socket_path: default_socket_path(),
            state_path: default_state_path(),
            reload_settle_ms: None,
            reload_max_shrink_percent: None,
            read_group: String::new(),
            prefix_metrics: PrefixMetrics::default(),
        }
    }
}

pub(crate) fn default_socket_path() -> PathBuf {
    DEFAULT_SOCKET_PATH.into()
}

pub(crate) fn default_state_path() -> PathBuf {
    DEFAULT_STATE_PATH.into()
}

/// Map sizes: lower them to save kernel memory on small hosts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsConfig {
    pub(crate) prefixes_v4: Option<Spanned<i64>>,
    pub(crate) prefixes_v6: Option<Spanned<i64>>,
    pub(crate) rtt_flows: Option<Spanned<i64>>,
    pub(crate) rtt_buckets: Option<Spanned<i64>>,
}

pub(crate) fn default_pin_path() -> PathBuf {
    DEFAULT_PIN_PATH.into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Forwarding {
    #[serde(default)]
    pub(crate) default_action: DefaultAction,
    #[serde(default, deserialize_with = "exit_name")]
    pub(crate) backbone_exit: Option<Spanned<String>>,
    pub(crate) backbone_exit_fallback: Option<Spanned<Fallback>>,
    #[serde(default, deserialize_with = "exit_name")]
    pub(crate) transit_exit: Option<Spanned<String>>,
    pub(crate) transit_exit_fallback: Option<Spanned<Fallback>>,
    pub(crate) encap_ttl: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortConfig {
    pub(crate) interface: Spanned<String>,
    pub(crate) role: Role,
    /// Unique; default: the interface (`interface.VID[.VID]` when tagged).
    pub(crate) name: Option<Spanned<String>>,
    /// `[outer]` or `[outer, inner]`.
    pub(crate) vlan: Option<Spanned<Vec<Spanned<i64>>>>,
    /// A `[[domains]]` name; default: the public domain.
    pub(crate) domain: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tunnel {
    pub(crate) source: String,
    pub(crate) destination: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PopConfig {
    pub(crate) name: Spanned<String>,
    pub(crate) interface: Option<Spanned<String>>,
    /// The egress port by name (its interface, tags and domain).
    pub(crate) port: Option<Spanned<String>>,
    /// The tags frames leave with (`[]`: untagged).
    pub(crate) vlan: Option<Spanned<Vec<Spanned<i64>>>>,
    /// A tag pushed outside the received ones.
    pub(crate) vlan_push: Option<Spanned<i64>>,
    pub(crate) mac: Option<Spanned<String>>,
    /// The next hop's address, its MAC taken from the neighbour table.
    pub(crate) next_hop: Option<Spanned<String>>,
    pub(crate) encap_ipv4: Option<Spanned<Tunnel>>,
    pub(crate) encap_ipv6: Option<Spanned<Tunnel>>,
    pub(crate) region: Option<Spanned<String>>,
    pub(crate) probe: Option<Spanned<ProbeConfig>>,
    /// The egress link's MTU, instead of the interface's.
    pub(crate) mtu: Option<Spanned<i64>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProbeType {
    Icmp,
    Tcp,
    Http,
    Udp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProbeConfig {
    #[serde(rename = "type")]
    pub(crate) kind: ProbeType,
    pub(crate) address: Spanned<String>,
    pub(crate) port: Option<Spanned<i64>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) status: Option<Spanned<i64>>,
    pub(crate) payload: Option<Spanned<String>>,
    pub(crate) interface: Option<Spanned<String>>,
    pub(crate) interval_ms: Option<Spanned<i64>>,
    pub(crate) timeout_ms: Option<Spanned<i64>>,
    pub(crate) rise: Option<Spanned<i64>>,
    pub(crate) fall: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberConfig {
    pub(crate) pop: Option<Spanned<String>>,
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) weight: Option<Spanned<i64>>,
    pub(crate) priority: Option<Spanned<i64>>,
    pub(crate) region: Option<Spanned<String>>,
    pub(crate) subnets: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyConfig {
    pub(crate) name: Spanned<String>,
    pub(crate) method: Method,
    pub(crate) members: Spanned<Vec<Spanned<MemberConfig>>>,
    pub(crate) fallback: Option<Spanned<Fallback>>,
    pub(crate) hysteresis_ms: Option<Spanned<i64>>,
    pub(crate) hysteresis_percent: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Dscp {
    Number(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixConfig {
    pub(crate) prefix: Spanned<String>,
    pub(crate) registration: Option<String>,
    #[serde(default)]
    pub(crate) preference: Preference,
    pub(crate) policy: Option<Spanned<String>>,
    /// Shorthand for a single-member policy.
    pub(crate) pop: Option<Spanned<String>>,
    pub(crate) dscp: Option<Spanned<Dscp>>,
    #[serde(default)]
    pub(crate) protect: Vec<Spanned<String>>,
    pub(crate) region: Option<Spanned<String>>,
    /// A private domain's name; default: the public domain.
    pub(crate) domain: Option<Spanned<String>>,
}

/// An exit names one PoP or policy. A list (`["pop-a", "pop-b"]`) is the
/// likely mistake: its error says what to write instead.
fn exit_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Spanned<String>>, D::Error> {
    struct Name(String);
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Name;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("the name of a PoP or of a policy")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
            Ok(Name(v.to_string()))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Name, A::Error> {
            Err(serde::de::Error::custom(
                "an exit is one name, not a list: for several PoPs, name a [[policies]] entry that lists them (method priority or weighted)",
            ))
        }
    }
    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Visitor)
        }
    }
    let v: Option<Spanned<Name>> = Option::deserialize(d)?;
    Ok(v.map(|s| {
        let span = s.span();
        Spanned::new(span, s.into_inner().0)
    }))
}
