//! Builds the eBPF object with aya-build (nightly + rust-src + bpf-linker, all
//! installed by `cargo xtask setup`) and leaves it in OUT_DIR for
//! `include_bytes_aligned!`.
use std::path::Path;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let root = Path::new(&manifest).join("../edge-ebpf");
    let root = root
        .canonicalize()
        .with_context(|| format!("{} not found", root.display()))?;
    let root = root.to_str().context("edge-ebpf path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "edge-ebpf", root_dir: root, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF object failed: run `cargo xtask setup` (nightly rust-src and bpf-linker)")
}
