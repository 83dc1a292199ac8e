//! `cargo xtask setup`: installs what is missing, idempotently (toolchains and components, bpf-linker, cargo tools, Debian packages).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result};

use crate::cargo::{output, run_checked, workspace_root};

pub fn setup() -> Result<()> {
    let started = Instant::now();
    let nightly = nightly()?;
    components()?;
    bpf_linker(&nightly)?;
    nextest()?;
    cargo_fuzz()?;
    debian_packages()?;
    eprintln!(
        "xtask setup: ready ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The installed nightly: its sysroot and LLVM major version.
struct Nightly {
    sysroot: PathBuf,
    version: String,
    llvm_major: String,
}

fn nightly() -> Result<Nightly> {
    let vv = match output("rustc", &["+nightly", "-vV"]) {
        Some(vv) => vv,
        None => {
            eprintln!("xtask setup: installing the nightly toolchain");
            run_checked(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]))?;
            output("rustc", &["+nightly", "-vV"]).context("rustc +nightly -vV")?
        }
    };
    let field = |key: &str| {
        vv.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("`rustc +nightly -vV` has no {key}"))
    };
    let llvm = field("LLVM version:")?;
    let version = field("release:")?;
    let llvm_major = llvm.split('.').next().unwrap_or_default().to_string();
    let sysroot =
        output("rustc", &["+nightly", "--print", "sysroot"]).context("nightly sysroot")?;
    Ok(Nightly {
        sysroot: PathBuf::from(sysroot.trim()),
        version,
        llvm_major,
    })
}

/// Components each toolchain needs: the nightly builds the eBPF object
/// (rust-src for build-std) and lints it; the toolchain that builds the
/// workspace lints and formats it.
const COMPONENTS: [(Toolchain, &[&str]); 2] = [
    (Toolchain::Workspace, &["clippy", "rustfmt"]),
    (Toolchain::Nightly, &["rust-src", "clippy", "rustfmt"]),
];

#[derive(Clone, Copy)]
enum Toolchain {
    /// The toolchain rustup picks at the workspace root (stable).
    Workspace,
    Nightly,
}

fn components() -> Result<()> {
    for (toolchain, wanted) in COMPONENTS {
        let name = match toolchain {
            Toolchain::Nightly => "nightly".to_string(),
            Toolchain::Workspace => workspace_toolchain()?,
        };
        let installed = output(
            "rustup",
            &["component", "list", "--toolchain", &name, "--installed"],
        )
        .unwrap_or_default();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| !installed.lines().any(|l| l.starts_with(c)))
            .collect();
        if missing.is_empty() {
            continue;
        }
        eprintln!("xtask setup: adding {} to {name}", missing.join(" "));
        run_checked(
            Command::new("rustup")
                .args(["component", "add", "--toolchain", &name])
                .args(&missing),
        )?;
    }
    Ok(())
}

/// The name of the toolchain rustup uses at the workspace root.
fn workspace_toolchain() -> Result<String> {
    let out = Command::new("rustup")
        .args(["show", "active-toolchain"])
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .context("running rustup show active-toolchain")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .filter(|_| out.status.success())
        .map(str::to_string)
        .context("`rustup show active-toolchain` names no toolchain")
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo")
        })
}

/// bpf-linker 0.13 built against the nightly's own libLLVM (no system LLVM):
/// a prefix whose lib/ links to the nightly's libLLVM, kept under
/// CARGO_HOME because the installed binary loads libLLVM from there.
fn bpf_linker(nightly: &Nightly) -> Result<()> {
    const VERSION: &str = "0.13.0";
    let feature = format!("llvm-{}", nightly.llvm_major);
    let record = std::fs::read_to_string(cargo_home().join(".crates2.json")).unwrap_or_default();
    let entry = record.split("\"bpf-linker ").nth(1).unwrap_or_default();
    let built_for_this_llvm = entry.starts_with(VERSION) && {
        let entry = entry.split("},").next().unwrap_or_default();
        entry.contains(&format!("\"{feature}\""))
    };
    if built_for_this_llvm && output("bpf-linker", &["--version"]).is_some() {
        return Ok(());
    }

    let lib = nightly.sysroot.join("lib");
    let libllvm = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.starts_with(&format!("libLLVM.so.{}.", nightly.llvm_major)) && n.contains("-rust-")
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.{}.* in {}",
                nightly.llvm_major,
                lib.display()
            )
        })?;
    let prefix = cargo_home().join("edge-llvm").join(&nightly.version);
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    for name in ["libLLVM.so", libllvm.as_str()] {
        let link = prefix_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&libllvm), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask setup: building bpf-linker {VERSION} against the nightly's LLVM {} (about a minute)",
        nightly.llvm_major
    );
    let install = |locked: bool| {
        let mut cmd = Command::new("cargo");
        cmd.args([
            "install",
            "bpf-linker",
            "--force",
            "--version",
            VERSION,
            "--no-default-features",
            "--features",
            &feature,
        ]);
        if locked {
            cmd.arg("--locked");
        }
        cmd.env("LLVM_PREFIX", &prefix);
        run_checked(&mut cmd)
    };
    install(true).or_else(|e| {
        eprintln!("xtask setup: locked install failed ({e:#}); retrying without --locked");
        install(false)
    })?;
    output("bpf-linker", &["--version"]).context("bpf-linker installed but does not run")?;
    Ok(())
}

fn nextest() -> Result<()> {
    if output("cargo", &["nextest", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-nextest");
    run_checked(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))
}

fn cargo_fuzz() -> Result<()> {
    if output("cargo", &["fuzz", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-fuzz");
    run_checked(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// Tools the tests and the lab call, and the Debian package of each.
const DEBIAN: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ethtool", "ethtool"),
    ("setpriv", "util-linux"),
    ("promtool", "prometheus"),
    ("bird", "bird2"),
    // The customer latency tests check each customer answers through the
    // edge before they time anything.
    ("ping", "iputils-ping"),
    // The route analytics test: FRR's bgpd streams BMP (its bmp module,
    // `bgpd -M bmp`, is in the frr package). bgpd is not on PATH.
    ("/usr/lib/frr/bgpd", "frr"),
    // The package tests: build and install it, verify the unit, render the
    // man pages.
    ("dpkg-deb", "dpkg"),
    ("systemd-analyze", "systemd"),
    ("man", "man-db"),
    ("strip", "binutils"),
];

fn debian_packages() -> Result<()> {
    let on_path = |tool: &str| {
        if tool.starts_with('/') {
            return Path::new(tool).is_file();
        }
        env::var_os("PATH")
            .map(|p| env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).is_file())
    };
    let missing: Vec<&str> = DEBIAN
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing Debian packages: {}",
        missing.join(" ")
    );
    run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
