//! The netlink helpers: one dump (routes and neighbours: request, read
//! every part, parse) and one request with one answer (a link, a namespace
//! id).

use anyhow::{Context as _, Result, bail};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Reads every netlink message of one datagram.
pub(crate) fn messages(buf: &[u8]) -> Vec<NetlinkMessage<RouteNetlinkMessage>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) else {
            break;
        };
        let len = m.header.length as usize;
        out.push(m);
        if len == 0 {
            break;
        }
        offset += len;
    }
    out
}

/// A connected NETLINK_ROUTE socket that has sent `request` with `flags`.
fn send(request: RouteNetlinkMessage, flags: u16, what: &str) -> Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    socket.bind_auto().context("netlink bind")?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(request));
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket
        .send(&buf, 0)
        .with_context(|| format!("sending the {what}"))?;
    Ok(socket)
}

/// Sends one netlink dump `request` and collects what comes back; `None`
/// when the kernel flagged the dump interrupted (inconsistent).
pub(crate) fn netlink_dump(
    request: RouteNetlinkMessage,
    what: &str,
) -> Result<Option<Vec<RouteNetlinkMessage>>> {
    let socket = send(
        request,
        NLM_F_REQUEST | NLM_F_DUMP,
        &format!("{what} dump request"),
    )?;
    let mut out = Vec::new();
    let mut interrupted = false;
    let mut rx = Vec::with_capacity(1 << 20);
    loop {
        rx.clear();
        socket
            .recv(&mut rx, 0)
            .with_context(|| format!("reading the {what} dump"))?;
        for m in messages(&rx) {
            interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
            match m.payload {
                NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(out)),
                NetlinkPayload::Error(e) => bail!("{what} dump: {e:?}"),
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                _ => {}
            }
        }
    }
}

/// A netlink request that the kernel answers with one message (`RTM_GETLINK`
/// of one link, `RTM_GETNSID`): the answer, or the kernel's error (its
/// errno in the error chain as an `std::io::Error`).
pub(crate) fn netlink_get(request: RouteNetlinkMessage, what: &str) -> Result<RouteNetlinkMessage> {
    let socket = send(request, NLM_F_REQUEST, &format!("{what} request"))?;
    let mut rx = Vec::with_capacity(1 << 16);
    loop {
        rx.clear();
        socket
            .recv(&mut rx, 0)
            .with_context(|| format!("reading the {what} answer"))?;
        for m in messages(&rx) {
            match m.payload {
                NetlinkPayload::InnerMessage(inner) => return Ok(inner),
                NetlinkPayload::Error(e) => {
                    return Err(anyhow::Error::new(e.to_io()).context(what.to_string()));
                }
                _ => {}
            }
        }
    }
}
