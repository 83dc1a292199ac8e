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
use crate::plan::{Limits, XdpMode};

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
/// nothing is mounted there yet.
pub fn ensure_bpffs(dir: &Path) -> Result<()> {
    let is_bpffs = |p: &Path| {
        nix::sys::statfs::statfs(p)
            .map(|s| s.filesystem_type().0 == libc::BPF_FS_MAGIC)
            .unwrap_or(false)
    };
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root) {
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
    fs::create_dir_all(dir).with_context(|| format!("creating pin directory {}", dir.display()))?;
    // Pinned maps and links are root's only.
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    if !is_bpffs(dir) {
        bail!("pin path {} is not on a bpf filesystem", dir.display());
    }
    Ok(())
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

/// (interface, pin path) of every link pinned under `dir`.
fn pinned_links(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name.strip_prefix("link_")?.replace(':', "."), e.path()))
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
