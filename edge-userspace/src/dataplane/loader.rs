//! Loads the eBPF object with its maps and links pinned, so that the data
//! plane outlives the daemon, and removes it all on teardown.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, RingBuf},
    programs::{
        Xdp, XdpMode as AyaXdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use edge_common::{map_names, prog_names};
use log::{info, warn};

use super::maps::{Counters, Tables};
use crate::{
    host::veth::Peer,
    plan::{Limits, XdpMode},
};

/// The eBPF object built by aya-build (see build.rs).
pub fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/edge"))
}

/// The programs of `cargo xtask bench` (edge-ebpf's bench.rs), never loaded by edged.
pub fn bench_object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench"))
}

/// Loads the object (maps created, programs not yet verified).
pub fn load() -> Result<Ebpf> {
    EbpfLoader::new()
        .load(object())
        .context("loading the edge eBPF object")
}

/// Makes sure `dir` exists on a bpffs, mounting bpffs on /sys/fs/bpf if
/// nothing is mounted there yet; whether it mounted it. A `dir` that is not
/// on a bpffs (or would not be: its nearest existing ancestor is not) is
/// refused before anything is created or its mode changed.
pub fn ensure_bpffs(dir: &Path) -> Result<bool> {
    let magic = |p: &Path| nix::sys::statfs::statfs(p).map(|s| s.filesystem_type().0);
    let is_bpffs = |p: &Path| magic(p).map(|m| m == libc::BPF_FS_MAGIC).unwrap_or(false);
    let root = Path::new("/sys/fs/bpf");
    let mounted = dir.starts_with(root) && !is_bpffs(root);
    if mounted {
        nix::mount::mount(
            Some("bpf"),
            root,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .context("mounting bpffs on /sys/fs/bpf")?;
        info!("mounted bpffs on {}", root.display());
    }
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if !is_bpffs(existing) {
        let what = match magic(existing) {
            Ok(m) => format!("filesystem type {m:#x}"),
            Err(e) => format!("statfs: {e}"),
        };
        bail!(
            "pin path {} is not on a bpf filesystem ({} is on {what}, not bpffs); nothing was created or changed there: choose a path under /sys/fs/bpf, or mount bpffs (`mount -t bpf bpf DIR`)",
            dir.display(),
            existing.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating pin directory {}", dir.display()))?;
    // Pinned maps and links are root's only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    }
    Ok(mounted)
}

/// Whether pins under the pin directory outlive edged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The directory is the one outside edged's mount namespace too (edged
    /// shares the host's mount namespace, or has one of its own that still
    /// sees the host's bpffs, as under systemd's `ProtectSystem`): the pins
    /// outlive edged.
    Shared,
    /// Only edged's own mount namespace sees it (`ip netns exec`, `unshare
    /// -m` without the host's bpffs): the pins, and the data plane with
    /// them, vanish when edged exits.
    Private,
    /// edged could not tell.
    Unknown,
}

impl Scope {
    /// `shared`, `private`, `unknown`.
    pub fn word(self) -> &'static str {
        match self {
            Scope::Shared => "shared",
            Scope::Private => "private",
            Scope::Unknown => "unknown",
        }
    }
}

/// Where the pin directory is visible from, and how edged found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinScope {
    pub scope: Scope,
    /// What edged compared, for the log and `edgectl status`.
    pub detail: String,
}

/// Compares the mount namespace of edged with that of PID 1 (or, where
/// PID 1's cannot be read, as in some sandboxes, of the nearest ancestor
/// process in another mount namespace) and, when they differ, the pin
/// directory `dir` as edged sees it with the same path as that process sees
/// it (through `/proc/PID/root`). `mounted`: edged mounted bpffs itself.
pub fn pin_scope(dir: &Path, mounted: bool) -> PinScope {
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt"));
    let how = if mounted {
        "edged mounted bpffs on /sys/fs/bpf itself"
    } else {
        "bpffs was mounted already"
    };
    let scope = |scope, detail: String| PinScope {
        scope,
        detail: format!("{detail}; {how}"),
    };
    let own = match ns("self") {
        Ok(own) => own,
        Err(e) => return scope(Scope::Unknown, format!("reading /proc/self/ns/mnt: {e}")),
    };
    let reference = match ns("1") {
        Ok(init) if init == own => {
            return scope(
                Scope::Shared,
                "edged runs in PID 1's mount namespace".into(),
            );
        }
        Ok(_) => Some((1, "PID 1".to_string())),
        Err(_) => {
            // The nearest ancestor in another mount namespace.
            let mut pid = std::os::unix::process::parent_id();
            let mut found = None;
            while pid > 1 {
                if let Ok(theirs) = ns(&pid.to_string())
                    && theirs != own
                {
                    found = Some((pid, format!("edged's ancestor process {pid}")));
                    break;
                }
                match parent_of(pid) {
                    Some(p) => pid = p,
                    None => break,
                }
            }
            found
        }
    };
    let Some((pid, who)) = reference else {
        return scope(
            Scope::Shared,
            "edged shares the mount namespace of its ancestors (PID 1's cannot be read)".into(),
        );
    };
    let theirs = Path::new(&format!("/proc/{pid}/root")).join(dir.strip_prefix("/").unwrap_or(dir));
    use std::os::unix::fs::MetadataExt as _;
    match (fs::metadata(dir), fs::metadata(&theirs)) {
        (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()) => scope(
            Scope::Shared,
            format!(
                "edged has a mount namespace of its own, and {who} sees the same {}",
                dir.display()
            ),
        ),
        (Ok(_), Ok(_)) => scope(
            Scope::Private,
            format!(
                "edged has a mount namespace of its own, and {who} sees another directory at {}",
                dir.display()
            ),
        ),
        (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::NotFound => scope(
            Scope::Private,
            format!(
                "edged has a mount namespace of its own, and {who} has no {}",
                dir.display()
            ),
        ),
        (a, b) => scope(
            Scope::Unknown,
            format!(
                "comparing {} with {}: {}",
                dir.display(),
                theirs.display(),
                a.err()
                    .or(b.err())
                    .map_or_else(String::new, |e| e.to_string())
            ),
        ),
    }
}

/// A process's parent, from `/proc/PID/status`.
fn parent_of(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// Where the XDP link of `interface` is pinned. bpffs refuses names with
/// dots, which interface names may hold (`eth0.100`); they cannot hold `:`.
fn link_pin(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("link_{}", interface.replace('.', ":")))
}

/// The loaded forwarder: program verified, maps pinned under the pin path
/// (reused from an earlier run when compatible, so their contents and the
/// traffic survive a daemon restart), links pinned too. Dropping it leaves
/// the data plane running; [`teardown`] removes it.
pub struct Dataplane {
    ebpf: Ebpf,
    pub tables: Tables,
    pub counters: Counters,
    /// Protection events; the daemon takes it for its reader thread.
    pub events: Option<RingBuf<MapData>>,
    pin_dir: PathBuf,
    /// Compatible pinned maps were found and reused: a restart, not a first start.
    pub resumed: bool,
}

const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// What the object expects of a map: (key size, value size, max entries, flags).
fn expected_maps(limits: Limits) -> Result<Vec<(&'static str, [u32; 4])>> {
    let obj = aya_obj::Object::parse(object()).context("parsing the edge eBPF object")?;
    map_names::ALL
        .iter()
        .map(|&name| {
            let m = obj
                .maps
                .get(name)
                .with_context(|| format!("map {name} missing from object"))?;
            let max = match name {
                map_names::PREFIX_V4 => limits.prefixes_v4,
                map_names::PREFIX_V6 => limits.prefixes_v6,
                _ => m.max_entries(),
            };
            Ok((name, [m.key_size(), m.value_size(), max, m.map_flags()]))
        })
        .collect()
}

impl Dataplane {
    /// Loads and verifies the program with its maps pinned under `pin_dir`.
    /// A pinned map of the same shape is reused with its contents; one of
    /// another shape (an upgrade that changed it, other limits) is replaced,
    /// with a warning. Nothing is attached yet.
    pub fn load(pin_dir: &Path, limits: Limits) -> Result<Self> {
        ensure_bpffs(pin_dir)?;
        let mut reused = 0;
        let expected = expected_maps(limits)?;
        for (name, want) in &expected {
            let path = pin_dir.join(name);
            if !path.exists() {
                continue;
            }
            // The kernel adds BPF_F_RDONLY_PROG to device maps' flags.
            let have = aya::maps::MapInfo::from_pin(&path).map(|i| {
                [
                    i.key_size(),
                    i.value_size(),
                    i.max_entries(),
                    i.map_flags() & !BPF_F_RDONLY_PROG,
                ]
            });
            match have {
                Ok(have) if have == *want => reused += 1,
                other => {
                    warn!(
                        "pinned map {} does not match this build ({other:?}, want {want:?}): replacing it; its contents are lost",
                        path.display()
                    );
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                }
            }
        }
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(map_names::PREFIX_V4, limits.prefixes_v4)
            .map_max_entries(map_names::PREFIX_V6, limits.prefixes_v6);
        let paths: Vec<(&str, PathBuf)> = map_names::ALL
            .iter()
            .map(|&n| (n, pin_dir.join(n)))
            .collect();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader
            .load(object())
            .context("loading the edge eBPF object")?;
        let program: &mut Xdp = ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge missing from object")?
            .try_into()?;
        program
            .load()
            .context("the verifier rejected the edge program")?;
        let tables = Tables::take(&mut ebpf)?;
        let counters = Counters::take(&mut ebpf)?;
        let events = ebpf
            .take_map(map_names::EVENTS)
            .context("map EDGE_EVENTS missing from object")
            .and_then(|m| RingBuf::try_from(m).context("EDGE_EVENTS is not a ring buffer"))?;
        let resumed = reused == expected.len();
        if resumed {
            info!("reusing the maps pinned under {}", pin_dir.display());
        } else if reused > 0 {
            warn!(
                "reused {reused} of {} pinned maps under {}",
                expected.len(),
                pin_dir.display()
            );
        }
        Ok(Self {
            ebpf,
            tables,
            counters,
            events: Some(events),
            pin_dir: pin_dir.to_path_buf(),
            resumed,
        })
    }

    /// Attaches the program to every interface in `ports` and pins the
    /// links. Where a pinned link exists (a restart or an upgrade) the new
    /// program replaces the old one atomically (`bpf_link_update`): no packet
    /// sees a port without a program. Pinned links of interfaces not in
    /// `ports` are detached.
    pub fn attach(&mut self, ports: &[&str], mode: XdpMode) -> Result<()> {
        for port in ports {
            self.attach_port(port, mode)?;
        }
        for (interface, pin) in pinned_links(&self.pin_dir) {
            if !ports.contains(&interface.as_str()) {
                detach_pinned(&pin);
                info!("detached from {interface} (no longer a port)");
            }
        }
        Ok(())
    }

    fn attach_port(&mut self, port: &str, mode: XdpMode) -> Result<()> {
        let pin = link_pin(&self.pin_dir, port);
        let program: &mut Xdp = self
            .ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge")?
            .try_into()?;
        if pin.exists() {
            let replaced = PinnedLink::from_pin(&pin)
                .map_err(anyhow::Error::from)
                .and_then(|l| XdpLink::try_from(FdLink::from(l)).map_err(anyhow::Error::from))
                .and_then(|l| program.attach_to_link(l).map_err(anyhow::Error::from));
            match replaced {
                Ok(id) => {
                    // The pin holds the link; our handle can go.
                    drop(program.take_link(id)?);
                    info!("{port}: replaced the program on the pinned link");
                    return Ok(());
                }
                Err(e) => {
                    warn!("{port}: pinned link unusable ({e:#}); attaching anew");
                    let _ = fs::remove_file(&pin);
                }
            }
        }
        let (id, used) = match mode {
            XdpMode::Native => (program.attach(port, AyaXdpMode::Driver), "native"),
            XdpMode::Generic => (program.attach(port, AyaXdpMode::Skb), "generic"),
            XdpMode::Auto => match program.attach(port, AyaXdpMode::Driver) {
                Ok(id) => (Ok(id), "native"),
                Err(e) => {
                    warn!("{port}: native XDP attach failed ({e}); falling back to generic mode");
                    (program.attach(port, AyaXdpMode::Skb), "generic")
                }
            },
        };
        let id = id.with_context(|| format!("attaching XDP to {port}"))?;
        let link = program.take_link(id)?;
        let fd = FdLink::try_from(link).with_context(|| {
            format!("{port}: the kernel gave a netlink XDP attachment, which cannot be pinned")
        })?;
        fd.pin(&pin)
            .with_context(|| format!("pinning the link of {port}"))?;
        info!("attached to {port} ({used} mode)");
        Ok(())
    }
}

impl Dataplane {
    /// The program id of the XDP_PASS link edged pinned for the peer of
    /// veth port `port`, if there is one.
    pub fn peer_pass(&self, port: &str) -> Option<u32> {
        let pin = peer_pin(&self.pin_dir, port);
        let link = PinnedLink::from_pin(&pin).ok()?;
        FdLink::from(link).info().ok().map(|i| i.program_id())
    }

    /// Attaches the object's XDP_PASS program in native mode to `peer`, the
    /// far end of veth port `port` (in its own namespace, if it has one), so
    /// that it receives what XDP redirects into `port`; pins the link next
    /// to the ports' (`peer_PORT`), so that it stays across restarts.
    /// [`Dataplane::detach_peer_passes`] and [`teardown`] remove it. The
    /// program id.
    pub fn attach_peer_pass(&mut self, port: &str, peer: &Peer) -> Result<u32> {
        let pin = peer_pin(&self.pin_dir, port);
        if pin.exists() {
            // A link whose peer went away (or lost it): start again.
            detach_pinned(&pin);
        }
        let program: &mut Xdp = self
            .ebpf
            .program_mut(prog_names::PASS)
            .context("program edge_pass missing from object")?
            .try_into()?;
        if program.fd().is_err() {
            program
                .load()
                .context("the verifier rejected the edge_pass program")?;
        }
        let id = peer
            .run(|| program.attach_to_if_index(peer.ifindex, AyaXdpMode::Driver))?
            .with_context(|| format!("attaching XDP_PASS to {}", peer.label()))?;
        let link = program.take_link(id)?;
        let fd = FdLink::try_from(link).with_context(|| {
            format!(
                "{}: the kernel gave a netlink XDP attachment, which cannot be pinned",
                peer.label()
            )
        })?;
        let prog = fd.info().map(|i| i.program_id()).unwrap_or(0);
        fd.pin(&pin)
            .with_context(|| format!("pinning the XDP_PASS link of {}", peer.label()))?;
        Ok(prog)
    }

    /// Detaches the XDP_PASS programs edged attached to the peers of veth
    /// ports not in `keep`.
    pub fn detach_peer_passes(&self, keep: &[&str]) {
        for (port, pin) in pinned(&self.pin_dir, "peer_") {
            if !keep.contains(&port.as_str()) {
                detach_pinned(&pin);
                info!("{port}: detached the XDP_PASS program edged attached to its peer");
            }
        }
    }
}

/// (interface, pin path) of every port link pinned under `dir`.
fn pinned_links(dir: &Path) -> Vec<(String, PathBuf)> {
    pinned(dir, "link_")
}

/// Where the XDP_PASS link edged attached to the peer of veth port
/// `interface` is pinned (`--veth-peer-pass`).
fn peer_pin(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("peer_{}", interface.replace('.', ":")))
}

/// (port, pin path) of every pinned link named `PREFIX<port>` under `dir`.
fn pinned(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name.strip_prefix(prefix)?.replace(':', "."), e.path()))
        })
        .collect()
}

/// Unpins a link; with its last reference gone the kernel detaches it.
fn detach_pinned(pin: &Path) {
    match PinnedLink::from_pin(pin) {
        Ok(link) => {
            if let Err(e) = link.unpin() {
                warn!("unpinning {}: {e}", pin.display());
            }
        }
        Err(e) => {
            warn!("opening {}: {e}; removing it", pin.display());
            let _ = fs::remove_file(pin);
        }
    }
}

/// Removes the forwarder pinned under `dir`: detaches every pinned link,
/// removes the map pins and the directory. What is not there is skipped.
pub fn teardown(dir: &Path) {
    for (interface, pin) in pinned_links(dir) {
        detach_pinned(&pin);
        info!("detached from {interface}");
    }
    for (port, pin) in pinned(dir, "peer_") {
        detach_pinned(&pin);
        info!("detached the XDP_PASS program from the peer of {port}");
    }
    for name in map_names::ALL {
        let path = dir.join(name);
        if path.exists()
            && let Err(e) = fs::remove_file(&path)
        {
            warn!("removing {}: {e}", path.display());
        }
    }
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A pin path not on a bpffs is refused before anything changes there
    /// (issue 15): its mode stays, nothing is created under it.
    #[test]
    fn a_pin_path_not_on_bpffs_is_refused_unchanged() {
        let dir = std::env::temp_dir().join(format!("edge-notbpf-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let e = format!("{:#}", ensure_bpffs(&dir).unwrap_err());
        assert!(
            e.contains(&format!(
                "pin path {} is not on a bpf filesystem",
                dir.display()
            )) && e.contains("nothing was created or changed"),
            "{e}"
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o755, "the refused directory's mode changed");
        // A missing directory under it is not created.
        let below = dir.join("edge");
        assert!(ensure_bpffs(&below).is_err());
        assert!(!below.exists(), "created under a refused path");
        fs::remove_dir_all(&dir).unwrap();
    }
}
