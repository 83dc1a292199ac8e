//! The TOML config: schema, parsing and whole-file validation, producing a
//! [`Plan`](crate::plan::Plan).
//!
//! A config is parsed and validated as a whole before anything is applied;
//! every problem is reported with its line, not just the first one.

mod schema;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;

use ipnet::IpNet;
use schema::{File, PrefixConfig};
use serde::Deserialize;
use validate::{Validator, line_of};
pub use validate::{dscp_by_name, protocol_by_name};

use crate::plan::Plan;

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
