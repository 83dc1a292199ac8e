//! The config as edged runs it: the file's tables with the live changes on
//! top, merged as values (the file's `[[prefixes]]` entry for a network a
//! live change names is dropped; each live entry is added as the table its
//! keys make), for `edgectl config show --effective` and `config diff`.
//! Nothing here is applied: edged merges the same way (`parse_with`) on the
//! schema's types.

use std::collections::{BTreeMap, HashSet};

use ipnet::IpNet;
use toml::{Table, Value};

use super::{Invalid, Live, PrefixSpec, Problem, validate::line_of};

/// The effective config, and the file's entries the live changes dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    /// The file's tables, its `prefixes` without the dropped entries and
    /// with the live entries after its own.
    pub effective: Table,
    /// The file's `[[prefixes]]` entries replaced or removed by a live
    /// change, by network.
    pub dropped: BTreeMap<IpNet, Table>,
    /// The same for the private domains' entries, by (domain, network).
    pub dropped_private: BTreeMap<(String, IpNet), Table>,
}

impl Overlay {
    /// The file's entry a live change of `network` in `domain` (`None`:
    /// public) dropped.
    pub fn dropped_entry(&self, domain: Option<&str>, network: IpNet) -> Option<&Table> {
        match domain {
            Some(d) if d != "public" => self.dropped_private.get(&(d.to_string(), network)),
            _ => self.dropped.get(&network),
        }
    }
}

/// A live entry as the `[[prefixes]]` table its keys make.
pub fn spec_table(spec: &PrefixSpec) -> Table {
    Table::try_from(spec).expect("a prefix spec is a table")
}

/// The network a `[[prefixes]]` table registers in the public domain (the
/// one live changes act on), if it names one.
fn net_of(entry: &Value) -> Option<IpNet> {
    if entry
        .get("domain")
        .and_then(Value::as_str)
        .is_some_and(|d| d != "public")
    {
        return None;
    }
    entry.get("prefix")?.as_str()?.parse().ok()
}

/// The (private domain, network) a `[[prefixes]]` table registers.
fn private_of(entry: &Value) -> Option<(String, IpNet)> {
    let d = entry.get("domain")?.as_str().filter(|d| *d != "public")?;
    Some((d.to_string(), entry.get("prefix")?.as_str()?.parse().ok()?))
}

/// `text` (a config file that parses) with `live` on top.
pub fn overlay(text: &str, live: &Live) -> Result<Overlay, Invalid> {
    let mut effective: Table = toml::from_str(text).map_err(|e| {
        Invalid(vec![Problem {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
            map_full: false,
        }])
    })?;
    let named: HashSet<IpNet> = live
        .added
        .iter()
        .filter(|s| s.private_domain().is_none())
        .filter_map(|s| s.prefix.parse().ok())
        .chain(live.removed.iter().copied())
        .collect();
    let named_private: HashSet<(String, IpNet)> = live
        .added
        .iter()
        .filter_map(|s| Some((s.private_domain()?.to_string(), s.prefix.parse().ok()?)))
        .chain(
            live.removed_private
                .iter()
                .map(|d| (d.domain.clone(), d.network)),
        )
        .collect();
    let mut dropped = BTreeMap::new();
    let mut dropped_private = BTreeMap::new();
    let prefixes = effective
        .entry("prefixes")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(entries) = prefixes {
        entries.retain(|entry| match net_of(entry) {
            None => match private_of(entry) {
                Some(k) if named_private.contains(&k) => {
                    if let Value::Table(t) = entry {
                        dropped_private.insert(k, t.clone());
                    }
                    false
                }
                _ => true,
            },
            Some(net) if named.contains(&net) => {
                if let Value::Table(t) = entry {
                    dropped.insert(net, t.clone());
                }
                false
            }
            _ => true,
        });
        entries.extend(live.added.iter().map(|s| Value::Table(spec_table(s))));
        if entries.is_empty() {
            effective.remove("prefixes");
        }
    }
    Ok(Overlay {
        effective,
        dropped,
        dropped_private,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Origin;

    const FILE: &str = r#"
# a comment
[forwarding]
backbone_exit = "core"

[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:00:01"
region = "world > europe"
probe = { type = "icmp", address = "192.0.2.1" }

[[pops]]
name = "east"
interface = "bb0"
mac = "02:00:00:00:00:02"
region = "world > asia"

[[policies]]
name = "near"
method = "geographic"
members = [{ pop = "core" }, { pop = "east", weight = 2 }]

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "core"

[[prefixes]]
prefix = "2001:DB8:A::/48"
policy = "near"
region = "world > asia"

[[prefixes]]
prefix = "203.0.113.0/24"
pop = "east"
dscp = 46
"#;

    fn live() -> Live {
        Live {
            added: vec![
                PrefixSpec {
                    prefix: "2001:db8:a::/48".into(),
                    pop: Some("east".into()),
                    registration: Some("contoso east".into()),
                    ..PrefixSpec::default()
                },
                PrefixSpec {
                    prefix: "192.0.2.0/25".into(),
                    policy: Some("near".into()),
                    region: Some("world > europe > ie".into()),
                    protect: vec![],
                    dscp: Some("af41".into()),
                    ..PrefixSpec::default()
                },
            ],
            removed: vec!["203.0.113.0/24".parse().unwrap()],
            removed_private: Vec::new(),
        }
    }

    /// The effective config, written as TOML and parsed as a file, is the
    /// plan edged runs: the file with the live changes merged.
    #[test]
    fn the_effective_config_is_what_edged_runs() {
        let o = overlay(FILE, &live()).unwrap();
        let text = toml::to_string(&o.effective).unwrap();
        let from_text = crate::config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut running = crate::config::parse_with(FILE, &live()).unwrap();
        for p in &mut running.prefixes {
            p.origin = Origin::Config;
        }
        assert_eq!(from_text.prefixes, running.prefixes, "{text}");
        assert_eq!(from_text.policies, running.policies, "{text}");
        assert_eq!(from_text.pops, running.pops, "{text}");
        // The file's order of tables and keys is kept.
        assert!(text.find("[forwarding]") < text.find("[[ports]]"), "{text}");
        assert!(
            text.find("name = \"core\"") < text.find("interface = \"bb0\"\nmac"),
            "{text}"
        );
        // The dropped entries, by network however the file spells it.
        let dropped: Vec<String> = o.dropped.keys().map(ToString::to_string).collect();
        assert_eq!(dropped, ["203.0.113.0/24", "2001:db8:a::/48"]);
        assert_eq!(
            o.dropped[&"203.0.113.0/24".parse().unwrap()]["dscp"].as_integer(),
            Some(46)
        );
        // Without live changes: the file's own tables.
        let plain = overlay(FILE, &Live::default()).unwrap();
        assert_eq!(plain.effective, toml::from_str::<Table>(FILE).unwrap());
        assert!(plain.dropped.is_empty());
    }
}
