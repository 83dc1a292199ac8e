//! Veth ports whose far end drops what XDP redirects into them.
//!
//! A frame that native-mode XDP redirects (or sends back with `XDP_TX`) into
//! a veth is handed straight to the veth's peer, the end that receives it,
//! through the peer's NAPI ring. The peer has one only while it is up and
//! has a native-mode XDP program attached or GRO enabled; otherwise the
//! kernel drops the frame when it flushes the redirect, after the program
//! counted it forwarded (`redirect`, `tx`), and only the peer's `ethtool -S`
//! shows it. Frames redirected by generic-mode XDP take the kernel's stack
//! and reach the peer whatever its settings.
//!
//! The peer is found through netlink: `IFLA_LINK` gives its ifindex and
//! `IFLA_LINK_NETNSID` its namespace (when not edged's), and `RTM_GETLINK`
//! with `IFLA_TARGET_NETNSID` reads it there: up or down, and its XDP
//! attachment. GRO is an ethtool feature with no netlink attribute: it is
//! read with the `ETHTOOL_GGRO` ioctl on a socket in the peer's namespace,
//! which edged looks for among the named namespaces (`/run/netns`) and those
//! of running processes, asking the kernel the id of each (`RTM_GETNSID`).
//! Namespaces are opened only for the length of one check: an open
//! namespace would outlive its `ip netns del`, with its veths.

use std::{
    collections::HashSet,
    fmt,
    fs::File,
    os::{
        fd::{AsFd as _, AsRawFd as _, OwnedFd},
        unix::fs::MetadataExt as _,
    },
};

use anyhow::{Context as _, Result, bail};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp, XdpAttached},
    nsid::{NsidAttribute, NsidMessage},
};

use super::netlink::netlink_get;

/// An XDP attachment, as `IFLA_XDP` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xdp {
    None,
    /// A program in native (driver) mode, with its id.
    Native(u32),
    /// Generic (skb) mode only: does not make a veth receive redirected frames.
    Generic(u32),
    /// Offloaded to hardware only.
    Offload(u32),
}

impl Xdp {
    /// `none`, `native`, `generic`, `offload`.
    pub fn word(self) -> &'static str {
        match self {
            Xdp::None => "none",
            Xdp::Native(_) => "native",
            Xdp::Generic(_) => "generic",
            Xdp::Offload(_) => "offload",
        }
    }

    fn of(attrs: &[LinkXdp]) -> Self {
        let id = |f: fn(&LinkXdp) -> Option<u32>| attrs.iter().find_map(f).unwrap_or(0);
        let prog = id(|a| match a {
            LinkXdp::ProgId(i) => Some(*i),
            _ => None,
        });
        let drv = id(|a| match a {
            LinkXdp::DrvProgId(i) => Some(*i),
            _ => None,
        });
        let skb = id(|a| match a {
            LinkXdp::SkbProgId(i) => Some(*i),
            _ => None,
        });
        let hw = id(|a| match a {
            LinkXdp::HwProgId(i) => Some(*i),
            _ => None,
        });
        let attached = attrs.iter().find_map(|a| match a {
            LinkXdp::Attached(x) => Some(x),
            _ => None,
        });
        match attached {
            Some(XdpAttached::Driver) => Xdp::Native(prog),
            Some(XdpAttached::SocketBuffer) => Xdp::Generic(prog),
            Some(XdpAttached::Hardware) => Xdp::Offload(prog),
            Some(XdpAttached::Multiple) if drv != 0 => Xdp::Native(drv),
            Some(XdpAttached::Multiple) if skb != 0 => Xdp::Generic(skb),
            Some(XdpAttached::Multiple) => Xdp::Offload(hw),
            _ => Xdp::None,
        }
    }
}

/// A link as `RTM_GETLINK` describes it.
#[derive(Debug, Clone)]
struct Link {
    name: String,
    up: bool,
    veth: bool,
    xdp: Xdp,
    /// `IFLA_LINK`: a veth's peer.
    link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace, when not this one.
    link_nsid: Option<i32>,
}

/// Reads link `ifindex` of this namespace, or of the namespace with id
/// `nsid` (as this namespace numbers it).
fn get_link(ifindex: u32, nsid: Option<i32>) -> Result<Link> {
    let mut m = LinkMessage::default();
    m.header.index = ifindex;
    if let Some(id) = nsid {
        m.attributes.push(LinkAttribute::IfNetnsId(id));
    }
    let RouteNetlinkMessage::NewLink(m) = netlink_get(RouteNetlinkMessage::GetLink(m), "link")?
    else {
        bail!("netlink answered RTM_GETLINK with another message");
    };
    let mut link = Link {
        name: String::new(),
        up: m.header.flags.contains(LinkFlags::Up),
        veth: false,
        xdp: Xdp::None,
        link: None,
        link_nsid: None,
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Xdp(x) => link.xdp = Xdp::of(&x),
            LinkAttribute::Link(i) => link.link = Some(i),
            LinkAttribute::LinkNetNsId(i) => link.link_nsid = Some(i),
            LinkAttribute::LinkInfo(infos) => {
                link.veth |= infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)));
            }
            _ => {}
        }
    }
    Ok(link)
}

/// The XDP attachment of interface `name` of this namespace.
pub fn xdp_of(name: &str) -> Result<Xdp> {
    Ok(get_link(super::netdev::ifindex(name)?, None)?.xdp)
}

/// A network namespace other than edged's, open for one check.
pub struct Netns {
    /// `ip netns` name, or `pid N` for an unnamed one.
    pub name: String,
    /// The command prefix that runs a command in it.
    pub enter: String,
    fd: OwnedFd,
}

impl fmt::Debug for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netns {}", self.name)
    }
}

impl Netns {
    /// Runs `f` on a thread that has entered this network namespace (only
    /// that one: the mount namespace, and with it bpffs, stays edged's).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(self.fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("entering network namespace {}", self.name))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// The id this namespace gives the namespace open as `fd`, if it gave one.
fn nsid_of(fd: &File) -> Option<i32> {
    let mut m = NsidMessage::default();
    m.attributes.push(NsidAttribute::Fd(fd.as_raw_fd() as u32));
    match netlink_get(RouteNetlinkMessage::GetNsId(m), "namespace id") {
        Ok(RouteNetlinkMessage::NewNsId(m)) => m.attributes.iter().find_map(|a| match a {
            NsidAttribute::Id(id) if *id >= 0 => Some(*id),
            _ => None,
        }),
        _ => None,
    }
}

/// The namespace this one numbers `nsid`: a named one (`/run/netns`) or a
/// running process's.
fn find_netns(nsid: i32) -> Option<Netns> {
    let mut seen = HashSet::new();
    let mut check = |path: std::path::PathBuf| -> Option<File> {
        let f = File::open(&path).ok()?;
        let m = f.metadata().ok()?;
        (seen.insert((m.dev(), m.ino())) && nsid_of(&f) == Some(nsid)).then_some(f)
    };
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(f) = check(e.path()) {
            return Some(Netns {
                enter: format!("ip netns exec {name}"),
                name,
                fd: f.into(),
            });
        }
    }
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(f) = check(e.path().join("ns/net")) {
            return Some(Netns {
                name: format!("pid {pid}"),
                enter: format!("nsenter --target {pid} --net"),
                fd: f.into(),
            });
        }
    }
    None
}

/// Whether GRO is on for interface `name` of the calling thread's namespace
/// (`ETHTOOL_GGRO`).
fn gro(name: &str) -> std::io::Result<bool> {
    /// `struct ethtool_value`.
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_GGRO: u32 = 0x2b;
    if name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    // SAFETY: a plain socket, an ifreq naming the interface and pointing at
    // a live ethtool_value, results checked.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut value = EthtoolValue {
            cmd: ETHTOOL_GGRO,
            data: 0,
        };
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&raw mut value).cast();
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(value.data != 0)
    }
}

/// The far end of a veth port, read just now.
#[derive(Debug)]
pub struct Peer {
    pub ifindex: u32,
    pub name: String,
    /// The namespace's id in edged's namespace; `None`: edged's own.
    pub nsid: Option<i32>,
    /// That namespace, open; `None` when it is edged's own or was not found.
    pub netns: Option<Netns>,
    pub up: bool,
    pub xdp: Xdp,
    /// GRO; the error when it could not be read.
    pub gro: Result<bool, String>,
}

impl Peer {
    /// `eth0`, `eth0 (netns lab-pop)`, `eth0 (netns id 3)`.
    pub fn label(&self) -> String {
        match (&self.netns, self.nsid) {
            (Some(ns), _) => format!("{} (netns {})", self.name, ns.name),
            (None, Some(id)) => format!("{} (netns id {id})", self.name),
            (None, None) => self.name.clone(),
        }
    }

    /// The namespace's name as status shows it; `None` for edged's own.
    pub fn netns_name(&self) -> Option<String> {
        match (&self.netns, self.nsid) {
            (Some(ns), _) => Some(ns.name.clone()),
            (None, Some(id)) => Some(format!("id {id}")),
            (None, None) => None,
        }
    }

    /// A command that turns GRO on for it.
    pub fn gro_on_command(&self) -> String {
        let cmd = format!("ethtool -K {} gro on", self.name);
        match (&self.netns, self.nsid) {
            (Some(ns), _) => format!("{} {cmd}", ns.enter),
            (None, Some(_)) => format!("{cmd} (in the peer's namespace)"),
            (None, None) => cmd,
        }
    }

    /// Runs `f` in the peer's namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        match (&self.netns, self.nsid) {
            (Some(ns), _) => ns.run(f),
            (None, None) => Ok(f()),
            (None, Some(id)) => bail!(
                "the namespace of {} (id {id}) is neither named in /run/netns nor a running process's",
                self.name
            ),
        }
    }

    /// Whether frames that native XDP redirects into the port reach this
    /// peer (`None`: cannot tell), and why, with what to do about it.
    pub fn receives(&self, port: &str) -> (Option<bool>, String) {
        let dropped = format!(
            "frames XDP redirects into {port} are dropped (counted as redirect; only the peer's `ethtool -S` shows the loss)"
        );
        let fix = format!(
            "turn GRO on (`{}`), attach an XDP program to it, or start edged with --veth-peer-pass",
            self.gro_on_command()
        );
        if let (Xdp::Native(id), true) = (self.xdp, self.up) {
            return (
                Some(true),
                format!(
                    "the peer {} runs an XDP program in native mode (id {id})",
                    self.label()
                ),
            );
        }
        if !self.up {
            let todo = match (self.xdp, &self.gro) {
                (Xdp::Native(_), _) | (_, Ok(true)) => "bring it up".to_string(),
                _ => format!("bring it up and {fix}"),
            };
            return (
                Some(false),
                format!("the peer {} is down: {dropped}; {todo}", self.label()),
            );
        }
        let generic = match self.xdp {
            Xdp::Generic(_) => " (its generic-mode XDP program does not count)",
            _ => "",
        };
        match &self.gro {
            Ok(true) => (
                Some(true),
                format!("GRO is on on the peer {}", self.label()),
            ),
            Ok(false) => (
                Some(false),
                format!(
                    "the peer {} has no XDP program in native mode{generic} and GRO off: {dropped}; {fix}",
                    self.label()
                ),
            ),
            Err(e) => (
                None,
                format!(
                    "the peer {} has no XDP program in native mode{generic}, and edged cannot read its GRO setting ({e}): unless `ethtool -k {}` in its namespace says generic-receive-offload: on, {dropped}",
                    self.label(),
                    self.name
                ),
            ),
        }
    }
}

/// The peer of `port` (an interface of edged's namespace), or `None` when
/// `port` is not a veth.
pub fn peer(port: &str) -> Result<Option<Peer>> {
    let ifindex = super::netdev::ifindex(port)?;
    let link = get_link(ifindex, None).with_context(|| format!("reading {port}"))?;
    if !link.veth {
        return Ok(None);
    }
    let Some(peer_index) = link.link.filter(|&i| i != 0) else {
        bail!("{port} is a veth without a peer");
    };
    let nsid = link.link_nsid;
    let p = get_link(peer_index, nsid).with_context(|| format!("reading the peer of {port}"))?;
    let netns = nsid.and_then(find_netns);
    let mut peer = Peer {
        ifindex: peer_index,
        name: p.name,
        nsid,
        netns,
        up: p.up,
        xdp: p.xdp,
        gro: Err(String::new()),
    };
    peer.gro = match peer.run(|| gro(&peer.name)) {
        Ok(Ok(on)) => Ok(on),
        Ok(Err(e)) => Err(format!("ETHTOOL_GGRO: {e}")),
        Err(e) => Err(format!("{e:#}")),
    };
    Ok(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_attachments_read_as_the_kernel_reports_them() {
        assert_eq!(Xdp::of(&[]), Xdp::None);
        assert_eq!(Xdp::of(&[LinkXdp::Attached(XdpAttached::None)]), Xdp::None);
        assert_eq!(
            Xdp::of(&[LinkXdp::Attached(XdpAttached::Driver), LinkXdp::ProgId(7)]),
            Xdp::Native(7)
        );
        assert_eq!(
            Xdp::of(&[
                LinkXdp::Attached(XdpAttached::SocketBuffer),
                LinkXdp::ProgId(8)
            ]),
            Xdp::Generic(8)
        );
        assert_eq!(
            Xdp::of(&[
                LinkXdp::Attached(XdpAttached::Multiple),
                LinkXdp::SkbProgId(8),
                LinkXdp::DrvProgId(9)
            ]),
            Xdp::Native(9)
        );
    }

    fn peer(up: bool, xdp: Xdp, gro: Result<bool, String>) -> Peer {
        Peer {
            ifindex: 2,
            name: "eth0".into(),
            nsid: None,
            netns: None,
            up,
            xdp,
            gro,
        }
    }

    #[test]
    fn a_peer_receives_with_native_xdp_or_gro_and_only_when_up() {
        let r = |p: Peer| p.receives("bb0").0;
        assert_eq!(r(peer(true, Xdp::Native(3), Ok(false))), Some(true));
        assert_eq!(r(peer(true, Xdp::None, Ok(true))), Some(true));
        assert_eq!(r(peer(true, Xdp::None, Ok(false))), Some(false));
        assert_eq!(r(peer(true, Xdp::Generic(3), Ok(false))), Some(false));
        assert_eq!(r(peer(false, Xdp::Native(3), Ok(true))), Some(false));
        assert_eq!(r(peer(false, Xdp::None, Ok(true))), Some(false));
        assert_eq!(r(peer(true, Xdp::None, Err("x".into()))), None);
        let (_, why) = peer(true, Xdp::None, Ok(false)).receives("bb0");
        assert!(
            why.contains("GRO off") && why.contains("`ethtool -K eth0 gro on`"),
            "{why}"
        );
    }
}
