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
use edge_common::{
    DSCP_KEEP, NO_EXIT, Pop, PortEntry, PrefixEntry, Settings, default_action, map_names,
    pop_flags, preference, prog_names,
};
use log::{info, warn};

use crate::{
    config::{DefaultAction, Plan, Preference, XdpMode},
    maps::{Counters, Tables, prefix_slot},
    netdev, policy,
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
    ///
    /// On failure nothing is left behind: links are dropped (detached) and
    /// the pins removed.
    pub fn start(plan: &Plan) -> Result<Self> {
        ensure_bpffs(&plan.pin_path)?;
        Self::start_pinned(plan).inspect_err(|_| remove_pins(&plan.pin_path))
    }

    fn start_pinned(plan: &Plan) -> Result<Self> {
        let pin_dir = plan.pin_path.clone();
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
        for port in &plan.ports {
            dp.attach(&port.interface, plan.xdp_mode)?;
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

    /// Writes the plan into the maps. Interface facts (ifindex, MAC,
    /// addresses) are read here, in the daemon's network namespace.
    pub fn apply(&mut self, plan: &Plan) -> Result<()> {
        write_plan(&mut self.tables, plan)
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
        remove_pins(&pin_dir);
        info!("detached and unpinned {}", pin_dir.display());
        Ok(())
    }
}

/// Removes the map pins under `dir`, and `dir` itself if nothing else is
/// pinned there.
fn remove_pins(dir: &Path) {
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

/// Writes a whole plan into `tables`: settings, ports, PoPs, policy tables
/// (every member counted as up), this host's addresses, prefixes.
pub fn write_plan(tables: &mut Tables, plan: &Plan) -> Result<()> {
    tables.set_settings(Settings {
        default_action: match plan.default_action {
            DefaultAction::Pass => default_action::PASS,
            DefaultAction::Drop => default_action::DROP,
        },
        backbone_exit: plan.backbone_exit.unwrap_or(NO_EXIT),
        transit_exit: plan.transit_exit.unwrap_or(NO_EXIT),
        encap_ttl: plan.encap_ttl,
        _pad: [0; 3],
    })?;
    for (id, port) in plan.ports.iter().enumerate() {
        let ifindex = netdev::ifindex(&port.interface)?;
        tables.set_port(
            ifindex,
            PortEntry {
                role: port.role.code(),
                id: id as u32,
            },
        )?;
    }
    for (id, pop) in plan.pops.iter().enumerate() {
        let mut entry = Pop {
            ifindex: netdev::ifindex(&pop.interface)?,
            flags: pop_flags::VALID,
            src_mac: netdev::mac(&pop.interface)?,
            dst_mac: pop.mac,
            ..Pop::default()
        };
        if let Some((src, dst)) = pop.encap_ipv4 {
            entry.flags |= pop_flags::ENCAP_IPIP;
            entry.tunnel_src_v4 = src.octets();
            entry.tunnel_dst_v4 = dst.octets();
        }
        if let Some((src, dst)) = pop.encap_ipv6 {
            entry.flags |= pop_flags::ENCAP_IP6IP6;
            entry.tunnel_src_v6 = src.octets();
            entry.tunnel_dst_v6 = dst.octets();
        }
        tables.set_pop(id as u32, entry)?;
    }
    for (id, p) in plan.policies.iter().enumerate() {
        tables.set_policy(id as u32, &policy::table(p.method, &p.members, |_| true))?;
    }
    for addr in netdev::local_addresses()? {
        tables.add_local(addr)?;
    }
    for (i, p) in plan.prefixes.iter().enumerate() {
        let entry = PrefixEntry {
            allowed_ports: p.protect.iter().fold(0u64, |m, &id| m | (1 << id)),
            slot: prefix_slot(i),
            policy: p.policy.unwrap_or(0),
            preference: match p.preference {
                Preference::Microsoft => preference::MICROSOFT,
                Preference::Internet => preference::INTERNET,
            },
            dscp: p.dscp.unwrap_or(DSCP_KEEP),
            _pad: [0; 6],
        };
        tables.set_prefix(p.net, entry)?;
    }
    info!(
        "applied {} ports, {} PoPs, {} policies, {} prefixes",
        plan.ports.len(),
        plan.pops.len(),
        plan.policies.len(),
        plan.prefixes.len()
    );
    Ok(())
}
