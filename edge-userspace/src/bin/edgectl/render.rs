//! Typed replies as text tables: columns laid out by comfy-table (no
//! borders, one space apart, as wide as their widest cell, never wrapped,
//! numbers right-aligned), so long IPv6 prefixes and names fit. `prefix
//! list` streams its rows instead (`list.rs`).

use std::{borrow::Cow, fmt::Write as _, net::IpAddr};

use edge_userspace::{
    config::PrefixSpec,
    control::{
        Changed, ConfigShow, Customers, Events, GroupBy, Latency, LiveList, Lookup, PolicyList,
        PolicyShow, PopList, Prefix, Share, Stats, Status, TornDown,
    },
};
use serde::Serialize;

/// `rows` under `header` as a table without borders: columns one space
/// apart, as wide as their widest cell (never wrapped to the terminal),
/// the columns in `right` right-aligned; no trailing blanks. Each line
/// starts with `indent`.
pub(super) fn grid(
    header: Option<&[&str]>,
    rows: impl IntoIterator<Item = Vec<String>>,
    right: &[usize],
    indent: &str,
) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if rows.len() > BIG
        && header.iter().flat_map(|h| h.iter()).all(|c| c.is_ascii())
        && rows.iter().flatten().all(|c| c.is_ascii())
    {
        return big_grid(header, &rows, right, indent);
    }
    use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(h) = header {
        t.set_header(h.to_vec());
    }
    t.add_rows(rows);
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, 1));
        if right.contains(&i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out += format!("{indent}{line}").trim_end();
        out.push('\n');
    }
    out
}

/// Tables longer than this (`stats` lists up to 65,535 prefixes) are laid
/// out by [`big_grid`] when all ASCII: the same text, several times faster.
const BIG: usize = 1000;

/// [`grid`]'s layout, written directly: for ASCII cells (one column per
/// byte) it is the text comfy-table makes (a unit test compares them).
fn big_grid(
    header: Option<&[&str]>,
    rows: &[Vec<String>],
    right: &[usize],
    indent: &str,
) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain(header.map(<[&str]>::len))
        .max()
        .unwrap_or(0);
    let mut width = vec![0usize; columns];
    let header: Option<Vec<String>> = header.map(|h| h.iter().map(|c| c.to_string()).collect());
    for row in header.iter().chain(rows) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::with_capacity(rows.len() * (width.iter().sum::<usize>() + columns + 4));
    let mut line = String::new();
    for row in header.iter().chain(rows) {
        line.clear();
        line.push_str(indent);
        for (i, w) in width.iter().enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = w - cell.len();
            if right.contains(&i) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An optional value, `-` when absent.
fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A list joined with `sep`, `-` when empty.
fn joined(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(sep)
    }
}

pub(super) fn changed(c: &Changed) -> String {
    let mut out = format!(
        "ok: {} map entries written, {} removed\n",
        c.changes.written, c.changes.removed
    );
    if !c.cleared.is_empty() {
        let _ = writeln!(
            out,
            "cleared the live changes of {} network{}: {}",
            c.cleared.len(),
            if c.cleared.len() == 1 { "" } else { "s" },
            c.cleared
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !c.pending_restart.is_empty() {
        let _ = writeln!(
            out,
            "pending restart (changed in the config, not applied until edged restarts): {}",
            c.pending_restart.join(", ")
        );
    }
    out
}

pub(super) fn torn_down(t: &TornDown) -> String {
    format!(
        "torn down: {} unpinned; edged exits\n",
        t.torn_down.display()
    )
}

pub(super) fn events(v: &Events) -> String {
    let mut out = String::new();
    for e in &v.events {
        out += &event(e);
    }
    let _ = writeln!(
        out,
        "(protection violations received since edged started: {}; the list shows events of every kind)",
        v.received
    );
    out
}

/// A time in seconds since the Unix epoch as UTC, RFC 3339, milliseconds.
pub(super) fn utc(time: f64) -> String {
    jiff::Timestamp::from_microsecond((time * 1e6) as i64)
        .map_or_else(|_| format!("{time:.3}"), |t| format!("{t:.3}"))
}

/// One event as a line: its time (UTC, RFC 3339, milliseconds), kind and
/// message.
pub(super) fn event(e: &edge_userspace::control::Event) -> String {
    format!("{}  {:<10} {}\n", utc(e.time), e.kind, e.message)
}

/// A live entry as the arguments of `prefix add` (a line of an add batch).
fn spec_args(spec: &PrefixSpec) -> String {
    fn quoted(v: &str) -> String {
        if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || "\"'#".contains(c)) {
            v.to_string()
        } else if v.contains('"') {
            format!("'{v}'")
        } else {
            format!("\"{v}\"")
        }
    }
    let mut out = spec.prefix.clone();
    for (key, value) in [
        ("registration", &spec.registration),
        ("preference", &spec.preference),
        ("policy", &spec.policy),
        ("pop", &spec.pop),
        ("dscp", &spec.dscp),
        ("region", &spec.region),
    ] {
        if let Some(v) = value {
            let _ = write!(out, " --{key} {}", quoted(v));
        }
    }
    if !spec.protect.is_empty() {
        let _ = write!(out, " --protect {}", quoted(&spec.protect.join(",")));
    }
    if let Some(d) = &spec.domain {
        let _ = write!(out, " --domain {}", quoted(d));
    }
    out
}

/// `live list`: one row per live change; the entry as `prefix add`'s
/// arguments.
pub(super) fn live_list(v: &LiveList) -> String {
    if v.changes.is_empty() {
        return "no live changes: edged runs the config file as it is\n".into();
    }
    let rows = v.changes.iter().map(|c| {
        vec![
            c.network.to_string(),
            c.domain.clone().unwrap_or_else(|| "public".into()),
            c.kind.clone(),
            c.time.map_or_else(|| "-".into(), utc),
            or_dash(c.by.as_deref()),
            c.spec.as_ref().map_or_else(|| "-".into(), spec_args),
        ]
    });
    grid(
        Some(&["network", "domain", "kind", "when (UTC)", "by", "entry"]),
        rows,
        &[],
        "",
    )
}

/// `config show --effective`: the merged config as TOML, under a comment
/// saying what it is.
pub(super) fn effective(show: &ConfigShow, table: &toml::Table) -> anyhow::Result<String> {
    let n = show.changes.len();
    Ok(format!(
        "# The config edged runs (generation {}): {} as edged last applied it{}.\n{}",
        show.generation,
        show.config.display(),
        if n == 0 {
            String::new()
        } else {
            format!(
                ", with {n} live change{} merged (`edgectl config diff`)",
                if n == 1 { "" } else { "s" }
            )
        },
        toml::to_string(table)?
    ))
}

/// `config diff`: per live change, the file's entry it drops (`-`) and the
/// live entry it adds (`+`).
pub(super) fn diff(
    show: &ConfigShow,
    overlay: &edge_userspace::config::overlay::Overlay,
) -> anyhow::Result<String> {
    if show.changes.is_empty() {
        return Ok(format!(
            "no live changes: edged runs {} as it is\n",
            show.config.display()
        ));
    }
    let mut out = format!(
        "--- {} (the file as edged last applied it)\n+++ the config edged runs (the file with {} live change{})\n",
        show.config.display(),
        show.changes.len(),
        if show.changes.len() == 1 { "" } else { "s" }
    );
    for c in &show.changes {
        let when = match (c.time, &c.by) {
            (Some(t), Some(by)) => format!(", {} by {by}", utc(t)),
            (Some(t), None) => format!(", {}", utc(t)),
            (None, Some(by)) => format!(", by {by}"),
            (None, None) => String::new(),
        };
        // The table header is context when both sides have the entry, else
        // it is added or removed with it.
        let file = overlay.dropped_entry(c.domain.as_deref(), c.network);
        let header = match (file.is_some(), c.spec.is_some()) {
            (true, true) => ' ',
            (true, false) => '-',
            _ => '+',
        };
        let domain = c
            .domain
            .as_ref()
            .map_or_else(String::new, |d| format!(" (domain {d})"));
        let _ = writeln!(
            out,
            "@@ {}{domain} {}{when} @@\n{header}[[prefixes]]",
            c.network, c.kind
        );
        if let Some(file) = file {
            for line in toml::to_string(file)?.lines() {
                let _ = writeln!(out, "-{line}");
            }
        }
        if let Some(spec) = &c.spec {
            let live = edge_userspace::config::overlay::spec_table(spec);
            for line in toml::to_string(&live)?.lines() {
                let _ = writeln!(out, "+{line}");
            }
        }
    }
    Ok(out)
}

pub(super) fn latency(v: &Latency) -> String {
    let ms = |x: Option<f64>| x.map_or("-".into(), |m| format!("{m:.2}"));
    let rows = v.pops.iter().map(|p| {
        vec![
            p.pop.clone(),
            p.samples.to_string(),
            ms(p.min_ms),
            ms(p.p50_ms),
            ms(p.p90_ms),
            ms(p.p99_ms),
            ms(p.max_ms),
        ]
    });
    format!(
        "RTT over the last {} s, milliseconds\n{}",
        v.window_seconds,
        grid(
            Some(&["pop", "samples", "min", "p50", "p90", "p99", "max"]),
            rows,
            &[1, 2, 3, 4, 5, 6],
            ""
        )
    )
}

pub(super) fn customers(v: &Customers) -> String {
    if !v.enabled {
        return "customer latency is off: the config has no [latency] section, or enabled = false (docs/monitoring.md)\n".into();
    }
    let ms = |x: Option<f64>| x.map_or("-".into(), |m| format!("{m:.2}"));
    let by = match v.by {
        GroupBy::Prefix => "prefix",
        GroupBy::Registration => "registration",
        GroupBy::Region => "region",
    };
    let rows = v.rows.iter().map(|r| {
        vec![
            r.key.clone(),
            r.samples.to_string(),
            ms(r.min_ms),
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p99_ms),
            ms(r.objective_ms),
            r.above_objective
                .map_or("-".into(), |a| format!("{:.1}%", a * 100.0)),
            match r.degraded {
                Some(true) => "DEGRADED".into(),
                Some(false) => "ok".into(),
                None => "-".into(),
            },
        ]
    });
    let c = |k: &str| v.counters.get(k).copied().unwrap_or(0);
    let mut out = format!(
        "customer RTT over the last {:.0} s (asked {} s; read every {} s), milliseconds\n",
        v.covered_seconds, v.since_seconds, v.period_seconds
    );
    if v.rows.is_empty() {
        out.push_str("no samples in that span\n");
    } else {
        out.push_str(&grid(
            Some(&[
                by,
                "samples",
                "min",
                "p50",
                "p90",
                "p99",
                "objective",
                "above",
                "state",
            ]),
            rows,
            &[1, 2, 3, 4, 5, 6, 7],
            "",
        ));
    }
    if !v.degraded.is_empty() {
        let _ = writeln!(out, "degraded now: {}", v.degraded.join(", "));
    }
    let _ = writeln!(
        out,
        "kernel: {} handshake and {} timestamp samples, {} retransmitted handshakes skipped, {} flows followed of {} ({} not followed: table full), {} samples lost (histogram map full)",
        c("handshake_samples"),
        c("ts_samples"),
        c("retransmitted"),
        v.flows,
        v.flow_limit,
        c("flow_failed"),
        c("hist_full")
    );
    out
}

/// A `prefix_list` row borrowed from the reply line: a million rows cost
/// no allocation each. The fields of [`Prefix`], in its order (so `--json`
/// prints what edged sent).
#[derive(Debug, Serialize, serde::Deserialize)]
pub(super) struct PrefixRow<'a> {
    pub(super) counter_slot: u32,
    pub(super) dscp: Option<u8>,
    #[serde(borrow)]
    pub(super) policy: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) preference: Cow<'a, str>,
    /// As edged wrote it (the text shows it as it is: not parsed).
    #[serde(borrow)]
    pub(super) prefix: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) protect: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) registration: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) source: Cow<'a, str>,
}

/// Every field, one per line, in the JSON's (alphabetical) order.
pub(super) fn prefix(p: &Prefix) -> String {
    let protect = serde_json::to_string(&p.protect).unwrap_or_default();
    let rows: [(&str, String); 8] = [
        ("counter_slot", p.counter_slot.to_string()),
        ("dscp", or_dash(p.dscp)),
        ("policy", or_dash(p.policy.as_deref())),
        ("preference", p.preference.clone()),
        ("prefix", p.prefix.to_string()),
        ("protect", protect),
        ("registration", p.registration.clone()),
        ("source", p.source.clone()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<14} {v}");
    }
    out
}

/// One row a PoP: where it is, its link MTU, its health as the methods see
/// it (`state`: up, down (with the reason when it is the host's: no
/// carrier, interface gone, next hop unresolved), drained, or up without a
/// probe result), since
/// when, smoothed and minimum RTT and loss over the recent probes,
/// encapsulation.
pub(super) fn pop_list(v: &PopList) -> String {
    let ms = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}"));
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|p| {
            let h = &p.health;
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.domain.clone(),
                p.interface.clone(),
                p.vlan.clone(),
                p.mac.clone(),
                or_dash(p.mtu),
                match &h.down_reason {
                    Some(why) => format!("{} ({why})", h.state),
                    None => h.state.clone(),
                },
                h.since_seconds
                    .map_or_else(|| "-".to_string(), |s| format!("{s:.0}s")),
                format!("{}/{}", ms(h.rtt_ms), ms(h.min_rtt_ms)),
                if h.probes == 0 {
                    "-".to_string()
                } else {
                    format!("{:.0}%", h.loss * 100.0)
                },
                joined(&p.encap, "; "),
            ]
        })
        .collect();
    let head = [
        "id",
        "pop",
        "domain",
        "interface",
        "vlan",
        "next hop",
        "mtu",
        "state",
        "since",
        "rtt/min ms",
        "loss",
        "encapsulation",
    ];
    grid(Some(&head), rows, &[0, 6], "")
}

pub(super) fn policy_list(v: &PolicyList) -> String {
    let rows = v.iter().map(|p| {
        let members: Vec<String> = p
            .members
            .iter()
            .map(|m| {
                format!(
                    "{}(w{} p{}{})",
                    m.member,
                    m.weight,
                    m.priority,
                    if m.up { "" } else { " down" }
                )
            })
            .collect();
        let ids: Vec<String> = p.tables.iter().map(|t| t.id.to_string()).collect();
        vec![
            ids.join(","),
            p.name.clone(),
            p.method.clone(),
            members.join(" "),
        ]
    });
    grid(Some(&["id", "policy", "method", "members"]), rows, &[], "")
}

pub(super) fn policy_show(v: &PolicyShow) -> String {
    // A policy an exit names is used by every prefix of that preference.
    let exits: String = ["backbone_exit", "transit_exit"]
        .iter()
        .filter(|e| {
            v.tables
                .iter()
                .any(|t| t.key.strip_prefix(**e).is_some_and(|k| k.starts_with(' ')))
        })
        .map(|e| format!(" and as {e}"))
        .collect();
    let mut out = format!(
        "policy {}, method {}, used by {} prefixes{exits}\n",
        v.policy.name, v.policy.method, v.prefixes
    );
    for t in &v.tables {
        let _ = writeln!(
            out,
            "selection table {} (id {}, {} slots){}:",
            t.key,
            t.id,
            v.slots,
            t.fallback
                .as_deref()
                .map(|f| format!(", ALL MEMBERS DOWN: fallback {f}"))
                .unwrap_or_default()
        );
        out += &table(&t.table);
    }
    out
}

fn table(rows: &[Share]) -> String {
    let rows = rows.iter().map(|r| {
        vec![
            or_dash(r.pop.as_deref()),
            format!("{} slots", r.slots),
            format!("({:.1}% of flows)", 100.0 * r.share),
        ]
    });
    grid(None, rows, &[1], "  ")
}

pub(super) fn status(v: &Status) -> String {
    let mut out = format!(
        "edged {} (pid {}), up {} s, config {} (generation {})\n",
        v.version,
        v.pid,
        v.uptime_seconds,
        v.config.display(),
        v.generation
    );
    let _ = writeln!(
        out,
        "pins {} ({}), state {}",
        v.pin_path.display(),
        v.pins.scope,
        v.state_path.display()
    );
    let _ = writeln!(
        out,
        "default action {}, backbone exit {}, transit exit {}",
        v.default_action,
        or_dash(v.backbone_exit.as_deref()),
        or_dash(v.transit_exit.as_deref())
    );
    out += "ports:\n";
    out += &grid(
        None,
        v.ports.iter().map(|p| {
            let vlan = if p.vlan.is_empty() {
                "untagged".to_string()
            } else {
                let v: Vec<String> = p.vlan.iter().map(u16::to_string).collect();
                format!("vlan {}", v.join("."))
            };
            vec![
                if p.name.is_empty() {
                    p.interface.clone()
                } else {
                    p.name.clone()
                },
                p.interface.clone(),
                vlan,
                p.role.clone(),
                format!("domain {}", p.domain),
                if p.absent {
                    "absent".to_string()
                } else {
                    format!("ifindex {}", p.ifindex)
                },
            ]
        }),
        &[],
        "  ",
    );
    if !v.veth_peers.is_empty() {
        out += "veth peers (what XDP redirects into the port reaches the peer?):\n";
        let width = v.veth_peers.iter().map(|p| p.port.len()).max().unwrap_or(0);
        for p in &v.veth_peers {
            let peer = match (&p.peer, &p.netns) {
                (Some(peer), Some(ns)) => format!("{peer} (netns {ns})"),
                (Some(peer), None) => peer.clone(),
                (None, _) => "?".into(),
            };
            let gro = match p.gro {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            };
            let receives = match p.receives {
                Some(true) => "yes",
                Some(false) => "NO: dropped",
                None => "UNKNOWN",
            };
            let _ = writeln!(
                out,
                "  {:<width$} → {peer}: xdp {}{}, gro {gro}, {}: {receives}",
                p.port,
                p.xdp.as_deref().unwrap_or("?"),
                if p.edged_pass { " (edged's pass)" } else { "" },
                match p.up {
                    Some(true) => "up",
                    Some(false) => "down",
                    None => "?",
                },
            );
        }
    }
    out += "maps:\n";
    out += &grid(
        None,
        v.maps.rows().iter().map(|(k, m)| {
            vec![
                k.to_string(),
                m.used.to_string(),
                "/".to_string(),
                m.limit.to_string(),
                format!("({:.1}%)", 100.0 * m.used as f64 / m.limit as f64),
            ]
        }),
        &[1, 3, 4],
        "  ",
    );
    if !v.drained.is_empty() {
        let _ = writeln!(out, "drained: {}", v.drained.join(", "));
    }
    if let Some(b) = &v.bmp {
        out += &super::routes::bmp(b);
    }
    if !v.pending_restart.is_empty() {
        let _ = writeln!(
            out,
            "pending restart (changed in the config, not applied until edged restarts): {}",
            v.pending_restart.join(", ")
        );
    }
    if v.link_repairs.total > 0 {
        let _ = writeln!(
            out,
            "XDP links repaired: {} (found gone and attached again)",
            v.link_repairs.total
        );
        for r in &v.link_repairs.recent {
            let _ = writeln!(out, "  {:.3}  {}: {}", r.time, r.port, r.found);
        }
    }
    if !v.interface_events.is_empty() {
        out += "interface changes followed (edgectl events: kind interface):\n";
        out += &grid(
            None,
            v.interface_events.iter().map(|(interface, kinds)| {
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                vec![interface.clone(), kinds.join(", ")]
            }),
            &[],
            "  ",
        );
    }
    if !v.warnings.is_empty() {
        out += "WARNINGS:\n";
        for w in &v.warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    out
}

pub(super) fn lookup(address: IpAddr, v: &Lookup) -> String {
    let r = match v {
        Lookup::Unregistered(u) if u.domain != "public" => {
            return format!("{address}: no prefix of domain {} (dropped)\n", u.domain);
        }
        Lookup::Unregistered(u) => {
            return format!(
                "{address}: no registered prefix (default action {})\n",
                u.default_action
            );
        }
        Lookup::Registered(r) => r,
    };
    let mut out = format!(
        "{address}: {} ({}, {})\n",
        or_dash(r.prefix),
        or_dash(r.registration.as_deref()),
        or_dash(r.source.as_deref())
    );
    if r.domain != "public" {
        // A private domain: by destination only, the policy's table.
        let _ = writeln!(out, "  domain           {}", r.domain);
        let _ = writeln!(out, "  policy           {}", or_dash(r.policy.as_deref()));
        let _ = writeln!(
            out,
            "  dscp             {}",
            r.dscp.map_or("keep".into(), |d| d.to_string())
        );
        out += "  by flow:\n";
        out += &table(&r.toward_customer);
        return out;
    }
    let _ = writeln!(out, "  preference       {}", r.preference);
    let _ = writeln!(out, "  policy           {}", or_dash(r.policy.as_deref()));
    let _ = writeln!(
        out,
        "  dscp             {}",
        r.dscp.map_or("keep".into(), |d| d.to_string())
    );
    let _ = writeln!(
        out,
        "  protected on     {}",
        if r.protect.is_empty() {
            "any peering port".to_string()
        } else {
            r.protect.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  from customer    exit {}, by flow:",
        or_dash(r.from_customer.as_deref())
    );
    out += &table(&r.from_customer_pops);
    out += "  toward customer, by flow:\n";
    out += &table(&r.toward_customer);
    out
}

/// Rows (section, name, packets, bytes) of a stats reply.
fn rows(v: &Stats) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    for (section, counts) in [("actions", &v.actions), ("reasons", &v.reasons)] {
        for (name, c) in counts {
            out.push((section.into(), name.clone(), c.packets, c.bytes));
        }
    }
    for p in &v.prefixes {
        let name = if p.shared {
            format!("{} ({}, shared counter)", p.prefix, p.registration)
        } else {
            format!("{} ({})", p.prefix, p.registration)
        };
        out.push(("prefixes".into(), name, p.packets, p.bytes));
    }
    if let Some(s) = &v.shared {
        let name = format!("other ({} prefixes without a slot)", s.prefixes);
        out.push(("prefixes".into(), name, s.packets, s.bytes));
    }
    for p in &v.pops {
        out.push(("pops".into(), p.pop.clone(), p.packets, p.bytes));
    }
    for p in &v.ports {
        out.push(("ports".into(), p.port.clone(), p.packets, p.bytes));
    }
    out
}

/// One line of `stats --watch --json`.
#[derive(Debug, Serialize)]
pub(super) struct Watch {
    pub interval_seconds: f64,
    pub rows: Vec<Rate>,
}

/// A counter and its rates between two samples.
#[derive(Debug, Serialize)]
pub(super) struct Rate {
    pub bits_per_second: f64,
    pub bytes: u64,
    pub name: String,
    pub packets: u64,
    pub packets_per_second: f64,
    pub section: String,
}

/// Rates between two samples `secs` apart (rows matched by section and
/// name, in linear time).
pub(super) fn rates(v0: &Stats, v1: &Stats, secs: f64) -> Vec<Rate> {
    let before: std::collections::HashMap<(String, String), (u64, u64)> = rows(v0)
        .into_iter()
        .map(|(section, name, packets, bytes)| ((section, name), (packets, bytes)))
        .collect();
    rows(v1)
        .into_iter()
        .map(|(section, name, packets, bytes)| {
            let key = (section, name);
            let (p0, b0) = before.get(&key).copied().unwrap_or((packets, bytes));
            let (section, name) = key;
            Rate {
                bits_per_second: 8.0 * bytes.saturating_sub(b0) as f64 / secs,
                bytes,
                name,
                packets,
                packets_per_second: packets.saturating_sub(p0) as f64 / secs,
                section,
            }
        })
        .collect()
}

/// The counters as a table; with the previous sample, rates too.
pub(super) fn stats(v: &Stats, previous: Option<(&Stats, f64)>) -> String {
    let watching = previous.is_some();
    let rows = match previous {
        Some((v0, secs)) => rates(v0, v, secs),
        None => rows(v)
            .into_iter()
            .map(|(section, name, packets, bytes)| Rate {
                bits_per_second: 0.0,
                bytes,
                name,
                packets,
                packets_per_second: 0.0,
                section,
            })
            .collect(),
    };
    // One table for every section, so their columns line up: a blank
    // line and the section's header row, then its counters, indented.
    let mut table: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 16);
    let mut section = String::new();
    for r in rows {
        if r.section != section {
            let mut head = vec![String::new(), "packets".to_string(), "bytes".to_string()];
            if watching {
                head.extend(["pkt/s".to_string(), "bit/s".to_string()]);
            }
            table.push(Vec::new());
            head[0].clone_from(&r.section);
            table.push(head);
            section = r.section;
        }
        let mut row = vec![
            format!("  {}", r.name),
            r.packets.to_string(),
            r.bytes.to_string(),
        ];
        if watching {
            row.push(format!("{:.0}", r.packets_per_second));
            row.push(format!("{:.0}", r.bits_per_second));
        }
        table.push(row);
    }
    grid(None, table, &[1, 2, 3, 4], "")
}

#[cfg(test)]
mod tests {
    use edge_userspace::control::{Health, Pop};

    use super::*;

    fn pop(id: u32, name: &str, mac: &str, state: &str, up: bool, drained: bool) -> Pop {
        Pop {
            domain: "public".into(),
            drained,
            encap: Vec::new(),
            health: Health {
                down_reason: None,
                loss: if up { 0.0 } else { 0.5 },
                min_rtt_ms: Some(0.4),
                pop: name.into(),
                probes: 20,
                rtt_ms: Some(0.61),
                since_seconds: Some(7.2),
                state: state.into(),
                up,
            },
            id,
            interface: "bb0".into(),
            mac: mac.into(),
            mtu: Some(1500),
            name: name.into(),
            port: None,
            probe: None,
            region: None,
            vlan: "keep".into(),
        }
    }

    /// The text says what the probes say: a failed PoP is down, a drained
    /// one drained, with since, RTT and loss; columns line up whatever the
    /// next hop's length.
    #[test]
    fn pop_list_shows_real_health_in_aligned_columns() {
        let text = pop_list(&vec![
            pop(0, "fra", "02:00:00:00:0f:01", "down", false, false),
            pop(
                1,
                "lon",
                "198.51.100.3 (02:00:00:00:0e:01)",
                "up",
                true,
                false,
            ),
            pop(2, "ams", "02:00:00:00:0a:01", "drained", false, true),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let state_at = lines[0].find("state").unwrap();
        let cells: Vec<&str> = lines[1..].iter().map(|l| &l[state_at..]).collect();
        assert!(cells[0].starts_with("down "), "{text}");
        assert!(cells[1].starts_with("up "), "{text}");
        assert!(cells[2].starts_with("drained "), "{text}");
        assert!(
            lines[1].contains("7s") && lines[1].contains("0.61/0.40") && lines[1].contains("50%")
        );
    }

    /// A borrowed row reads and writes the JSON of a `Prefix` unchanged, and
    /// the table has one line per prefix under its header.
    #[test]
    fn prefix_rows_are_prefixes() {
        let p = Prefix {
            counter_slot: 3,
            dscp: Some(46),
            policy: Some("pop:lon".into()),
            preference: "microsoft".into(),
            prefix: "2001:db8:c::/48".parse().unwrap(),
            protect: vec!["peer0".into(), "peer1".into()],
            registration: "contoso \"east\"".into(),
            source: "route table 100".into(),
        };
        let json = serde_json::to_string(&vec![p.clone(), p]).unwrap();
        let rows: Vec<PrefixRow<'_>> = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&rows).unwrap(), json);
        let mut out = Vec::new();
        super::super::list::text(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("prefix "), "{text}");
        assert!(
            lines[1].starts_with("2001:db8:c::/48 ") && lines[1].ends_with(" peer0,peer1"),
            "{text}"
        );
    }

    /// The MTU column: the link MTU edged checks, `-` from an edged that
    /// does not report one.
    #[test]
    fn pop_list_shows_the_link_mtu() {
        let mut old = pop(1, "lon", "02:00:00:00:0e:01", "up", true, false);
        old.mtu = None;
        let text = pop_list(&vec![
            pop(0, "fra", "02:00:00:00:0f:01", "up", true, false),
            old,
        ]);
        let lines: Vec<&str> = text.lines().collect();
        // Right-aligned under its header, as numbers are.
        let end = lines[0].find(" mtu ").unwrap() + 4;
        assert_eq!(&lines[1][end - 4..end + 1], "1500 ", "{text}");
        assert_eq!(&lines[2][end - 4..end + 1], "   - ", "{text}");
    }

    #[test]
    fn policy_show_says_when_an_exit_uses_the_policy() {
        let show = |keys: &[&str]| {
            policy_show(&PolicyShow {
                first_prefixes: Vec::new(),
                policy: edge_userspace::control::Policy {
                    domain: "public".into(),
                    members: Vec::new(),
                    method: "priority".into(),
                    name: "bb-exits".into(),
                    tables: Vec::new(),
                },
                prefixes: 0,
                slots: 1021,
                table: Vec::new(),
                tables: keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| edge_userspace::control::KernelTable {
                        fallback: None,
                        id: i as u32,
                        key: k.to_string(),
                        table: Vec::new(),
                    })
                    .collect(),
            })
        };
        let first = |s: String| s.lines().next().unwrap().to_string();
        assert_eq!(
            first(show(&["backbone_exit bb-exits"])),
            "policy bb-exits, method priority, used by 0 prefixes and as backbone_exit"
        );
        assert_eq!(
            first(show(&["bb-exits"])),
            "policy bb-exits, method priority, used by 0 prefixes"
        );
    }

    #[test]
    fn an_event_reads_with_its_utc_time() {
        let e = edge_userspace::control::Event {
            kind: "pop".into(),
            message: "core is DOWN".into(),
            time: 1_764_688_000.25,
        };
        assert_eq!(
            event(&e),
            "2025-12-02T15:06:40.250Z  pop        core is DOWN\n"
        );
    }
}
#[cfg(test)]
mod grid_tests {
    use edge_userspace::control::{Count, PrefixCount};

    use super::*;

    fn stats(prefixes: usize) -> Stats {
        let count = |n: u64| Count {
            bytes: n * 100,
            packets: n,
        };
        Stats {
            actions: [("drop", 3), ("redirect", 1_234_567)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), count(n)))
                .collect(),
            generation: 1,
            pops: vec![],
            ports: vec![],
            prefixes: (0..prefixes)
                .map(|i| PrefixCount {
                    bytes: i as u64 * 1000,
                    packets: i as u64,
                    prefix: if i == 1 {
                        "2001:db8:1234:5678:9abc::/80".parse().unwrap()
                    } else {
                        "192.0.2.0/24".parse().unwrap()
                    },
                    registration: "contoso".into(),
                    shared: false,
                    source: "config".into(),
                })
                .collect(),
            reasons: Default::default(),
            shared: None,
        }
    }

    /// Every section's columns line up, long IPv6 prefixes included; the
    /// counters are right-aligned.
    #[test]
    fn stats_columns_fit_ipv6_prefixes() {
        let text = super::stats(&stats(3), None);
        eprintln!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("actions "), "{text}");
        let end = lines[1].len();
        for l in lines.iter().filter(|l| !l.is_empty()) {
            assert_eq!(l.len(), end, "{text}");
        }
        assert!(
            text.contains("\n  2001:db8:1234:5678:9abc::/80 (contoso) "),
            "{text}"
        );
        assert!(text.contains("\n  drop "), "{text}");
    }

    /// The most rows `stats` lists (every counter slot): each on a line
    /// of its own, as wide as the others (laid out by `big_grid`).
    #[test]
    fn stats_lists_every_counter_slot() {
        let v = stats(65_535);
        let text = super::stats(&v, Some((&v, 1.0)));
        assert_eq!(text.lines().count(), 65_535 + 2 + 4);
        let width = text.lines().nth(1).unwrap().len();
        assert!(
            text.lines()
                .filter(|l| !l.is_empty())
                .all(|l| l.len() == width)
        );
    }

    /// The big tables' layout is comfy-table's, byte for byte: empty rows,
    /// rows shorter than others, right-aligned columns, an indent.
    #[test]
    fn big_tables_are_laid_out_as_comfy_table_does() {
        let rows: Vec<Vec<String>> = (0..BIG + 5)
            .map(|i| match i % 5 {
                0 => Vec::new(),
                1 => vec!["a".into(), "1".into()],
                2 => vec![
                    "  2001:db8:1234:5678:9abc::/80 (contoso)".into(),
                    "123456".into(),
                    "x".into(),
                ],
                3 => vec![String::new(), "-".into(), "long cell here".into()],
                _ => vec!["b b".into(), (i * 7919).to_string(), "-".into()],
            })
            .collect();
        for (header, right, indent) in [
            (None, &[1][..], ""),
            (Some(&["name", "n", "what"][..]), &[1, 2][..], "  "),
        ] {
            let big = grid(header, rows.clone(), right, indent);
            // The same rows through comfy-table.
            let via_comfy = {
                use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};
                let mut t = Table::new();
                t.load_style(NOTHING)
                    .set_content_arrangement(ContentArrangement::Disabled);
                if let Some(h) = header {
                    t.set_header(h.to_vec());
                }
                t.add_rows(rows.clone());
                for (i, c) in t.column_iter_mut().enumerate() {
                    c.set_padding((0, 1));
                    if right.contains(&i) {
                        c.set_cell_alignment(CellAlignment::Right);
                    }
                }
                t.lines()
                    .map(|l| format!("{}\n", format!("{indent}{l}").trim_end()))
                    .collect::<String>()
            };
            for (n, (a, b)) in big.lines().zip(via_comfy.lines()).enumerate() {
                assert_eq!(a, b, "line {n}");
            }
            assert_eq!(big, via_comfy);
        }
    }
}
