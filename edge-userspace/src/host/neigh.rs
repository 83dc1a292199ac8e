//! Next hops given by address: their MAC from the kernel's neighbour table
//! (netlink `RTM_GETNEIGH`), resolution triggered when missing, and a
//! watcher that tells the daemon when a watched neighbour changes.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use log::{debug, warn};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::sync::mpsc;

/// (ifindex, address, MAC) of one usable neighbour entry.
fn entry(m: &NeighbourMessage) -> Option<(u32, IpAddr, [u8; 6])> {
    if matches!(
        m.header.state,
        NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
    ) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                mac = Some([l[0], l[1], l[2], l[3], l[4], l[5]]);
            }
            _ => {}
        }
    }
    Some((m.header.ifindex, ip?, mac?))
}

use super::netlink::messages as parse;

/// Every usable entry of the neighbour table.
pub fn table() -> Result<Vec<(u32, IpAddr, [u8; 6])>> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Unspec;
    for _ in 0..10 {
        // An interrupted (inconsistent) dump is taken again.
        if let Some(messages) = super::netlink::netlink_dump(
            RouteNetlinkMessage::GetNeighbour(msg.clone()),
            "neighbour",
        )? {
            return Ok(messages
                .iter()
                .filter_map(|m| match m {
                    RouteNetlinkMessage::NewNeighbour(n) => entry(n),
                    _ => None,
                })
                .collect());
        }
    }
    anyhow::bail!("neighbour dump: the table kept changing during 10 dumps")
}

/// The MAC of `ip` on `ifindex` from the neighbour table. When it is not
/// there, one datagram to the discard port (9) out of `interface` makes the
/// kernel resolve it (ARP / neighbour solicitation); waits up to `wait`.
pub fn resolve(
    interface: &str,
    ifindex: u32,
    ip: IpAddr,
    wait: Duration,
) -> Result<Option<[u8; 6]>> {
    let find = || -> Result<Option<[u8; 6]>> {
        Ok(table()?
            .into_iter()
            .find(|(i, a, _)| *i == ifindex && *a == ip)
            .map(|(_, _, m)| m))
    };
    if let Some(mac) = find()? {
        return Ok(Some(mac));
    }
    let domain = if ip.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, None)?;
    s.bind_device(Some(interface.as_bytes()))?;
    let _ = s.send_to(&[0], &SocketAddr::new(ip, 9).into());
    debug!("resolving {ip} on {interface}");
    // Wait only once per next hop per minute: a next hop that stays
    // unresolved must not slow every later change down.
    static WAITED: std::sync::Mutex<Vec<(u32, IpAddr, Instant)>> =
        std::sync::Mutex::new(Vec::new());
    {
        let mut w = WAITED.lock().expect("lock");
        w.retain(|(_, _, t)| t.elapsed() < Duration::from_secs(60));
        if w.iter().any(|(i, a, _)| *i == ifindex && *a == ip) {
            return Ok(None);
        }
        w.push((ifindex, ip, Instant::now()));
    }
    let t = Instant::now();
    while t.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(mac) = find()? {
            return Ok(Some(mac));
        }
    }
    Ok(None)
}

/// Watches the neighbour table: sends `()` whenever an entry for one of
/// `watched` (ifindex, address) appears, changes or goes.
pub fn watch(
    watched: std::sync::Arc<std::sync::RwLock<BTreeSet<(u32, IpAddr)>>>,
    tx: mpsc::Sender<()>,
) -> Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    socket.bind_auto()?;
    socket.add_membership(libc::RTNLGRP_NEIGH)?;
    std::thread::Builder::new()
        .name("neighbours".into())
        .spawn(move || {
            let mut rx = Vec::with_capacity(1 << 16);
            loop {
                rx.clear();
                if let Err(e) = socket.recv(&mut rx, 0) {
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        // Events lost: have the daemon look again.
                        let _ = tx.blocking_send(());
                        continue;
                    }
                    warn!("neighbour watch stopped: {e}");
                    return;
                }
                let watched = watched.read().expect("watch set lock");
                let hit = parse(&rx).iter().any(|m| match &m.payload {
                    NetlinkPayload::InnerMessage(
                        RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n),
                    ) => n.attributes.iter().any(|a| match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                            watched.contains(&(n.header.ifindex, IpAddr::V4(*ip)))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                            watched.contains(&(n.header.ifindex, IpAddr::V6(*ip)))
                        }
                        _ => false,
                    }),
                    _ => false,
                });
                drop(watched);
                if hit && tx.blocking_send(()).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}
