//! The TOML config: schema, parsing and whole-file validation.
//!
//! A config is parsed and validated as a whole before anything is applied;
//! every problem is reported with its line, not just the first one.

use std::{collections::HashMap, fmt, ops::Range, path::PathBuf};

use edge_common::limits;
use ipnet::IpNet;
use macaddr::MacAddr6;
use serde::Deserialize;
use toml::Spanned;

/// Where pinned maps live unless the config says otherwise.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/edge";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: Daemon,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub pops: Vec<PopConfig>,
    #[serde(default)]
    pub prefixes: Vec<PrefixConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// bpffs directory holding the pinned maps.
    #[serde(default = "default_pin_path")]
    pub pin_path: PathBuf,
    #[serde(default)]
    pub xdp_mode: XdpMode,
}

impl Default for Daemon {
    fn default() -> Self {
        Self {
            pin_path: default_pin_path(),
            xdp_mode: XdpMode::default(),
        }
    }
}

fn default_pin_path() -> PathBuf {
    DEFAULT_PIN_PATH.into()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub interface: Spanned<String>,
    pub role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {
    pub name: Spanned<String>,
    /// Egress interface; must be one of the ports.
    pub interface: Spanned<String>,
    /// The next hop's MAC address.
    pub mac: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixConfig {
    pub prefix: Spanned<String>,
    /// Name of the PoP that receives the prefix's traffic.
    pub pop: Spanned<String>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
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

/// A validated config: names resolved to indices, strings parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub pin_path: PathBuf,
    pub xdp_mode: XdpMode,
    pub ports: Vec<(String, Role)>,
    /// PoP id = index.
    pub pops: Vec<PlannedPop>,
    pub prefixes: Vec<(IpNet, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPop {
    pub name: String,
    pub interface: String,
    pub mac: [u8; 6],
}

impl Config {
    /// Parses and validates `text`; `Err` lists every problem with its line.
    pub fn parse(text: &str) -> Result<Plan, Invalid> {
        let config: Config = toml::from_str(text).map_err(|e| {
            Invalid(vec![Problem {
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_string(),
            }])
        })?;
        config.validate(text)
    }

    fn validate(self, text: &str) -> Result<Plan, Invalid> {
        let mut problems = Vec::new();
        let mut bad = |span: Option<Range<usize>>, message: String| {
            problems.push(Problem {
                line: span.map(|s| line_of(text, s.start)),
                message,
            })
        };

        let mut ports = Vec::new();
        let mut port_names = HashMap::new();
        for port in &self.ports {
            let name = port.interface.get_ref();
            if name.is_empty() || name.len() > 15 {
                bad(
                    Some(port.interface.span()),
                    format!("interface name {name:?} must be 1-15 characters"),
                );
            } else if port_names.insert(name.clone(), ()).is_some() {
                bad(
                    Some(port.interface.span()),
                    format!("port {name} is listed twice"),
                );
            } else {
                ports.push((name.clone(), port.role));
            }
        }
        if ports.len() > limits::MAX_TX_PORTS as usize {
            bad(
                None,
                format!(
                    "{} ports exceed the limit of {}",
                    ports.len(),
                    limits::MAX_TX_PORTS
                ),
            );
        }

        let mut pops = Vec::new();
        let mut pop_ids = HashMap::new();
        for pop in &self.pops {
            let name = pop.name.get_ref();
            if name.is_empty() {
                bad(Some(pop.name.span()), "PoP name must not be empty".into());
            } else if pop_ids.insert(name.clone(), pops.len() as u32).is_some() {
                bad(
                    Some(pop.name.span()),
                    format!("PoP {name} is defined twice"),
                );
            }
            let interface = pop.interface.get_ref();
            if !port_names.contains_key(interface) {
                bad(
                    Some(pop.interface.span()),
                    format!("PoP {name}: interface {interface} is not a listed port"),
                );
            }
            let mac = match pop.mac.get_ref().parse::<MacAddr6>() {
                Ok(mac) if mac.is_nil() || mac.is_multicast() => {
                    bad(
                        Some(pop.mac.span()),
                        format!("PoP {name}: MAC {mac} is not a unicast address"),
                    );
                    [0; 6]
                }
                Ok(mac) => mac.into_array(),
                Err(e) => {
                    bad(
                        Some(pop.mac.span()),
                        format!("PoP {name}: bad MAC {:?}: {e}", pop.mac.get_ref()),
                    );
                    [0; 6]
                }
            };
            pops.push(PlannedPop {
                name: name.clone(),
                interface: interface.clone(),
                mac,
            });
        }
        if pops.len() > limits::MAX_POPS as usize {
            bad(
                None,
                format!(
                    "{} PoPs exceed the limit of {}",
                    pops.len(),
                    limits::MAX_POPS
                ),
            );
        }

        let mut prefixes = Vec::new();
        let mut seen = HashMap::new();
        let (mut v4, mut v6) = (0u32, 0u32);
        for entry in &self.prefixes {
            let text_prefix = entry.prefix.get_ref();
            let net = match text_prefix.parse::<IpNet>() {
                Ok(net) if net.trunc() != net => {
                    bad(
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
                    bad(
                        Some(entry.prefix.span()),
                        format!("bad prefix {text_prefix:?}: {e}"),
                    );
                    continue;
                }
            };
            if let Some(first) = seen.insert(net, line_of(text, entry.prefix.span().start)) {
                bad(
                    Some(entry.prefix.span()),
                    format!("prefix {net} is already registered on line {first}"),
                );
                continue;
            }
            let Some(&pop) = pop_ids.get(entry.pop.get_ref()) else {
                bad(
                    Some(entry.pop.span()),
                    format!("prefix {net}: unknown PoP {:?}", entry.pop.get_ref()),
                );
                continue;
            };
            match net {
                IpNet::V4(_) => v4 += 1,
                IpNet::V6(_) => v6 += 1,
            }
            prefixes.push((net, pop));
        }
        if v4 > limits::MAX_PREFIXES_V4 {
            bad(
                None,
                format!(
                    "{v4} IPv4 prefixes exceed the limit of {}",
                    limits::MAX_PREFIXES_V4
                ),
            );
        }
        if v6 > limits::MAX_PREFIXES_V6 {
            bad(
                None,
                format!(
                    "{v6} IPv6 prefixes exceed the limit of {}",
                    limits::MAX_PREFIXES_V6
                ),
            );
        }

        if !problems.is_empty() {
            return Err(Invalid(problems));
        }
        Ok(Plan {
            pin_path: self.daemon.pin_path,
            xdp_mode: self.daemon.xdp_mode,
            ports,
            pops,
            prefixes,
        })
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

[[ports]]
interface = "eth0"
role = "peering"

[[ports]]
interface = "eth1"
role = "backbone"

[[pops]]
name = "ams"
interface = "eth1"
mac = "02:00:00:00:0a:01"

[[prefixes]]
prefix = "203.0.113.0/24"
pop = "ams"

[[prefixes]]
prefix = "2001:db8:b::/48"
pop = "ams"
"#;

    fn problems(text: &str) -> Vec<String> {
        Config::parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_config_resolves_names() {
        let plan = Config::parse(GOOD).unwrap();
        assert_eq!(plan.pin_path, PathBuf::from("/sys/fs/bpf/test"));
        assert_eq!(plan.xdp_mode, XdpMode::Generic);
        assert_eq!(
            plan.ports,
            vec![
                ("eth0".into(), Role::Peering),
                ("eth1".into(), Role::Backbone)
            ]
        );
        assert_eq!(plan.pops[0].mac, [2, 0, 0, 0, 0x0a, 1]);
        assert_eq!(plan.prefixes.len(), 2);
        assert_eq!(plan.prefixes[1], ("2001:db8:b::/48".parse().unwrap(), 0));
    }

    #[test]
    fn defaults_apply() {
        let plan = Config::parse("").unwrap();
        assert_eq!(plan.pin_path, PathBuf::from(DEFAULT_PIN_PATH));
        assert_eq!(plan.xdp_mode, XdpMode::Auto);
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
            .replace(
                "pop = \"ams\"\n\n[[prefixes]]\nprefix = \"2001",
                "pop = \"nowhere\"\n\n[[prefixes]]\nprefix = \"2001",
            )
            .replace("02:00:00:00:0a:01", "02:00:00:zz:0a:01");
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("line 17: PoP ams: bad MAC"), "{p:?}");
        assert!(
            p[1].starts_with("line 20: prefix 203.0.113.1/24 has host bits set"),
            "{p:?}"
        );
    }

    #[test]
    fn duplicates_and_unknown_names() {
        let text = format!(
            "{GOOD}\n[[prefixes]]\nprefix = \"203.0.113.0/24\"\npop = \"ams\"\n\n[[prefixes]]\nprefix = \"198.51.100.0/24\"\npop = \"nyc\"\n\n[[pops]]\nname = \"ams\"\ninterface = \"eth9\"\nmac = \"01:00:5e:00:00:01\"\n"
        );
        let p = problems(&text);
        assert_eq!(
            p,
            vec![
                "line 36: PoP ams is defined twice",
                "line 37: PoP ams: interface eth9 is not a listed port",
                "line 38: PoP ams: MAC 01:00:5E:00:00:01 is not a unicast address",
                "line 28: prefix 203.0.113.0/24 is already registered on line 20",
                "line 33: prefix 198.51.100.0/24: unknown PoP \"nyc\"",
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
