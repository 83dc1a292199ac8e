//! Loads the eBPF object with its maps and links pinned, so that the data
//! plane outlives the daemon, and removes it all on teardown.
//!
//! A restart never changes the running forwarder until it is sure to
//! complete: maps it must replace are created under staged names
//! (`next_NAME`) beside the running ones and renamed into place only at the
//! end ([`Dataplane::commit_maps`]); the new program replaces the old one on
//! each pinned link with `bpf_link_update`, remembering the old program so
//! that [`Attached::rollback`] can put it back; links attached anew are
//! pinned under staged names too where a pin is in the way.

use std::{
    fs,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, RingBuf},
    programs::{
        Xdp, XdpMode as AyaXdpMode,
        links::{FdLink, PinnedLink},
    },
};
use edge_common::{map_names, prog_names};
use log::{error, info, warn};

use super::maps::{Counters, Tables};
use crate::{
    host::veth::{self, Peer},
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

/// Pin names beginning with this are a restart's new maps and links, not
/// yet in place (`next_EDGE_PORTS`, `next_link_eth0`).
const STAGED: &str = "next_";

/// Where a restart pins what replaces `name` until it completes.
fn staged_pin(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{STAGED}{name}"))
}

/// The loaded forwarder: program verified, maps pinned under the pin path
/// (reused from an earlier run when compatible, so their contents and the
/// traffic survive a daemon restart), links pinned too. Dropping it leaves
/// the data plane running; [`teardown`] removes it.
pub struct Dataplane {
    ebpf: Ebpf,
    pub tables: Tables,
    pub counters: Counters,
    /// Customer latency: the RTT histograms, counters and flow table.
    pub latency: super::latency::Latency,
    /// Customer latency's coarse clock, for edged to keep ticking
    /// (`Clock::spawn`); taken by whoever ticks it.
    pub clock: Option<super::latency::Clock>,
    /// Protection events; the daemon takes it for its reader thread.
    pub events: Option<RingBuf<MapData>>,
    pin_dir: PathBuf,
    /// Nothing was pinned: a first start (a failure removes everything).
    pub fresh: bool,
    /// Every pinned map was reused: a restart over the running maps.
    pub resumed: bool,
    /// A restart that replaces the maps: a complete new set is pinned under
    /// staged names until [`Dataplane::commit_maps`].
    pub staged: bool,
}

const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// What the object expects of a map: (type, key size, value size, max
/// entries, flags).
fn expected_maps(limits: Limits) -> Result<Vec<(&'static str, [u32; 5])>> {
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
                map_names::FIB6_NODES => edge_common::limits::fib6_nodes(limits.prefixes_v6),
                map_names::FIB6_TAILS => edge_common::limits::fib6_tails(limits.prefixes_v6),
                map_names::RTT_FLOWS => limits.rtt_flows,
                map_names::RTT_HIST => limits.rtt_buckets,
                _ => m.max_entries(),
            };
            Ok((
                name,
                [
                    m.map_type(),
                    m.key_size(),
                    m.value_size(),
                    max,
                    m.map_flags(),
                ],
            ))
        })
        .collect()
}

impl Dataplane {
    /// Loads and verifies the program with its maps pinned under `pin_dir`.
    /// When every pinned map has the shape this build wants, they are all
    /// reused with their contents ([`Dataplane::resumed`]). When one does
    /// not (an upgrade that changed it, other `[limits]`) or is missing, a
    /// complete new set is created beside the pinned ones, under staged
    /// names ([`Dataplane::staged`]): nothing the running program reads is
    /// written until the program is swapped, and a restart that fails
    /// leaves the running maps alone. Nothing is attached yet.
    pub fn load(pin_dir: &Path, limits: Limits) -> Result<Self> {
        ensure_bpffs(pin_dir)?;
        remove_leftovers(pin_dir);
        let expected = expected_maps(limits)?;
        let mut present = 0;
        let mut differ = Vec::new();
        for (name, want) in &expected {
            let path = pin_dir.join(name);
            if !path.exists() {
                differ.push(format!("{name}: not pinned"));
                continue;
            }
            present += 1;
            // The kernel adds BPF_F_RDONLY_PROG to device maps' flags.
            let have = aya::maps::MapInfo::from_pin(&path).map(|i| {
                [
                    i.map_type().map_or(u32::MAX, |t| t as u32),
                    i.key_size(),
                    i.value_size(),
                    i.max_entries(),
                    i.map_flags() & !BPF_F_RDONLY_PROG,
                ]
            });
            match have {
                Ok(have) if have == *want => {}
                Ok(have) => differ.push(format!(
                    "{name}: type, key, value, entries, flags {have:?}, this build {want:?}"
                )),
                Err(e) => differ.push(format!("{name}: {e}")),
            }
        }
        let fresh = present == 0 && pinned_links(pin_dir).is_empty();
        let resumed = !fresh && differ.is_empty();
        let staged = !fresh && !differ.is_empty();
        if staged {
            warn!(
                "the maps pinned under {} do not all match this build ({}): a complete new set is created beside them ({STAGED}*), filled, and put in their place once the restart has completed (their contents and counters start anew); until then, and if the restart fails, the running forwarder keeps its own",
                pin_dir.display(),
                differ.join("; ")
            );
        }
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(map_names::PREFIX_V4, limits.prefixes_v4)
            .map_max_entries(map_names::PREFIX_V6, limits.prefixes_v6)
            .map_max_entries(
                map_names::FIB6_NODES,
                edge_common::limits::fib6_nodes(limits.prefixes_v6),
            )
            .map_max_entries(
                map_names::FIB6_TAILS,
                edge_common::limits::fib6_tails(limits.prefixes_v6),
            )
            .map_max_entries(map_names::RTT_FLOWS, limits.rtt_flows)
            .map_max_entries(map_names::RTT_HIST, limits.rtt_buckets);
        let paths: Vec<(&str, PathBuf)> = map_names::ALL
            .iter()
            .map(|&n| {
                (
                    n,
                    if staged {
                        staged_pin(pin_dir, n)
                    } else {
                        pin_dir.join(n)
                    },
                )
            })
            .collect();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let loaded = (|| -> Result<_> {
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
            let latency = super::latency::Latency::take(&mut ebpf)?;
            let clock = super::latency::Clock::take(&mut ebpf)?;
            let events = ebpf
                .take_map(map_names::EVENTS)
                .context("map EDGE_EVENTS missing from object")
                .and_then(|m| RingBuf::try_from(m).context("EDGE_EVENTS is not a ring buffer"))?;
            Ok((ebpf, tables, counters, latency, clock, events))
        })();
        let (ebpf, tables, counters, latency, clock, events) = match loaded {
            Ok(l) => l,
            Err(e) => {
                if fresh {
                    teardown(pin_dir);
                } else if staged {
                    remove_staged(pin_dir);
                }
                return Err(e);
            }
        };
        if resumed {
            info!("reusing the maps pinned under {}", pin_dir.display());
        }
        Ok(Self {
            ebpf,
            tables,
            counters,
            latency,
            clock: Some(clock),
            events: Some(events),
            pin_dir: pin_dir.to_path_buf(),
            fresh,
            resumed,
            staged,
        })
    }

    /// Undoes a load whose start failed: a first start's pins all go
    /// ([`teardown`]); a restart's staged maps go, and the running
    /// forwarder's pins stay as they were.
    pub fn discard(self) {
        let dir = self.pin_dir.clone();
        let fresh = self.fresh;
        drop(self);
        if fresh {
            teardown(&dir);
        } else if remove_staged(&dir) > 0 {
            info!(
                "removed the new maps this restart made under {} ({STAGED}*)",
                dir.display()
            );
        }
    }

    /// Puts a restart's new maps in place of the old ones (renamed over
    /// their pins): the last step of a restart, once the program runs with
    /// them everywhere and the state is recorded.
    pub fn commit_maps(&mut self) -> Result<()> {
        if !self.staged {
            return Ok(());
        }
        let mut failed = Vec::new();
        for name in map_names::ALL {
            let (from, to) = (staged_pin(&self.pin_dir, name), self.pin_dir.join(name));
            if let Err(e) = fs::rename(&from, &to) {
                failed.push(format!(
                    "renaming {} onto {}: {e}",
                    from.display(),
                    to.display()
                ));
            }
        }
        self.staged = false;
        if !failed.is_empty() {
            bail!(
                "{}; the program runs with the new maps, but these pins still name the old ones: restart edged to rebuild them",
                failed.join("; ")
            );
        }
        info!("the new maps are in place under {}", self.pin_dir.display());
        Ok(())
    }

    /// The id of the loaded edge program.
    fn program_id(&mut self) -> Result<u32> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge")?
            .try_into()?;
        Ok(program.info()?.id())
    }

    /// Attaches the program to every interface in `ports` and pins the
    /// links. Where a pinned link exists (a restart or an upgrade) the new
    /// program replaces the old one atomically (`bpf_link_update`): no packet
    /// sees a port without a program; a link that already runs this program
    /// is left alone. Links of interfaces not in `ports` are not touched
    /// ([`Dataplane::detach_others`]). On failure, what it did is undone
    /// and the error returned; on success, what it did, to be committed
    /// ([`Attached::commit`]) or undone ([`Attached::rollback`]).
    pub fn attach_ports(&mut self, ports: &[&str], mode: XdpMode) -> Result<Attached> {
        let mut done = Attached::default();
        for port in ports {
            if let Err(e) = self.attach_port(port, mode, &mut done) {
                done.rollback();
                return Err(e);
            }
        }
        Ok(done)
    }

    fn attach_port(&mut self, port: &str, mode: XdpMode, done: &mut Attached) -> Result<()> {
        let pin = link_pin(&self.pin_dir, port);
        let ours = self.program_id()?;
        if !pin.exists() {
            self.take_over_renamed(port, &pin);
        } else if let Ok(ifindex) = crate::host::netdev::ifindex(port) {
            // The interface was deleted and created again: its old link is
            // defunct (on no interface) and the new one runs nothing yet.
            let on = obj_get(&pin).and_then(|fd| xdp_link_ifindex(fd.as_fd()));
            if matches!(on, Ok(i) if i != ifindex) {
                info!("{port}: its pinned link is on a gone interface; attaching anew");
                detach_pinned(&pin);
            }
        }
        let program: &mut Xdp = self
            .ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge")?
            .try_into()?;
        let mut at = pin.clone();
        if pin.exists() {
            let replaced = (|| -> Result<Option<OwnedFd>> {
                let link = PinnedLink::from_pin(&pin)?;
                let running = FdLink::from(link).info()?.program_id();
                if running == ours {
                    return Ok(None);
                }
                let old = prog_fd_by_id(running)
                    .with_context(|| format!("opening the running program {running}"))?;
                let link = obj_get(&pin)?;
                link_update(link.as_fd(), program.fd()?.as_fd(), Some(old.as_fd()))?;
                Ok(Some(old))
            })();
            match replaced {
                Ok(None) => return Ok(()),
                Ok(Some(old)) => {
                    info!("{port}: replaced the program on the pinned link");
                    warn_mode(port, mode);
                    done.replaced.push((port.to_string(), pin, old));
                    return Ok(());
                }
                Err(e) => {
                    // Pinned anew beside it; the pin is replaced once the
                    // start or change completes.
                    warn!("{port}: pinned link unusable ({e:#}); attaching anew");
                    at = staged_pin(&self.pin_dir, &format!("link_{}", port.replace('.', ":")));
                    if at.exists() {
                        detach_pinned(&at);
                    }
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
        fd.pin(&at)
            .with_context(|| format!("pinning the link of {port} at {}", at.display()))?;
        info!("attached to {port} ({used} mode)");
        done.new.push((port.to_string(), at, pin));
        Ok(())
    }

    /// When `port` was renamed from another port's name, its link is
    /// pinned under the old name and still attached (a second attach would
    /// fail EBUSY): renames that pin to `pin`, where the port's link
    /// belongs.
    fn take_over_renamed(&self, port: &str, pin: &Path) {
        let Ok(ifindex) = crate::host::netdev::ifindex(port) else {
            return;
        };
        for (old, at) in pinned_links(&self.pin_dir) {
            if old == port {
                continue;
            }
            let on = obj_get(&at).and_then(|fd| xdp_link_ifindex(fd.as_fd()));
            if matches!(on, Ok(i) if i == ifindex) {
                match fs::rename(&at, pin) {
                    Ok(()) => info!(
                        "{port}: took over the XDP link pinned for {old} (the interface was renamed {old} -> {port})"
                    ),
                    Err(e) => warn!(
                        "{port}: renaming the link pin {} to {}: {e}",
                        at.display(),
                        pin.display()
                    ),
                }
                return;
            }
        }
    }

    /// Detaches the pinned links of interfaces not in `ports` (no longer
    /// ports).
    pub fn detach_others(&self, ports: &[&str]) {
        for (interface, pin) in pinned_links(&self.pin_dir) {
            if !ports.contains(&interface.as_str()) {
                detach_pinned(&pin);
                info!("detached from {interface} (no longer a port)");
            }
        }
    }

    /// Whether `port` runs this program through its pinned link: `None`
    /// when it does, else what is wrong (the pin gone, the link no longer
    /// on the interface), for the log and `edgectl status`.
    pub fn check_link(&self, port: &str) -> Result<Option<String>> {
        let pin = link_pin(&self.pin_dir, port);
        if !pin.exists() {
            return Ok(Some(format!(
                "its link pin {} is gone, and XDP with it",
                pin.display()
            )));
        }
        let link =
            PinnedLink::from_pin(&pin).with_context(|| format!("opening {}", pin.display()))?;
        let prog = FdLink::from(link)
            .info()
            .with_context(|| format!("reading the link pinned at {}", pin.display()))?
            .program_id();
        let on = veth::xdp_of(port)?;
        Ok(match on {
            veth::Xdp::Native(id) | veth::Xdp::Generic(id) | veth::Xdp::Offload(id)
                if id == prog =>
            {
                None
            }
            other => Some(format!(
                "the link pinned at {} no longer runs on it (XDP on {port}: {})",
                pin.display(),
                other.word()
            )),
        })
    }

    /// Attaches the program to `port` anew and pins the link (its pin was
    /// deleted, or the interface lost the link): the program id.
    pub fn repair_link(&mut self, port: &str, mode: XdpMode) -> Result<u32> {
        let pin = link_pin(&self.pin_dir, port);
        if pin.exists() {
            detach_pinned(&pin);
        }
        let mut done = Attached::default();
        self.attach_port(port, mode, &mut done)?;
        done.commit();
        self.program_id()
    }
}

/// Warns when `port` runs XDP in another mode than the config asks: an
/// attached port keeps its mode when the program is replaced.
fn warn_mode(port: &str, mode: XdpMode) {
    let have = match veth::xdp_of(port) {
        Ok(veth::Xdp::Native(_)) => "native",
        Ok(veth::Xdp::Generic(_)) => "generic",
        _ => return,
    };
    let want = match mode {
        XdpMode::Native => "native",
        XdpMode::Generic => "generic",
        XdpMode::Auto => return,
    };
    if have != want {
        warn!(
            "{port}: XDP runs in {have} mode, the config asks {want}: a port keeps its mode while its pinned link lasts (remove the port from the config and reload, then add it again; or edgectl teardown and start)"
        );
    }
}

/// What [`Dataplane::attach_ports`] did, to commit or undo.
#[derive(Default)]
#[must_use = "commit or roll back what was attached"]
pub struct Attached {
    /// Links whose program was replaced: (port, pin, the program it ran).
    replaced: Vec<(String, PathBuf, OwnedFd)>,
    /// Links attached anew: (port, where pinned, where it belongs).
    new: Vec<(String, PathBuf, PathBuf)>,
}

impl Attached {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.replaced.is_empty() && self.new.is_empty()
    }

    /// Puts the links pinned under staged names in place.
    pub fn commit(self) {
        for (port, at, pin) in self.new {
            if at != pin
                && let Err(e) = fs::rename(&at, &pin)
            {
                error!(
                    "{port}: renaming {} onto {}: {e}; the link stays pinned at {}",
                    at.display(),
                    pin.display(),
                    at.display()
                );
            }
        }
    }

    /// Undoes it all: each replaced link runs its old program again, links
    /// attached anew are detached.
    pub fn rollback(self) {
        for (port, pin, old) in self.replaced.into_iter().rev() {
            match obj_get(&pin).and_then(|l| link_update(l.as_fd(), old.as_fd(), None)) {
                Ok(()) => info!("{port}: the pinned link runs its old program again"),
                Err(e) => error!(
                    "{port}: putting the old program back on the link pinned at {}: {e:#}",
                    pin.display()
                ),
            }
        }
        for (port, at, _) in self.new.into_iter().rev() {
            detach_pinned(&at);
            info!("{port}: detached again");
        }
    }
}

/// The `bpf(2)` commands the loader needs that aya does not offer on a
/// pinned link: open a pin, open a program by id, update a link.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid `bpf_attr` prefix for `cmd`, of its size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_TYPE_XDP: u32 = 6;
const BPF_F_REPLACE: u32 = 4;

fn fd_of(r: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel returned a new file descriptor, ours alone.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Opens a pinned object (`BPF_OBJ_GET`).
fn obj_get(path: &Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt as _;
    #[repr(C)]
    struct Attr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let attr = Attr {
        pathname: c.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    bpf(BPF_OBJ_GET, &attr)
        .map(fd_of)
        .with_context(|| format!("opening {}", path.display()))
}

/// The interface an XDP link is attached to (`BPF_OBJ_GET_INFO_BY_FD`;
/// aya's `LinkInfo` does not expose it): 0 once the interface is gone.
fn xdp_link_ifindex(link: BorrowedFd) -> Result<u32> {
    #[repr(C)]
    struct Attr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    // struct bpf_link_info: type, id, prog_id, then (8-aligned, at byte
    // 16) the union whose `xdp.ifindex` is the first u32.
    let mut info = [0u64; 4];
    let attr = Attr {
        bpf_fd: link.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &attr).context("bpf_obj_get_info_by_fd (link)")?;
    let type_ = info[0] as u32;
    if type_ != BPF_LINK_TYPE_XDP {
        bail!("link of type {type_}, not XDP");
    }
    Ok(info[2] as u32)
}

/// A program by id (`BPF_PROG_GET_FD_BY_ID`): holding it keeps it loaded.
fn prog_fd_by_id(id: u32) -> Result<OwnedFd> {
    #[repr(C)]
    struct Attr {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let attr = Attr {
        id,
        next_id: 0,
        open_flags: 0,
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &attr)
        .map(fd_of)
        .with_context(|| format!("opening program {id}"))
}

/// Makes `link` run `program` (`BPF_LINK_UPDATE`), only if it still runs
/// `expected` when given.
fn link_update(link: BorrowedFd, program: BorrowedFd, expected: Option<BorrowedFd>) -> Result<()> {
    #[repr(C)]
    struct Attr {
        link_fd: u32,
        new_prog_fd: u32,
        flags: u32,
        old_prog_fd: u32,
    }
    let attr = Attr {
        link_fd: link.as_raw_fd() as u32,
        new_prog_fd: program.as_raw_fd() as u32,
        flags: if expected.is_some() { BPF_F_REPLACE } else { 0 },
        old_prog_fd: expected.map_or(0, |e| e.as_raw_fd() as u32),
    };
    bpf(BPF_LINK_UPDATE, &attr)
        .map(|_| ())
        .context("bpf_link_update")
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

/// Removes what a restart that did not complete (a crash) left under
/// staged names: new maps, links attached anew.
fn remove_leftovers(dir: &Path) {
    let n = remove_staged(dir);
    if n > 0 {
        warn!(
            "removed {n} pins under {} that a restart which did not complete left ({STAGED}*)",
            dir.display()
        );
    }
}

/// Removes every pin under a staged name (links are detached); how many.
fn remove_staged(dir: &Path) -> usize {
    let mut n = 0;
    for (name, pin) in pinned(dir, STAGED) {
        if name.starts_with("link_") || name.starts_with("peer_") {
            detach_pinned(&pin);
        } else if let Err(e) = fs::remove_file(&pin) {
            warn!("removing {}: {e}", pin.display());
            continue;
        }
        n += 1;
    }
    n
}

/// Removes the forwarder pinned under `dir`: detaches every pinned link,
/// removes the map pins and the directory. What is not there is skipped.
pub fn teardown(dir: &Path) {
    remove_leftovers(dir);
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
