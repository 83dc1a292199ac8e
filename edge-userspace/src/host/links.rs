//! A watcher of the kernel's link and address events (netlink
//! `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`): tells the
//! daemon that an interface or a local address changed, so that it reads
//! the host again at once instead of at its next periodic check.

use anyhow::{Context as _, Result};
use log::warn;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::sync::mpsc;

/// Sends `()` on `tx` after every batch of link or address events (and
/// when events were lost: the daemon reads everything again anyway). A
/// full channel already holds a wake-up: the daemon compares the whole
/// state, so wake-ups coalesce.
pub fn watch(tx: mpsc::Sender<()>) -> Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    socket.bind_auto().context("netlink bind")?;
    for group in [
        libc::RTNLGRP_LINK,
        libc::RTNLGRP_IPV4_IFADDR,
        libc::RTNLGRP_IPV6_IFADDR,
    ] {
        socket
            .add_membership(group)
            .with_context(|| format!("joining netlink group {group}"))?;
    }
    std::thread::Builder::new()
        .name("links".into())
        .spawn(move || {
            let mut rx = Vec::with_capacity(1 << 16);
            loop {
                rx.clear();
                if let Err(e) = socket.recv(&mut rx, 0)
                    && e.raw_os_error() != Some(libc::ENOBUFS)
                {
                    warn!("link and address watch stopped: {e} (the 2 s link check still follows interfaces)");
                    return;
                }
                match tx.try_send(()) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                    Err(mpsc::error::TrySendError::Closed(())) => return,
                }
            }
        })
        .context("starting the link watcher")?;
    Ok(())
}
