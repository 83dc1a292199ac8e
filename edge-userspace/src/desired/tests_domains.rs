//! Logical ports, private domains and egress tags compiled into map
//! contents, applied in an order packets can live with, and ids kept.

use std::net::IpAddr;

use anyhow::Result;
use edge_common::{LportKey, PUBLIC_DOMAIN, VLAN_PRESENT, port_flags, role, vlan_mode};

use super::{memory::Memory, *};
use crate::{
    config,
    policy::{Choices, PopView},
};

/// cust0 (ifindex 2) and bb0 (ifindex 3).
struct Host2;

impl Host for Host2 {
    fn ifindex(&self, interface: &str) -> Result<u32> {
        match interface {
            "cust0" => Ok(2),
            "bb0" => Ok(3),
            _ => anyhow::bail!("no interface {interface}"),
        }
    }
    fn mac(&self, interface: &str) -> Result<[u8; 6]> {
        Ok([2, 0xee, 0, 0, 0, self.ifindex(interface)? as u8])
    }
    fn mtu(&self, interface: &str) -> Result<u32> {
        self.ifindex(interface).map(|_| 1500)
    }
    fn local_addresses(&self) -> Result<Vec<IpAddr>> {
        Ok(vec![])
    }
    fn neighbour(&self, _: &str, _: u32, _: IpAddr) -> Result<Option<[u8; 6]>> {
        Ok(None)
    }
}

fn compiled(text: &str, state: &State) -> Compiled {
    let plan = config::parse(text).unwrap_or_else(|e| panic!("{e}"));
    compile_on(
        &Host2,
        &plan,
        state,
        &Desired::default(),
        &|_| PopView::UP,
        &Choices::default(),
    )
    .unwrap()
}

#[test]
fn logical_ports_domains_and_tags_become_map_entries() {
    let c = compiled(config::tests_domains::TWO_CUSTOMERS, &State::default());
    let d = &c.desired;
    let id = |name: &str| c.ids.ports[name];
    let contoso = c.ids.domains["contoso"];
    let fabrikam = c.ids.domains["fabrikam"];
    assert_ne!(contoso, PUBLIC_DOMAIN);
    assert_ne!(fabrikam, PUBLIC_DOMAIN);
    assert_ne!(contoso, fabrikam);
    // cust0 has tagged ports only; bb0 an untagged one and tagged ones.
    assert_eq!(
        d.ports[&2],
        PortEntry {
            flags: port_flags::TAGGED | port_flags::NO_UNTAGGED,
            ..PortEntry::default()
        }
    );
    assert_eq!(
        d.ports[&3],
        PortEntry {
            role: role::BACKBONE,
            id: id("bb0"),
            domain: PUBLIC_DOMAIN,
            flags: port_flags::TAGGED,
        }
    );
    let key = |ifindex, outer: u16, inner: Option<u16>| LportKey {
        ifindex,
        outer: VLAN_PRESENT | outer,
        inner: inner.map_or(0, |v| VLAN_PRESENT | v),
    };
    assert_eq!(d.lports.len(), 6);
    assert_eq!(
        d.lports[&key(2, 300, Some(21))],
        PortEntry {
            role: role::PEERING,
            id: id("fabrikam-pvt"),
            domain: fabrikam,
            flags: 0,
        }
    );
    assert_eq!(d.lports[&key(2, 100, None)].domain, PUBLIC_DOMAIN);
    assert_eq!(d.lports[&key(3, 2001, None)].domain, contoso);
    // PoPs: a port's tags set, a push, the interface's tags kept.
    let pop = |name: &str| {
        d.pops[c.pop_ids[c.view.pops.iter().position(|p| p.name == name).unwrap()] as usize]
    };
    let gw = pop("contoso-ams");
    assert_eq!(
        (
            gw.ifindex,
            gw.vlan_mode,
            gw.vlan_count,
            gw.vlan[0],
            gw.domain
        ),
        (3, vlan_mode::SET, 1, 2001, contoso)
    );
    let push = pop("handoff");
    assert_eq!(
        (push.vlan_mode, push.vlan_count, push.vlan[0], push.domain),
        (vlan_mode::PUSH, 1, 3000, PUBLIC_DOMAIN)
    );
    // Given by bb0's untagged port: tags stripped.
    let core = pop("core");
    assert_eq!((core.vlan_mode, core.vlan_count), (vlan_mode::SET, 0));
    // The same network three times: public, and in each private domain,
    // each with its own table and counter slot.
    let net: IpNet = "192.0.2.0/24".parse().unwrap();
    let public = d.prefixes[&net];
    let a = d.domain_prefixes[&(contoso, net)];
    let b = d.domain_prefixes[&(fabrikam, net)];
    let tables = [public.policy, a.policy, b.policy];
    let slots = [public.slot, a.slot, b.slot];
    assert!(
        tables
            .iter()
            .all(|t| tables.iter().filter(|u| *u == t).count() == 1),
        "{tables:?}"
    );
    assert!(
        slots
            .iter()
            .all(|&s| s != 0 && slots.iter().filter(|&&u| u == s).count() == 1),
        "{slots:?}"
    );
    assert_eq!(a.allowed_ports, 0);
    // The view names them.
    assert_eq!(c.view.domain_prefixes.len(), 2);
    let port = c
        .view
        .ports
        .iter()
        .find(|p| p.name == "contoso-pvt")
        .unwrap();
    assert_eq!(
        (
            port.interface.as_str(),
            port.vlan.as_slice(),
            port.domain.as_str()
        ),
        ("cust0", &[101][..], "contoso")
    );
    let v = c.view.in_domain("contoso").unwrap();
    assert_eq!(v.prefixes.len(), 1);
    assert!(v.ports.iter().all(|p| p.domain == "contoso"));
    assert!(v.pops.iter().all(|p| p.domain == "contoso"));
    assert!(c.view.in_domain("nowhere").is_none());
}

#[test]
fn domain_ids_and_slots_are_kept_across_changes() {
    let first = compiled(config::tests_domains::TWO_CUSTOMERS, &State::default());
    let state = State {
        ids: first.ids.clone(),
        ..State::default()
    };
    // Declared in the other order, a domain keeps its id.
    let text = config::tests_domains::TWO_CUSTOMERS.replacen(
        "[[domains]]\nname = \"fabrikam\"\n\n[[domains]]\nname = \"contoso\"",
        "[[domains]]\nname = \"contoso\"\n\n[[domains]]\nname = \"fabrikam\"",
        1,
    );
    let plan = config::parse(&text).unwrap();
    let again = compile_on(
        &Host2,
        &plan,
        &state,
        &first.desired,
        &|_| PopView::UP,
        &Choices::default(),
    )
    .unwrap();
    assert_eq!(again.ids.domains, first.ids.domains);
    assert_eq!(again.desired, first.desired);
}

#[test]
fn applying_writes_domain_prefixes_and_logical_ports_before_the_ports_that_use_them() {
    let c = compiled(config::tests_domains::TWO_CUSTOMERS, &State::default());
    let mut m = Memory::holding(&Desired::default());
    apply_to(&mut m, &Desired::default(), &c.desired).unwrap();
    assert_eq!(m.maps, c.desired);
    assert!(m.order_ok, "a domain prefix was written before its table");
    // Every write failing in turn: undone, the maps as before.
    let total = m.writes;
    for fail in 0..total {
        let mut m = Memory::holding(&Desired::default());
        m.fail_at = Some(fail);
        assert!(apply_to(&mut m, &Desired::default(), &c.desired).is_err());
        assert_eq!(m.maps, Desired::default(), "write {fail} of {total}");
    }
    // And back to nothing: every entry removed.
    let mut m = Memory::holding(&c.desired);
    apply_to(&mut m, &c.desired, &Desired::default()).unwrap();
    assert_eq!(m.maps, Desired::default());
}
