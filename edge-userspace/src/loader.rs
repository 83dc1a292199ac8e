//! Loads the eBPF object, pins its maps, attaches the forwarder to the ports
//! and writes a validated config into the maps.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{Xdp, XdpMode as AyaXdpMode, xdp::XdpLinkId},
};
use edge_common::{POP_F_VALID, Pop, PrefixEntry, map_names, prog_names};
use log::{info, warn};

use crate::{
    config::{Plan, XdpMode},
    maps::{Counters, Tables},
    netdev,
};

/// The eBPF object built by aya-build (see build.rs).
pub fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/edge"))
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
    if !is_bpffs(dir) {
        bail!("pin path {} is not on a bpf filesystem", dir.display());
    }
    Ok(())
}

/// A loaded, attached forwarder with pinned maps. Dropping it detaches the
/// program; [`Dataplane::stop`] also removes the pins.
pub struct Dataplane {
    ebpf: Ebpf,
    pub tables: Tables,
    pub counters: Counters,
    pin_dir: PathBuf,
    links: Vec<(String, XdpLinkId)>,
}

impl Dataplane {
    /// Loads and verifies the program, pins the maps under the plan's pin
    /// path, attaches to every port and writes the plan into the maps.
    pub fn start(plan: &Plan) -> Result<Self> {
        let pin_dir = plan.pin_path.clone();
        ensure_bpffs(&pin_dir)?;
        let mut ebpf = load()?;
        for name in map_names::ALL {
            let path = pin_dir.join(name);
            if path.exists() {
                warn!("replacing stale pin {}", path.display());
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
            let map = ebpf
                .map(name)
                .with_context(|| format!("map {name} missing from object"))?;
            map.pin(&path)
                .with_context(|| format!("pinning {}", path.display()))?;
        }
        let program: &mut Xdp = ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge missing from object")?
            .try_into()?;
        program
            .load()
            .context("the verifier rejected the edge program")?;

        let tables = Tables::take(&mut ebpf)?;
        let counters = Counters::take(&mut ebpf)?;
        let mut dp = Self {
            ebpf,
            tables,
            counters,
            pin_dir,
            links: Vec::new(),
        };
        dp.apply(plan)?;
        for (port, _role) in &plan.ports {
            dp.attach(port, plan.xdp_mode)?;
        }
        Ok(dp)
    }

    fn attach(&mut self, port: &str, mode: XdpMode) -> Result<()> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(prog_names::EDGE)
            .context("program edge")?
            .try_into()?;
        let (link, used) = match mode {
            XdpMode::Native => (program.attach(port, AyaXdpMode::Driver), "native"),
            XdpMode::Generic => (program.attach(port, AyaXdpMode::Skb), "generic"),
            XdpMode::Auto => match program.attach(port, AyaXdpMode::Driver) {
                Ok(link) => (Ok(link), "native"),
                Err(e) => {
                    warn!("{port}: native XDP attach failed ({e}); falling back to generic mode");
                    (program.attach(port, AyaXdpMode::Skb), "generic")
                }
            },
        };
        let link = link.with_context(|| format!("attaching XDP to {port}"))?;
        info!("attached to {port} ({used} mode)");
        self.links.push((port.to_string(), link));
        Ok(())
    }

    /// Writes PoPs, transmit ports and prefixes. Interface facts (ifindex,
    /// MAC) are read here, in the daemon's network namespace.
    pub fn apply(&mut self, plan: &Plan) -> Result<()> {
        for (port, _) in &plan.ports {
            let ifindex = netdev::ifindex(port)?;
            self.tables.add_tx_port(ifindex)?;
        }
        for (id, pop) in plan.pops.iter().enumerate() {
            let entry = Pop {
                ifindex: netdev::ifindex(&pop.interface)?,
                flags: POP_F_VALID,
                src_mac: netdev::mac(&pop.interface)?,
                dst_mac: pop.mac,
                _pad: [0; 4],
            };
            self.tables.set_pop(id as u32, entry)?;
        }
        for &(net, pop) in &plan.prefixes {
            self.tables
                .set_prefix(net, PrefixEntry { pop, _reserved: 0 })?;
        }
        info!(
            "applied {} ports, {} PoPs, {} prefixes",
            plan.ports.len(),
            plan.pops.len(),
            plan.prefixes.len()
        );
        Ok(())
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Detaches the program from every port and removes the pins.
    pub fn stop(self) -> Result<()> {
        let Self {
            ebpf,
            pin_dir,
            links,
            ..
        } = self;
        drop(links);
        drop(ebpf);
        for name in map_names::ALL {
            let path = pin_dir.join(name);
            if path.exists() {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        // Only removes the directory if nothing else was pinned there.
        let _ = fs::remove_dir(&pin_dir);
        info!("detached and unpinned {}", pin_dir.display());
        Ok(())
    }
}
