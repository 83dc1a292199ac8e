//! Batch files for `prefix add --file` and `prefix del --file`: one prefix
//! per line, written as the command's own arguments, read whole and checked
//! here (every bad line named with its number) before anything is sent.
//!
//! A line of an add batch is `PREFIX [--registration NAME] [--preference
//! microsoft|internet] [--policy NAME | --pop NAME] [--dscp CLASS]
//! [--protect PORT,...] [--region PATH]`; of a del batch, `PREFIX`. Words are separated by
//! blanks; a word may be quoted with `"` or `'` (a registration with
//! spaces). Blank lines and lines starting with `#` are skipped, and so is
//! everything from a word starting with `#`.

use std::{collections::HashMap, io::Read as _, path::Path};

use anyhow::{Context as _, Result};
use clap::Parser;
use edge_userspace::{config::PrefixSpec, control::BatchItem};
use ipnet::IpNet;

/// A prefix's keys, as `prefix add` takes them (and each line of an add
/// batch).
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct Keys {
    /// Registration name (default: the prefix itself).
    #[arg(long)]
    registration: Option<String>,
    /// microsoft (cold potato) or internet (hot potato).
    #[arg(long)]
    preference: Option<String>,
    /// The policy that picks its PoP (toward the customer).
    #[arg(long, conflicts_with = "pop")]
    policy: Option<String>,
    /// Shorthand for a one-member policy.
    #[arg(long)]
    pop: Option<String>,
    /// DSCP class name or number.
    #[arg(long)]
    dscp: Option<String>,
    /// Peering ports the prefix is registered on (comma separated).
    #[arg(long, value_delimiter = ',')]
    protect: Vec<String>,
    /// Where the customer is, a region path (`"world > europe > ie"`):
    /// chooses among the members of geographic policies.
    #[arg(long)]
    region: Option<String>,
}

impl Keys {
    pub(super) fn spec(&self, prefix: String) -> PrefixSpec {
        PrefixSpec {
            prefix,
            registration: self.registration.clone(),
            preference: self.preference.clone(),
            policy: self.policy.clone(),
            pop: self.pop.clone(),
            dscp: self.dscp.clone(),
            protect: self.protect.clone(),
            region: self.region.clone(),
            domain: None,
        }
    }
}

/// One line of an add batch.
#[derive(Debug, Parser)]
#[command(name = "line", no_binary_name = true, disable_help_flag = true)]
struct AddLine {
    prefix: String,
    #[command(flatten)]
    keys: Keys,
}

/// One line of a del batch.
#[derive(Debug, Parser)]
#[command(name = "line", no_binary_name = true, disable_help_flag = true)]
struct DelLine {
    prefix: IpNet,
}

/// What a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Add,
    Del,
}

/// The words of a line: blank-separated, `"` or `'` quoted; `None` for a
/// line with nothing but a comment.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(x) => word.push(x),
                        None => return Err(format!("unclosed {c}")),
                    }
                }
            } else {
                word.push(c);
            }
        }
        out.push(word);
    }
    Ok(out)
}

/// The items of batch `text`, or every bad line as `LINE: problem`.
pub(super) fn parse(text: &str, kind: Kind) -> Result<Vec<BatchItem>, Vec<(usize, String)>> {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let words = match words(line) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(e) => {
                problems.push((n, e));
                continue;
            }
        };
        let item = match kind {
            Kind::Add => AddLine::try_parse_from(&words).map(|l| BatchItem {
                line: Some(n),
                add: Some(l.keys.spec(l.prefix)),
                del: None,
            }),
            Kind::Del => DelLine::try_parse_from(&words).map(|l| BatchItem {
                line: Some(n),
                add: None,
                del: Some(l.prefix),
            }),
        };
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                // clap's first line, without its "error: " and usage.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                problems.push((n, first.trim_start_matches("error: ").to_string()));
                continue;
            }
        };
        let net = match (&item.add, item.del) {
            (Some(spec), _) => spec.prefix.parse::<IpNet>().ok(),
            (_, net) => net,
        };
        if let Some(net) = net
            && let Some(first) = seen.insert(net, n)
        {
            problems.push((n, format!("prefix {net} is already on line {first}")));
            continue;
        }
        items.push(item);
    }
    if problems.is_empty() {
        Ok(items)
    } else {
        Err(problems)
    }
}

/// The text of batch file `path` (`-`: standard input).
pub(super) fn read(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the batch from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_commands_arguments() {
        let text = "# customers\n\n198.51.100.0/24 --pop core\n  2001:db8:a::/48 --policy eu --dscp ef --protect peer0,peer1   # a comment\n203.0.113.0/25 --registration \"contoso east\" --preference internet\n";
        let items = parse(text, Kind::Add).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].line, Some(3));
        let a = items[0].add.as_ref().unwrap();
        assert_eq!(
            (a.prefix.as_str(), a.pop.as_deref()),
            ("198.51.100.0/24", Some("core"))
        );
        let b = items[1].add.as_ref().unwrap();
        assert_eq!(b.protect, ["peer0", "peer1"]);
        assert_eq!(b.dscp.as_deref(), Some("ef"));
        assert_eq!(items[1].line, Some(4));
        let c = items[2].add.as_ref().unwrap();
        assert_eq!(c.registration.as_deref(), Some("contoso east"));
        assert_eq!(c.preference.as_deref(), Some("internet"));
        let dels = parse("198.51.100.0/24\n# x\n2001:db8::/32\n", Kind::Del).unwrap();
        assert_eq!(dels[1].del, Some("2001:db8::/32".parse().unwrap()));
        assert_eq!(dels[1].line, Some(3));
    }

    /// Every bad line is named, with what is wrong with it.
    #[test]
    fn bad_lines_are_named() {
        let text = "198.51.100.0/24 --pop core\n198.51.100.0/24 --pop west\n203.0.113.0/24 --colour red\n203.0.113.128/25 --pop a --policy b\n2001:db8::/32 --registration \"open\n\n198.51.100.0/24\n";
        let problems = parse(text, Kind::Add).unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|p| p.0).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7], "{problems:?}");
        assert!(
            problems[0]
                .1
                .contains("198.51.100.0/24 is already on line 1"),
            "{problems:?}"
        );
        assert!(problems[1].1.contains("--colour"), "{problems:?}");
        assert!(
            problems[2].1.contains("cannot be used with"),
            "{problems:?}"
        );
        assert!(problems[3].1.contains("unclosed"), "{problems:?}");
        let problems = parse("198.51.100.0/24\nnot-a-prefix\n", Kind::Del).unwrap_err();
        assert_eq!(problems[0].0, 2, "{problems:?}");
    }
}
