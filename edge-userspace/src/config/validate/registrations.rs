//! `[[registrations]]` (route analytics: the ASNs that may announce a
//! registration's prefixes) and `[bmp]` (where edged listens for them).

use std::{collections::BTreeSet, net::SocketAddr};

use toml::Spanned;

use super::{super::schema::*, Validator};
use crate::plan::*;

/// AS_TRANS (RFC 6793): stands in for a 4-byte ASN on 2-byte sessions,
/// never a real origin or upstream.
const AS_TRANS: i64 = 23456;

impl Validator {
    pub(super) fn registrations(
        &mut self,
        config: &[RegistrationConfig],
        prefixes: &[PlannedPrefix],
        route_sources: &[PlannedRouteSource],
    ) -> Vec<PlannedRegistration> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in config {
            let name = r.name.get_ref();
            if name.is_empty() {
                self.bad(Some(r.name.span()), "registration name is empty");
                continue;
            }
            if !seen.insert(name.as_str()) {
                self.bad(
                    Some(r.name.span()),
                    format!("registration {name:?} is declared twice"),
                );
                continue;
            }
            let used = prefixes.iter().any(|p| p.registration == *name)
                || route_sources
                    .iter()
                    .any(|s| s.registration.as_deref() == Some(name));
            if !used {
                self.bad(
                    Some(r.name.span()),
                    format!(
                        "registration {name:?}: no [[prefixes]] entry or [[route_sources]] entry has registration = {name:?}, so it would monitor nothing"
                    ),
                );
            }
            let origin_asns = self.asns(name, "origin_asns", &r.origin_asns);
            if r.origin_asns.get_ref().is_empty() {
                self.bad(
                    Some(r.origin_asns.span()),
                    format!("registration {name:?}: origin_asns is empty (list the ASNs that may originate its prefixes)"),
                );
            }
            let upstream_asns = match &r.upstream_asns {
                Some(u) => self.asns(name, "upstream_asns", u),
                None => Vec::new(),
            };
            out.push(PlannedRegistration {
                name: name.clone(),
                origin_asns,
                upstream_asns,
            });
        }
        out
    }

    /// A list of ASNs: each 1..=4294967295, not AS_TRANS, no duplicates;
    /// sorted.
    fn asns(&mut self, name: &str, key: &str, list: &Spanned<Vec<Spanned<i64>>>) -> Vec<u32> {
        let mut out = BTreeSet::new();
        for asn in list.get_ref() {
            let n = *asn.get_ref();
            if !(1..=i64::from(u32::MAX)).contains(&n) {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: {n} is not an ASN (1-4294967295)"),
                );
            } else if n == AS_TRANS {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: 23456 is AS_TRANS (RFC 6793), never a real AS: give the 4-byte ASN"),
                );
            } else if !out.insert(n as u32) {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: {n} is listed twice"),
                );
            }
        }
        out.into_iter().collect()
    }

    /// `[bmp] listen`, required when registrations are declared (nothing
    /// else feeds them).
    pub(super) fn bmp(
        &mut self,
        bmp: Option<&BmpConfig>,
        declared: &[RegistrationConfig],
    ) -> Option<SocketAddr> {
        let Some(bmp) = bmp else {
            if let Some(r) = declared.first() {
                self.bad(
                    Some(r.origin_asns.span()),
                    format!(
                        "registration {:?} declares origin_asns, which only BMP feeds check: add a [bmp] section with `listen = \"IP:port\"` (the address edged accepts BMP sessions on) and point the BGP speaker's BMP at it",
                        r.name.get_ref()
                    ),
                );
            }
            return None;
        };
        match bmp.listen.get_ref().parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => {
                self.bad(
                    Some(bmp.listen.span()),
                    format!(
                        "[bmp] listen {:?}: port 0 is not a port a BGP speaker can connect to",
                        bmp.listen.get_ref()
                    ),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                self.bad(
                    Some(bmp.listen.span()),
                    format!(
                        "[bmp] listen {:?} is not an IP:port (say \"127.0.0.1:11019\" or \"[::1]:11019\")",
                        bmp.listen.get_ref()
                    ),
                );
                None
            }
        }
    }
}
