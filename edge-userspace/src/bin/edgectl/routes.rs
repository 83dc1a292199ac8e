//! `edgectl routes`: route analytics (BMP) as text, and `--since`.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail};
use edge_userspace::{
    analytics::{Anomaly, Peer},
    control::{Anomalies, Bmp, RoutePaths},
};

use super::render::{grid, utc};

/// `--since`: an RFC 3339 time (`2026-12-03T11:00:00Z`) or a duration
/// back from now (`90s`, `15m`, `2h`, `1d`); Unix seconds.
pub(super) fn since(text: &str, now: f64) -> Result<f64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond() as f64 / 1e3);
    }
    // A date and time without an offset: a time, but which zone's?
    if text.parse::<jiff::civil::DateTime>().is_ok() {
        bail!("--since {text:?}: an RFC 3339 time needs its offset (Z or +01:00, as in {text}Z)");
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: f64 = n
        .parse::<u32>()
        .with_context(|| format!("--since {text:?}: give a duration (90s, 15m, 2h, 1d) or an RFC 3339 time (2026-12-03T11:00:00Z)"))?
        .into();
    let seconds = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => bail!("--since {text:?}: the unit is s, m, h or d (or give an RFC 3339 time)"),
    };
    Ok(now - n * seconds)
}

fn peer(p: &Peer) -> String {
    format!("{} AS{} @{}", p.address, p.asn, p.router)
}

fn path(p: &[u32]) -> String {
    if p.is_empty() {
        return "(empty)".into();
    }
    p.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// The BMP line of `routes` and `status`, and the prefixes held.
pub(super) fn bmp(b: &Bmp) -> String {
    let mut out = match &b.listen {
        None => "BMP: off ([bmp] listen is not set)\n".into(),
        Some(l) => format!(
            "BMP on {l}: {} sessions open, {} messages, {} announcements, {} withdrawals, {} paths kept, {} echoed paths dropped, {} sessions closed as malformed\n",
            b.totals.sessions,
            b.totals.messages,
            b.totals.announcements,
            b.totals.withdrawals,
            b.totals.paths,
            b.totals.echoed,
            b.totals.malformed
        ),
    };
    for h in &b.held {
        let _ = writeln!(
            out,
            "held (a hijack is active): {} ({}) to ports {} since {}",
            h.prefix,
            h.registration,
            h.ports.join(", "),
            utc(h.since)
        );
    }
    out
}

pub(super) fn show(r: &RoutePaths) -> String {
    let mut out = bmp(&r.bmp);
    match (&r.registered, &r.registration) {
        (Some(n), Some(reg)) => {
            let _ = writeln!(out, "{}: registered as {n} ({reg})", r.prefix);
        }
        _ if r.paths.is_empty() => {
            let _ = writeln!(
                out,
                "{}: no registration with origin_asns covers it; only registered prefixes and their more-specifics are kept",
                r.prefix
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "{}: not itself covered by a registration with origin_asns; the paths below are of the registered prefixes inside it (and their more-specifics)",
                r.prefix
            );
        }
    }
    if r.paths.is_empty() {
        out += "no path seen\n";
        return out;
    }
    let rows = r.paths.iter().map(|p| {
        vec![
            p.prefix.to_string(),
            peer(&p.peer),
            p.rib.to_string(),
            path(&p.attrs.as_path),
            p.attrs.origin_asn.map_or("-".into(), |a| format!("AS{a}")),
            if p.attrs.origin.is_empty() {
                "-".into()
            } else {
                p.attrs.origin.clone()
            },
            if p.attrs.communities.is_empty() {
                "-".into()
            } else {
                p.attrs.communities.join(" ")
            },
            utc(p.since),
            match (p.anomaly, p.stale) {
                (Some(k), true) => format!("{k} (stale)"),
                (Some(k), false) => k.to_string(),
                (None, true) => "(stale)".into(),
                (None, false) => "-".into(),
            },
        ]
    });
    out += &grid(
        Some(&[
            "PREFIX",
            "PEER",
            "RIB",
            "AS PATH",
            "ORIGIN AS",
            "ORIGIN",
            "COMMUNITIES",
            "SINCE",
            "ANOMALY",
        ]),
        rows,
        &[],
        "",
    );
    out
}

fn anomaly_rows<'a>(list: &'a [Anomaly]) -> impl Iterator<Item = Vec<String>> + 'a {
    list.iter().map(|a| {
        vec![
            utc(a.since),
            a.cleared.map_or("-".into(), utc),
            a.kind.to_string(),
            a.registration.clone(),
            a.prefix.map_or("-".into(), |p| p.to_string()),
            a.asn.map_or("-".into(), |x| format!("AS{x}")),
            a.peers.len().to_string(),
            a.message.clone(),
        ]
    })
}

pub(super) fn anomalies(r: &Anomalies) -> String {
    let mut out = bmp(&r.bmp);
    let header: &[&str] = &[
        "SINCE",
        "CLEARED",
        "KIND",
        "REGISTRATION",
        "PREFIX",
        "AS",
        "PEERS",
        "WHAT",
    ];
    let _ = writeln!(out, "{} active", r.active.len());
    if !r.active.is_empty() {
        out += &grid(Some(header), anomaly_rows(&r.active), &[6], "  ");
    }
    let _ = writeln!(out, "{} cleared", r.cleared.len());
    if !r.cleared.is_empty() {
        out += &grid(Some(header), anomaly_rows(&r.cleared), &[6], "  ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_anomalies_as_text() {
        let v: serde_json::Value = serde_json::json!({
            "bmp": {"listen": "127.0.0.1:11019", "totals": {"announcements": 2, "malformed": 0, "messages": 3, "paths": 1, "sessions": 1, "sessions_total": 1, "withdrawals": 0}},
            "paths": [{
                "anomaly": "origin_hijack", "as_path": [64511], "communities": ["64511:1"], "hops": 1,
                "origin": "igp", "origin_asn": 64511,
                "peer": {"address": "198.18.2.1", "asn": 64511, "distinguisher": 0, "router": "127.0.0.1"},
                "prefix": "192.0.2.0/25", "rib": "pre_policy", "since": 0.0, "stale": true
            }],
            "prefix": "192.0.2.0/25", "registered": "192.0.2.0/25", "registration": "contoso"
        });
        let r: RoutePaths = serde_json::from_value(v).unwrap();
        let text = show(&r);
        assert!(
            text.contains("192.0.2.0/25: registered as 192.0.2.0/25 (contoso)"),
            "{text}"
        );
        assert!(text.contains("198.18.2.1 AS64511 @127.0.0.1"), "{text}");
        assert!(text.contains("origin_hijack (stale)"), "{text}");
        assert!(text.contains("1970-01-01T00:00:00.000Z"), "{text}");
        let a = Anomalies {
            active: Vec::new(),
            bmp: r.bmp.clone(),
            cleared: Vec::new(),
        };
        let text = anomalies(&a);
        assert!(text.contains("0 active\n0 cleared\n"), "{text}");
        assert!(
            text.starts_with("BMP on 127.0.0.1:11019: 1 sessions open"),
            "{text}"
        );
    }

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(since("90s", 1000.0).unwrap(), 910.0);
        assert_eq!(since("15m", 1000.0).unwrap(), 100.0);
        assert_eq!(since("1d", 100_000.0).unwrap(), 13_600.0);
        assert_eq!(since("1970-01-01T00:01:00Z", 0.0).unwrap(), 60.0);
        assert!(since("15x", 0.0).is_err());
        assert!(since("soon", 0.0).is_err());
        let e = since("2026-12-03T12:57:45", 0.0).unwrap_err().to_string();
        assert!(e.contains("needs its offset"), "{e}");
    }

    #[test]
    fn a_less_specific_of_a_registered_prefix_lists_the_paths_inside() {
        let v: serde_json::Value = serde_json::json!({
            "bmp": {"listen": "127.0.0.1:11019", "totals": {"announcements": 1, "malformed": 0, "messages": 1, "paths": 1, "sessions": 1, "sessions_total": 1, "withdrawals": 0}},
            "paths": [{
                "anomaly": null, "as_path": [64500], "communities": [], "hops": 1,
                "origin": "igp", "origin_asn": 64500,
                "peer": {"address": "198.18.2.1", "asn": 64500, "distinguisher": 0, "router": "127.0.0.1"},
                "prefix": "198.51.100.0/24", "rib": "pre_policy", "since": 0.0, "stale": false
            }],
            "prefix": "198.51.0.0/16", "registered": null, "registration": null
        });
        let r: RoutePaths = serde_json::from_value(v).unwrap();
        let text = show(&r);
        assert!(
            text.contains("the paths below are of the registered prefixes inside it"),
            "{text}"
        );
        assert!(!text.contains("only registered prefixes"), "{text}");
        assert!(text.contains("0 echoed paths dropped"), "{text}");
    }

    #[test]
    fn held_prefixes_are_listed_under_the_bmp_line() {
        let b: Bmp = serde_json::from_value(serde_json::json!({
            "held": [{"ports": ["peer0", "peer2"], "prefix": "192.0.2.0/25", "registration": "contoso", "since": 0.0}],
            "listen": "127.0.0.1:11019",
            "totals": {"announcements": 1, "malformed": 0, "messages": 1, "paths": 1, "sessions": 1, "sessions_total": 1, "withdrawals": 0}
        }))
        .unwrap();
        let text = bmp(&b);
        assert!(
            text.contains("held (a hijack is active): 192.0.2.0/25 (contoso) to ports peer0, peer2 since 1970-01-01"),
            "{text}"
        );
    }
}
