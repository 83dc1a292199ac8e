//! The TOML config: schema, parsing and whole-file validation, producing a
//! [`Plan`](crate::plan::Plan).
//!
//! A config is parsed and validated as a whole before anything is applied;
//! every problem is reported with its line, not just the first one.

mod chunked;
pub mod overlay;
mod reload;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_domains;
mod validate;

use std::{collections::HashSet, fmt, path::Path};

use ipnet::IpNet;
use schema::{Dscp, File, PrefixConfig};
use serde::Deserialize;
use toml::Spanned;
use validate::{Validator, line_of};
pub use validate::{dscp_by_name, protocol_by_name};

use crate::plan::{Plan, Preference};

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

/// The `[limits]` keys, each with the prefix map it sizes (docs/config.md).
pub const LIMIT_KEYS: [(&str, &str); 2] = [
    ("prefixes_v4", edge_common::map_names::PREFIX_V4),
    ("prefixes_v6", edge_common::map_names::PREFIX_V6),
];

/// The `[limits]` key that sizes `map`, for messages about a full map.
pub fn limit_key(map: &str) -> Option<&'static str> {
    LIMIT_KEYS.iter().find(|(_, m)| *m == map).map(|(k, _)| *k)
}

/// Every problem found in a config, in file order.
#[derive(Debug, thiserror::Error)]
#[error("invalid config ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
    .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Invalid(pub Vec<Problem>);

/// A config file's bytes as text. A TOML file is UTF-8: anything else is
/// a problem of the file (an `Invalid`, like a syntax error) with the line,
/// column and byte offset of the first byte that is not UTF-8.
pub fn decode(bytes: Vec<u8>) -> Result<String, Invalid> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let valid = &bytes[..at];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // The line's text before the bad byte is valid UTF-8: count its
        // characters, so the column is what an editor shows.
        let column = std::str::from_utf8(&valid[line_start..]).map_or(0, |t| t.chars().count()) + 1;
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        Invalid(vec![Problem {
            line: Some(line),
            message: format!(
                "column {column} (byte {at} of the file, 0x{:02x}): not UTF-8; a config is UTF-8 text (save it as UTF-8)",
                bytes[at]
            ),
            map_full: false,
        }])
    })
}

/// Reads the config file at `path`: its text, or why not. A file that is
/// not UTF-8 is an [`Invalid`] config (in the error's chain), naming the
/// line of its first bad byte.
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode(bytes).with_context(|| format!("config {}", path.display()))
}

/// Parses and validates `text`; `Err` lists every problem with its line.
pub fn parse(text: &str) -> Result<Plan, Invalid> {
    validate(text, read(text)?)
}

/// Validates the parsed `file` of `text` as a whole; the problems sorted
/// by line (those without one last).
fn validate(text: &str, file: File) -> Result<Plan, Invalid> {
    let (guard, problems) = reload::guard(&file.daemon, text);
    match Validator::new(text).run(file) {
        Ok(mut plan) if problems.is_empty() => {
            plan.reload = guard;
            Ok(plan)
        }
        Ok(_) => Err(Invalid(problems)),
        Err(Invalid(mut all)) => {
            all.extend(problems);
            sort_by_line(&mut all);
            Err(Invalid(all))
        }
    }
}

/// Sorts problems by line, those without a line last, keeping the order
/// of problems on one line.
fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

/// A config file parsed (TOML and schema), not validated yet: what edged
/// needs to know before it reads its state file (where that is), without
/// parsing a big file twice.
#[derive(Debug)]
pub struct Parsed(File);

/// Parses `text` (a syntax error, an unknown key or a value of the wrong
/// type is the one problem, with its line); [`Parsed::validate`] does the
/// rest.
pub fn parse_file(text: &str) -> Result<Parsed, Invalid> {
    read(text).map(Parsed)
}

impl Parsed {
    /// `[daemon] state_path`.
    pub fn state_path(&self) -> &std::path::Path {
        &self.0.daemon.state_path
    }

    /// Validates the file (`text`, as parsed) with the live changes applied:
    /// [`parse_with`].
    pub fn validate(self, text: &str, live: &Live) -> Result<Plan, Invalid> {
        merge(self.0, text, live)
    }
}

/// The file's text as its schema; or, when a table has a TOML error (its
/// syntax, an unknown key, a value of the wrong type), that error and the
/// problems of the rest of the file (see [`recover`]).
fn read(text: &str) -> Result<File, Invalid> {
    if let Some(file) = chunked::read(text) {
        return Ok(file);
    }
    toml::from_str(text).map_err(|e| recover(text, e))
}

/// A TOML error as a problem with its line (`text`: the document it is in;
/// a blanked copy of the file has the file's lines).
fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    Problem {
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
        map_full: false,
    }
}

/// At most this many TOML errors are reported; then the rest of the file
/// is not validated.
const MAX_TOML_ERRORS: usize = 20;

/// Every problem of a file with TOML errors (the first is `first`). Each
/// error is in a top-level table (from one `[name]` or `[[name]]` header
/// to the next, its sub-tables such as `[pops.probe]` included; the keys
/// before the first header count as one). The error is reported, then put
/// out of the way: its line, when that is a `key = value` of its own (an
/// unknown key, a value of the wrong type), else the whole table, is
/// blanked (spaces, the lines kept) and the file parsed again; a table
/// that errs again is blanked whole, without reporting (the error may come
/// from the blanked line: a key now missing). Once the file parses, what
/// is left of it is validated as a whole. So each table's first TOML error
/// is reported, then every validation problem, sorted by line. Problems
/// that only follow from a blanked table (a prefix naming a PoP whose
/// table has a syntax error) are reported too.
fn recover(text: &str, first: toml::de::Error) -> Invalid {
    let starts = table_starts(text);
    let mut doc = text.to_string();
    // Per table: its error reported, a line of it blanked, it all blanked.
    let mut reported = vec![false; starts.len()];
    let mut line_blanked = vec![false; starts.len()];
    let mut blanked = vec![false; starts.len()];
    let mut problems = Vec::new();
    let mut error = first;
    loop {
        let Some(span) = error.span() else {
            problems.push(toml_problem(&doc, &error));
            break;
        };
        // The table the error is in (an error at the end: the last one).
        let mut i = starts
            .partition_point(|&s| s <= span.start)
            .saturating_sub(1);
        // An error on a table's header line or the line after it, while
        // the table above does not parse on its own: a value of that table
        // runs into this one (an array or inline table left open over
        // lines). That table is the one in error, and is left out whole.
        let runs_over = i > 0
            && doc
                .get(starts[i]..span.start)
                .is_some_and(|s| !s.trim_end().contains('\n'))
            && doc
                .get(starts[i - 1]..starts[i])
                .is_some_and(|above| toml::from_str::<toml::Table>(above).is_err());
        if runs_over {
            i -= 1;
        }
        let end = starts.get(i + 1).copied().unwrap_or(doc.len());
        if !reported[i] {
            if problems.len() == MAX_TOML_ERRORS {
                let mut p = toml_problem(&doc, &error);
                p.message = format!(
                    "{} (and maybe more: after {MAX_TOML_ERRORS} TOML errors the rest of the file is not checked)",
                    p.message
                );
                problems.push(p);
                break;
            }
            reported[i] = true;
            let mut p = toml_problem(&doc, &error);
            if runs_over {
                p.message = format!(
                    "{}: a value of the table from line {} is not closed before this header",
                    p.message,
                    line_of(&doc, starts[i].max(1))
                );
            }
            problems.push(p);
        }
        if blanked[i] {
            break; // blanking did not move it (a string left open to the end)
        }
        match key_value_line(&doc, span.start).filter(|_| !line_blanked[i] && !runs_over) {
            Some(line) => {
                line_blanked[i] = true;
                blank(&mut doc, line);
            }
            None => {
                blanked[i] = true;
                blank(&mut doc, starts[i]..end);
            }
        }
        let parsed = match chunked::read(&doc) {
            Some(file) => Ok(file),
            None => toml::from_str::<File>(&doc),
        };
        match parsed {
            Ok(file) => {
                if let Err(Invalid(more)) = validate(&doc, file) {
                    problems.extend(more);
                }
                break;
            }
            Err(e) => error = e,
        }
    }
    sort_by_line(&mut problems);
    Invalid(problems)
}

/// Replaces `range` of `doc` with spaces, its newlines kept: every byte
/// (each byte of a multi-byte character too), so the text stays UTF-8
/// with the same offsets and lines.
fn blank(doc: &mut String, range: std::ops::Range<usize>) {
    let spaces: String = doc.as_bytes()[range.clone()]
        .iter()
        .map(|&b| if b == b'\n' { '\n' } else { ' ' })
        .collect();
    doc.replace_range(range, &spaces);
}

/// The line holding byte `at`, when it is a `key = value` that is TOML of
/// its own (not a header, not part of a value spread over lines).
fn key_value_line(doc: &str, at: usize) -> Option<std::ops::Range<usize>> {
    // By bytes: an error's offset need not fall on a character boundary.
    let bytes = doc.as_bytes();
    let at = at.min(bytes.len());
    let start = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    let line = &doc[start..end];
    let t = line.trim_start();
    (!t.starts_with('[') && t.contains('=') && toml::from_str::<toml::Table>(line).is_ok())
        .then_some(start..end)
}

/// Where each top-level table of `text` starts: 0 (the keys before the
/// first header), then every line that is a table header of one bare key
/// (`[daemon]`, `[[pops]]`; not `[pops.probe]`, which belongs to the table
/// before it).
fn table_starts(text: &str) -> Vec<usize> {
    let mut out = vec![0];
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        let t = t.split_once('#').map_or(t, |(h, _)| h.trim_end());
        let key = t
            .strip_prefix("[[")
            .and_then(|k| k.strip_suffix("]]"))
            .or_else(|| t.strip_prefix('[').and_then(|k| k.strip_suffix(']')))
            .map(str::trim);
        if let Some(key) = key
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && at > 0
        {
            out.push(at);
        }
        at += line.len();
    }
    out
}

/// Live changes made with edgectl on top of the config file: prefixes added
/// (or replacing the file's entry for the same prefix) and prefixes removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Live {
    #[serde(default)]
    pub added: Vec<PrefixSpec>,
    #[serde(default)]
    pub removed: Vec<IpNet>,
    /// The file's entries of private domains removed live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_private: Vec<DomainNet>,
}

/// A network in a private domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainNet {
    pub domain: String,
    pub network: IpNet,
}

impl PrefixSpec {
    /// The private domain the spec registers in; `None`: the public one.
    pub fn private_domain(&self) -> Option<&str> {
        self.domain.as_deref().filter(|d| *d != "public")
    }
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
    /// Where the customer is (a region path), for geographic policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A private domain's name: the prefix is that domain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Parses and validates the config `text` with the live changes applied:
/// a live prefix replaces the file's entry for the same network, a removed
/// prefix is left out. Problems in live changes carry no line.
pub fn parse_with(text: &str, live: &Live) -> Result<Plan, Invalid> {
    merge(read(text)?, text, live)
}

/// The file's `file` (parsed from `text`) with `live` merged, validated.
fn merge(mut file: File, text: &str, live: &Live) -> Result<Plan, Invalid> {
    if live.added.is_empty() && live.removed.is_empty() && live.removed_private.is_empty() {
        return validate(text, file);
    }
    // Live entries are merged as values keyed by the parsed network (never
    // as generated TOML text): they replace the file's entry for the same
    // network however it is spelled, and carry spans past the file's end,
    // so their problems say "live change" instead of a line.
    let added: HashSet<IpNet> = live
        .added
        .iter()
        .filter(|s| s.private_domain().is_none())
        .filter_map(|s| s.prefix.parse::<IpNet>().ok())
        .collect();
    // A private domain's live entries replace (and its live removals
    // remove) the file's entry for the same network in that domain.
    let private: HashSet<(&str, IpNet)> = live
        .added
        .iter()
        .filter_map(|s| Some((s.private_domain()?, s.prefix.parse::<IpNet>().ok()?)))
        .chain(
            live.removed_private
                .iter()
                .map(|d| (d.domain.as_str(), d.network)),
        )
        .collect();
    let removed: HashSet<IpNet> = live.removed.iter().copied().collect();
    let mut shadowed = std::collections::BTreeSet::new();
    let mut stale_removals: std::collections::BTreeSet<IpNet> = removed.iter().copied().collect();
    // Live changes are the public domain's: a private domain's entry for
    // the same network stays.
    file.prefixes.retain(|p| {
        if let Some(d) = p.domain.as_ref().filter(|d| d.get_ref() != "public") {
            return p
                .prefix
                .get_ref()
                .parse::<IpNet>()
                .is_ok_and(|n| !private.contains(&(d.get_ref().as_str(), n)));
        }
        match p.prefix.get_ref().parse::<IpNet>() {
            Ok(n) if added.contains(&n) => {
                shadowed.insert(n);
                false
            }
            Ok(n) if removed.contains(&n) => {
                stale_removals.remove(&n);
                false
            }
            _ => true,
        }
    });
    let mut problems = Vec::new();
    for (i, spec) in live.added.iter().enumerate() {
        match live_entry(spec, text.len() + i) {
            Ok(entry) => file.prefixes.push(entry),
            Err(message) => problems.push(Problem {
                line: None,
                message: format!("live change: {message}"),
                map_full: false,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    let mut plan = validate(text, file)?;
    plan.shadowed = shadowed;
    plan.stale_removals = stale_removals;
    Ok(plan)
}

/// Live prefixes checked against `plan` (valid, the one edged runs) as
/// [`parse_with`] would check them in the merged config, each resolved to
/// its entry: the same problems, in the same words. `registered` tells
/// whether the file or a live change registers a network now (a live
/// prefix for it replaces that entry; the map limits count it once). `Ok(None)`: a prefix needs
/// what only a whole validation makes (a `pop:NAME` policy that no entry
/// used yet), so the caller validates the whole config instead. The specs
/// are for distinct networks. With `lines` (one per spec: the line of a
/// batch file it came from), a spec's problems carry its line instead of
/// the words "live change".
pub fn validate_live(
    plan: &Plan,
    specs: &[PrefixSpec],
    registered: &dyn Fn(&IpNet) -> bool,
    lines: Option<&[usize]>,
) -> Result<Option<Vec<crate::plan::PlannedPrefix>>, Invalid> {
    // A spec's problem, with its line when from a batch.
    let of_spec = |i: usize, mut p: Problem| -> Problem {
        if let Some(lines) = lines {
            p.line = lines.get(i).copied();
            if let Some(m) = p.message.strip_prefix("live change: ") {
                p.message = m.to_string();
            }
        }
        p
    };
    // A private domain's prefixes are checked by the whole validation.
    if specs.iter().any(|s| s.private_domain().is_some()) {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let mut entries = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        match live_entry(spec, 0) {
            Ok(entry) => entries.push(entry),
            Err(message) => problems.push(of_spec(
                i,
                Problem {
                    line: None,
                    message: format!("live change: {message}"),
                    map_full: false,
                },
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    let port_ids: std::collections::HashMap<&str, u32> = plan
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i as u32))
        .collect();
    let pop_ids: std::collections::HashMap<&str, u32> = plan
        .pops
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i as u32))
        .collect();
    let mut policies = plan.policies.clone();
    let mut v = Validator::live();
    v.pop_domains = plan.pops.iter().map(|p| p.domain).collect();
    let mut seen = std::collections::HashMap::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    // (spec, the first of its problems)
    let mut from: Vec<(usize, usize)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let before = v.problem_count();
        if let Some(p) = v.prefix(
            entry,
            &mut seen,
            &plan.ports,
            &port_ids,
            &pop_ids,
            &mut policies,
        ) && v.live_in_public(&p, &policies, plan)
        {
            v.live_in_scope(&p, &policies, plan);
            out.push(p);
        }
        if v.problem_count() > before {
            from.push((i, before));
        }
    }
    let of_entries = v.problem_count();
    let (mut v4, mut v6) = (0usize, 0usize);
    for p in &plan.prefixes {
        if matches!(p.origin, crate::plan::Origin::Route { .. }) {
            continue;
        }
        match p.net {
            IpNet::V4(_) => v4 += 1,
            IpNet::V6(_) => v6 += 1,
        }
    }
    for p in &out {
        if !registered(&p.net) {
            match p.net {
                IpNet::V4(_) => v4 += 1,
                IpNet::V6(_) => v6 += 1,
            }
        }
    }
    v.map_limits(v4, v6, plan.limits);
    v.exits_required(
        plan.backbone_exit.is_some(),
        plan.transit_exit.is_some(),
        &plan.ports,
        &out,
    );
    let mut problems = v.into_problems();
    for (k, &(i, start)) in from.iter().enumerate() {
        let end = from.get(k + 1).map_or(of_entries, |&(_, s)| s);
        for p in &mut problems[start..end] {
            *p = of_spec(i, p.clone());
        }
    }
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    if policies.len() != plan.policies.len() {
        return Ok(None);
    }
    Ok(Some(out))
}

/// A live prefix as the entry a `[[prefixes]]` table would give, spanned at
/// `at` (past the file's end).
fn live_entry(spec: &PrefixSpec, at: usize) -> Result<PrefixConfig, String> {
    let span = |s: &str| Spanned::new(at..at + 1, s.to_string());
    let preference = match spec.preference.as_deref() {
        None | Some("microsoft") => Preference::Microsoft,
        Some("internet") => Preference::Internet,
        Some(other) => {
            return Err(format!(
                "prefix {}: unknown preference {other:?} (microsoft or internet)",
                spec.prefix
            ));
        }
    };
    Ok(PrefixConfig {
        prefix: span(&spec.prefix),
        registration: spec.registration.clone(),
        preference,
        policy: spec.policy.as_deref().map(span),
        pop: spec.pop.as_deref().map(span),
        dscp: spec
            .dscp
            .as_ref()
            .map(|d| Spanned::new(at..at + 1, Dscp::Name(d.clone()))),
        protect: spec.protect.iter().map(|p| span(p)).collect(),
        region: spec.region.as_deref().map(span),
        domain: spec.domain.as_deref().map(span),
    })
}
