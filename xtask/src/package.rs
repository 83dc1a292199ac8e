//! `cargo xtask package`: a Debian package built with `dpkg-deb` from a
//! staging tree (nothing to install beyond dpkg itself):
//! `target/debian/edge_VERSION_ARCH.deb`. docs/packaging.md lists what it
//! holds and why.
//!
//! The man pages and completions come from the release binaries themselves
//! (`edged --man-pages DIR`, `edgectl --man-pages DIR`, `edgectl
//! completions SHELL`, all hidden but the last): xtask cannot link edge-userspace to
//! call clap_mangen on its `Command`s, because edge-userspace's build
//! script needs the eBPF toolchain that `cargo xtask setup` installs.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::cargo::{cargo, output, run_checked, target_dir, workspace_root};

/// The package's name.
const NAME: &str = "edge";

/// Builds the release binaries and the package; returns the .deb's path.
pub fn package() -> Result<PathBuf> {
    let version = env!("CARGO_PKG_VERSION");
    let arch = output("dpkg", &["--print-architecture"])
        .map(|a| a.trim().to_string())
        .context("`dpkg --print-architecture` failed: is dpkg installed?")?;
    run_checked(cargo().args([
        "build",
        "--release",
        "--package",
        "edge-userspace",
        "--bin",
        "edged",
        "--bin",
        "edgectl",
    ]))?;
    let release = target_dir().join("release");
    let out = target_dir().join("debian");
    let root = out.join(format!("{NAME}_{version}_{arch}"));
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let src = workspace_root();
    let stage = Stage { root: root.clone() };

    stage.binary(&release.join("edged"), "usr/sbin/edged")?;
    stage.binary(&release.join("edgectl"), "usr/bin/edgectl")?;
    stage.copy(
        &src.join("dist/edged.service"),
        "lib/systemd/system/edged.service",
        0o644,
    )?;
    stage.copy(&src.join("dist/edge.toml"), "etc/edge/edge.toml", 0o644)?;

    // Completions, where bash-completion, zsh and fish look for packaged ones.
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/edgectl"),
        ("zsh", "usr/share/zsh/vendor-completions/_edgectl"),
        ("fish", "usr/share/fish/vendor_completions.d/edgectl.fish"),
    ] {
        let script = Command::new(release.join("edgectl"))
            .args(["completions", shell])
            .output()
            .context("running edgectl completions")?;
        if !script.status.success() {
            bail!("edgectl completions {shell} failed");
        }
        stage.write(path, &script.stdout, 0o644)?;
    }

    // Man pages: edged.8, edgectl.1 and edgectl-SUBCOMMAND.1, gzipped.
    let pages = out.join("man");
    if pages.exists() {
        fs::remove_dir_all(&pages)?;
    }
    fs::create_dir_all(&pages)?;
    run_checked(
        Command::new(release.join("edged"))
            .arg("--man-pages")
            .arg(&pages),
    )?;
    run_checked(
        Command::new(release.join("edgectl"))
            .arg("--man-pages")
            .arg(&pages),
    )?;
    let mut names: Vec<String> = fs::read_dir(&pages)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let section = name.rsplit('.').next().unwrap_or("1");
        let text = fs::read(pages.join(name))?;
        stage.write(
            &format!("usr/share/man/man{section}/{name}.gz"),
            &gzip(&text)?,
            0o644,
        )?;
    }
    if !names.iter().any(|n| n == "edged.8") || !names.iter().any(|n| n == "edgectl.1") {
        bail!("the binaries wrote no edged.8 or edgectl.1 (wrote: {names:?})");
    }

    // Documentation.
    let doc = "usr/share/doc/edge";
    stage.copy(&src.join("README.md"), &format!("{doc}/README.md"), 0o644)?;
    stage.copy(
        &src.join("dist/copyright"),
        &format!("{doc}/copyright"),
        0o644,
    )?;
    stage.copy(
        &src.join("dist/grafana/edge.json"),
        &format!("{doc}/grafana/edge.json"),
        0o644,
    )?;
    let mut docs: Vec<PathBuf> = fs::read_dir(src.join("docs"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for d in docs {
        let name = d.file_name().context("doc name")?.to_string_lossy();
        stage.copy(&d, &format!("{doc}/docs/{name}"), 0o644)?;
    }

    // Control area.
    for script in ["postinst", "prerm", "postrm"] {
        stage.copy(
            &src.join("dist/debian").join(script),
            &format!("DEBIAN/{script}"),
            0o755,
        )?;
    }
    stage.write("DEBIAN/conffiles", b"/etc/edge/edge.toml\n", 0o644)?;
    stage.md5sums()?;
    let control = control(version, &arch, stage.installed_kib()?)?;
    stage.write("DEBIAN/control", control.as_bytes(), 0o644)?;

    let deb = out.join(format!("{NAME}_{version}_{arch}.deb"));
    let _ = fs::remove_file(&deb);
    run_checked(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb),
    )?;
    let size = fs::metadata(&deb)?.len();
    eprintln!(
        "xtask package: {} ({:.1} MiB)",
        deb.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(deb)
}

/// DEBIAN/control. libc6: at least the build machine's glibc (the binaries
/// may use any symbol it has); libgcc-s1: both link libgcc_s (unwinding);
/// iproute2: operators inspect XDP and routes with `ip`, as the docs do.
fn control(version: &str, arch: &str, installed_kib: u64) -> Result<String> {
    let libc = output("dpkg-query", &["-W", "-f=${Version}", "libc6"])
        .context("dpkg-query libc6: the build machine has no libc6 package")?;
    // 2.36-9+deb12u14 -> 2.36
    let libc = libc
        .trim()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(format!(
        "Package: {NAME}
Version: {version}
Architecture: {arch}
Maintainer: edge developers <edge@example.invalid>
Installed-Size: {installed_kib}
Depends: libc6 (>= {libc}), libgcc-s1, iproute2
Section: net
Priority: optional
Homepage: https://example.invalid/edge
Description: XDP edge forwarder with health-checked PoP selection
 edged loads an XDP program that forwards registered prefixes toward the
 PoP a policy picks (cold or hot potato, tunnels, health probes, failover)
 and keeps it pinned in bpffs: stopping or upgrading the daemon does not
 stop forwarding. edgectl is its operator CLI.
 .
 The package ships the systemd unit (not enabled), a sample configuration
 at /etc/edge/edge.toml, man pages, shell completions, a Grafana dashboard
 and the documentation under /usr/share/doc/edge.
"
    ))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    // No file name and mtime 0 in the header (like `gzip -9n`): the same
    // page gives the same bytes.
    let mut e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// The package's file tree.
struct Stage {
    root: PathBuf,
}

impl Stage {
    fn path(&self, rel: &str) -> Result<PathBuf> {
        let p = self.root.join(rel);
        // Every directory 0755, whatever the umask.
        let mut dir = p.parent().context("no parent")?.to_path_buf();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        while dir.starts_with(&self.root) {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
            if !dir.pop() {
                break;
            }
        }
        Ok(p)
    }

    fn write(&self, rel: &str, data: &[u8], mode: u32) -> Result<()> {
        let p = self.path(rel)?;
        fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    fn copy(&self, from: &Path, rel: &str, mode: u32) -> Result<()> {
        let data = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        self.write(rel, &data, mode)
    }

    /// A release binary, stripped of its symbol table (Debian ships
    /// stripped binaries; the eBPF object inside is data, untouched).
    fn binary(&self, from: &Path, rel: &str) -> Result<()> {
        self.copy(from, rel, 0o755)?;
        run_checked(
            Command::new("strip")
                .arg("--strip-unneeded")
                .arg(self.root.join(rel)),
        )
    }

    /// DEBIAN/md5sums: every file outside DEBIAN/.
    fn md5sums(&self) -> Result<()> {
        let mut files = Vec::new();
        walk(&self.root, &mut files)?;
        let mut rel: Vec<String> = files
            .iter()
            .filter_map(|f| f.strip_prefix(&self.root).ok())
            .filter(|f| !f.starts_with("DEBIAN"))
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        rel.sort();
        let out = Command::new("md5sum")
            .args(&rel)
            .current_dir(&self.root)
            .output()
            .context("running md5sum")?;
        if !out.status.success() {
            bail!("md5sum failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        self.write("DEBIAN/md5sums", &out.stdout, 0o644)
    }

    /// Installed-Size: the files outside DEBIAN/, in KiB, as dpkg-gencontrol
    /// counts them (each file rounded up to a KiB).
    fn installed_kib(&self) -> Result<u64> {
        let mut files = Vec::new();
        walk(&self.root, &mut files)?;
        let mut kib = 0;
        for f in files {
            if f.strip_prefix(&self.root)
                .is_ok_and(|r| r.starts_with("DEBIAN"))
            {
                continue;
            }
            kib += fs::metadata(&f)?.len().div_ceil(1024);
        }
        Ok(kib)
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, files)?;
        } else {
            files.push(p);
        }
    }
    Ok(())
}
