//! `[[ports]]` and `[[pops]]`: interfaces, next hops, tunnels, regions, probes.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use edge_common::limits;
use macaddr::MacAddr6;
use toml::Spanned;

use super::{super::schema::*, PUBLIC, Validator, valid_name};
use crate::plan::*;

impl Validator {
    /// `[[domains]]`: the private domains' names, unique, not `public`.
    pub(super) fn domains(&mut self, domains: &[DomainConfig]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in domains {
            let name = d.name.get_ref();
            if !valid_name(name) {
                self.bad(
                    Some(d.name.span()),
                    format!("domain name {name:?} must be 1-63 letters, digits, '-', '_' or '.'"),
                );
            } else if name == PUBLIC {
                self.bad(
                    Some(d.name.span()),
                    "domain \"public\" is built in (ports, PoPs and prefixes without a domain are in it); name private domains otherwise",
                );
            } else if out.contains(name) {
                self.bad(
                    Some(d.name.span()),
                    format!("domain {name} is declared twice"),
                );
            } else {
                out.push(name.clone());
            }
        }
        // Each private domain needs a port of its own, and the public
        // domain takes the ids' 0.
        self.limit("domains", out.len(), limits::MAX_DOMAINS - 1);
        out
    }

    /// A `domain = "NAME"` reference: `None` for the public domain.
    pub(super) fn domain_ref(
        &mut self,
        name: Option<&Spanned<String>>,
        domains: &[String],
        what: &str,
    ) -> Result<Option<u32>, ()> {
        let Some(name) = name else { return Ok(None) };
        if name.get_ref() == PUBLIC {
            return Ok(None);
        }
        match domains.iter().position(|d| d == name.get_ref()) {
            Some(i) => Ok(Some(i as u32)),
            None => {
                self.bad(
                    Some(name.span()),
                    format!(
                        "{what}: unknown domain {:?} (declare it in [[domains]], or leave the key out for the public domain)",
                        name.get_ref()
                    ),
                );
                Err(())
            }
        }
    }

    /// A list of VLAN tags (VIDs 1-4094, at most `max`).
    fn vlan_list(
        &mut self,
        v: &Spanned<Vec<Spanned<i64>>>,
        max: usize,
        what: &str,
    ) -> Option<Vec<u16>> {
        if v.get_ref().len() > max {
            self.bad(
                Some(v.span()),
                format!(
                    "{what}: vlan has {} tags; at most {max} (an outer and an inner tag)",
                    v.get_ref().len()
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        for t in v.get_ref() {
            out.push(self.ranged(t, 1..=4094, &format!("{what}: VLAN id"))? as u16);
        }
        Some(out)
    }

    pub(super) fn ports(&mut self, ports: &[PortConfig], domains: &[String]) -> Vec<PlannedPort> {
        let mut out: Vec<PlannedPort> = Vec::new();
        for port in ports {
            let interface = port.interface.get_ref();
            if interface.is_empty() || interface.len() > 15 {
                self.bad(
                    Some(port.interface.span()),
                    format!("interface name {interface:?} must be 1-15 characters"),
                );
                continue;
            }
            let vlan = match &port.vlan {
                None => Vec::new(),
                Some(v) if v.get_ref().is_empty() => {
                    self.bad(
                        Some(v.span()),
                        format!(
                            "port on {interface}: vlan = [] is the untagged port: leave the key out"
                        ),
                    );
                    continue;
                }
                Some(v) => match self.vlan_list(v, 2, &format!("port on {interface}")) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let name = match &port.name {
                Some(n) if !valid_name(n.get_ref()) => {
                    self.bad(
                        Some(n.span()),
                        format!(
                            "port name {:?} must be 1-63 letters, digits, '-', '_' or '.'",
                            n.get_ref()
                        ),
                    );
                    continue;
                }
                Some(n) => n.get_ref().clone(),
                None => PlannedPort::default_name(interface, &vlan),
            };
            let at = port
                .name
                .as_ref()
                .map_or(port.interface.span(), |n| n.span());
            if out.iter().any(|p| p.name == name) {
                self.bad(
                    Some(at),
                    format!("port {name} is listed twice (ports on one interface need distinct vlan tags, or names)"),
                );
                continue;
            }
            if let Some(other) = out
                .iter()
                .find(|p| &p.interface == interface && p.vlan == vlan)
            {
                let tags = if vlan.is_empty() {
                    "untagged frames".to_string()
                } else {
                    format!("vlan {vlan:?}")
                };
                self.bad(
                    Some(
                        port.vlan
                            .as_ref()
                            .map_or(port.interface.span(), |v| v.span()),
                    ),
                    format!(
                        "port {name}: {tags} on {interface} are already port {}'s",
                        other.name
                    ),
                );
                continue;
            }
            let Ok(domain) =
                self.domain_ref(port.domain.as_ref(), domains, &format!("port {name}"))
            else {
                continue;
            };
            out.push(PlannedPort {
                name,
                interface: interface.clone(),
                role: port.role,
                vlan,
                domain,
            });
        }
        self.limit("ports", out.len(), limits::MAX_PORTS);
        out
    }

    pub(super) fn pops(
        &mut self,
        pops: &[PopConfig],
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
    ) -> Vec<PlannedPop> {
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
            // On a problem, the rest of the PoP is still checked; its
            // domain is then unknown, and checks that need it skip it.
            let egress = self.pop_egress(pop, ports, port_ids);
            self.doubtful_pops.push(egress.is_none());
            let (interface, port, vlan, domain) = egress.unwrap_or_default();
            let interface = &interface;
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
            let tagged = match &vlan {
                EgressVlan::Keep => false,
                EgressVlan::Set(tags) => !tags.is_empty(),
                EgressVlan::Push(_) => true,
            };
            if let (true, Some(ip)) = (tagged, &pop.next_hop) {
                self.bad(
                    Some(ip.span()),
                    format!("PoP {name}: next_hop is resolved in the kernel's neighbour table of {interface}, untagged; a PoP sent tagged frames needs mac"),
                );
            }
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
            let mtu = pop
                .mtu
                .as_ref()
                .and_then(|m| self.pop_mtu(name, m, &encap_ipv6));
            out.push(PlannedPop {
                name: name.clone(),
                interface: interface.clone(),
                port,
                vlan,
                domain,
                mac,
                next_hop,
                encap_ipv4,
                encap_ipv6,
                region,
                probe,
                mtu,
            });
        }
        self.limit("PoPs", out.len(), limits::MAX_POPS);
        out
    }

    /// Where a PoP's frames leave: `interface` (an interface some port is
    /// on; tags kept unless `vlan` or `vlan_push` say otherwise; the
    /// public domain) or `port` (that port's interface and tags, and its
    /// domain).
    #[allow(clippy::type_complexity)]
    fn pop_egress(
        &mut self,
        pop: &PopConfig,
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
    ) -> Option<(String, Option<u32>, EgressVlan, Option<u32>)> {
        let name = pop.name.get_ref();
        let (interface, port) = match (&pop.interface, &pop.port) {
            (Some(i), None) => {
                if !ports.iter().any(|p| &p.interface == i.get_ref()) {
                    self.bad(
                        Some(i.span()),
                        format!("PoP {name}: interface {} is not a listed port", i.get_ref()),
                    );
                    return None;
                }
                (i.get_ref().clone(), None)
            }
            (None, Some(p)) => match port_ids.get(p.get_ref().as_str()) {
                Some(&id) => (ports[id as usize].interface.clone(), Some(id)),
                None => {
                    self.bad(
                        Some(p.span()),
                        format!("PoP {name}: unknown port {:?}", p.get_ref()),
                    );
                    return None;
                }
            },
            (Some(_), Some(p)) => {
                self.bad(
                    Some(p.span()),
                    format!("PoP {name}: give either interface or port, not both (a port names its interface)"),
                );
                return None;
            }
            (None, None) => {
                self.bad(
                    Some(pop.name.span()),
                    format!("PoP {name}: needs interface (an interface some port is on) or port (a port by name: its interface, tags and domain)"),
                );
                return None;
            }
        };
        let what = format!("PoP {name}");
        let vlan = match (&pop.vlan, &pop.vlan_push) {
            (Some(_), Some(p)) => {
                self.bad(
                    Some(p.span()),
                    format!("{what}: give either vlan (the tags frames leave with) or vlan_push (a tag pushed outside the received ones), not both"),
                );
                return None;
            }
            (Some(v), None) => EgressVlan::Set(self.vlan_list(v, 2, &what)?),
            (None, Some(p)) => {
                EgressVlan::Push(self.ranged(p, 1..=4094, &format!("{what}: vlan_push"))? as u16)
            }
            (None, None) => match port {
                Some(id) => EgressVlan::Set(ports[id as usize].vlan.clone()),
                None => EgressVlan::Keep,
            },
        };
        let domain = port.and_then(|id| ports[id as usize].domain);
        // The tags a PoP writes never put its frames into another
        // domain's port on that interface (a VLAN is a domain boundary).
        let on: Vec<&PlannedPort> = ports.iter().filter(|p| p.interface == interface).collect();
        let clash = match &vlan {
            EgressVlan::Keep if on.iter().any(|p| !p.vlan.is_empty()) => {
                self.bad(
                    Some(pop.interface.as_ref().map_or(pop.name.span(), |i| i.span())),
                    format!("PoP {name}: {interface} has VLAN ports: give port (a port's interface and tags), vlan (the tags frames leave with) or vlan_push; frames keeping the tags they arrived with could land in another port's VLAN"),
                );
                return None;
            }
            EgressVlan::Keep => None,
            EgressVlan::Set(tags) => on.iter().find(|p| p.vlan == *tags && p.domain != domain),
            EgressVlan::Push(v) => on
                .iter()
                .find(|p| p.vlan.first() == Some(v) && p.domain != domain),
        };
        if let Some(other) = clash {
            let at = pop
                .vlan
                .as_ref()
                .map(|v| v.span())
                .or(pop.vlan_push.as_ref().map(|v| v.span()))
                .unwrap_or(pop.name.span());
            self.bad(
                Some(at),
                format!(
                    "PoP {name}: its frames would leave {interface} {} port {}'s VLAN, of another domain than the PoP's; a PoP writes only its own domain's tags",
                    if matches!(vlan, EgressVlan::Push(_)) { "pushed into" } else { "in" },
                    other.name
                ),
            );
            return None;
        }
        Some((interface, port, vlan, domain))
    }

    /// A PoP's `mtu`: 1280 (the IPv6 minimum, above IPv4's 576 and 68) to
    /// 65535 (the longest IP packet); with an IPv6 tunnel at least 1320, so
    /// that 1280 bytes fit inside the 40-byte outer header.
    fn pop_mtu<T>(&mut self, pop: &str, m: &Spanned<i64>, encap_ipv6: &Option<T>) -> Option<u32> {
        let mtu = self.ranged(m, 1280..=65535, &format!("PoP {pop}: mtu"))?;
        if encap_ipv6.is_some() && mtu < i64::from(PlannedPop::IPV6_TUNNEL_MTU) {
            self.bad(
                Some(m.span()),
                format!(
                    "PoP {pop}: mtu {mtu} is below {}, which an IPv6 tunnel needs (1280 inside its 40-byte outer header)",
                    PlannedPop::IPV6_TUNNEL_MTU
                ),
            );
            return None;
        }
        Some(mtu as u32)
    }

    pub(super) fn region(&mut self, text: &Spanned<String>, what: &str) -> Option<Region> {
        match Region::parse(text.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                self.bad(Some(text.span()), format!("{what}: {e}"));
                None
            }
        }
    }

    /// `v` within `range`, else a problem and `None`.
    pub(super) fn ranged(
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

    pub(super) fn probe(
        &mut self,
        pop: &str,
        interface: &str,
        p: &Spanned<ProbeConfig>,
    ) -> Option<Probe> {
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

    pub(super) fn tunnel<A: std::str::FromStr>(
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
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    /// A port and one PoP with `extra` keys.
    fn config(extra: &str) -> String {
        format!(
            "[[ports]]\ninterface = \"bb0\"\nrole = \"backbone\"\n\n[[pops]]\nname = \"ams\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:0a:01\"\n{extra}\n"
        )
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn mtu_is_optional_and_taken_as_given() {
        let plan = parse(&config("")).unwrap();
        assert_eq!(plan.pops[0].mtu, None, "the interface's, at compile time");
        for mtu in [1280, 1500, 9000, 65535] {
            let plan = parse(&config(&format!("mtu = {mtu}"))).unwrap();
            assert_eq!(plan.pops[0].mtu, Some(mtu));
        }
        let v6 = "encap_ipv6 = { source = \"2001:db8::1\", destination = \"2001:db8::2\" }";
        let plan = parse(&config(&format!("{v6}\nmtu = 1320"))).unwrap();
        assert_eq!(plan.pops[0].mtu, Some(1320));
    }

    #[test]
    fn mtu_out_of_range_is_reported_with_its_line() {
        for mtu in [0, 576, 1279, 65536] {
            assert_eq!(
                problems(&config(&format!("mtu = {mtu}"))),
                vec![format!("line 9: PoP ams: mtu {mtu} is outside 1280-65535")]
            );
        }
        let v6 = "encap_ipv6 = { source = \"2001:db8::1\", destination = \"2001:db8::2\" }";
        assert_eq!(
            problems(&config(&format!("{v6}\nmtu = 1319"))),
            vec![
                "line 10: PoP ams: mtu 1319 is below 1320, which an IPv6 tunnel needs (1280 inside its 40-byte outer header)"
            ]
        );
        // Not a number: a parse error, alone.
        assert_eq!(problems(&config("mtu = \"1500\"")).len(), 1);
    }
}
