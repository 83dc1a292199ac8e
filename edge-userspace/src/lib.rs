//! edge userspace: everything `edged` (the daemon) and `edgectl` (the
//! operator CLI) share, as layers. Each layer imports only the layers listed
//! above it here (a test in this file fails otherwise):
//!
//! | layer | purpose |
//! |---|---|
//! | [`plan`] | the validated model every layer speaks (no TOML, no maps) |
//! | [`policy`] | routing methods and table layout: plan + PoP health → selection tables (pure) |
//! | [`config`] | the TOML schema, parsing and validation, producing a plan |
//! | [`health`] | probes, the health state machine, the per-PoP runner |
//! | [`host`] | the host through netlink: routes, neighbours, interfaces |
//! | [`dataplane`] | the kernel program: loader, typed map owners, DIR-24-8, batch syscalls, counters, ring buffer |
//! | [`desired`] | plan → desired map contents (compile), diff and apply with undo behind [`desired::MapWriter`], the state file |
//! | [`metrics`] | the Prometheus endpoint |
//! | [`control`] | the control socket and its typed, versioned protocol |
//! | [`daemon`] | edged: lifecycle, change pipeline, failover, request handling |
//!
//! See docs/architecture.md for two walks through the layers.

pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod desired;
pub mod health;
pub mod host;
pub mod metrics;
pub mod plan;
pub mod policy;

/// The layers, lowest first (the order of the module list above).
#[cfg(test)]
const LAYERS: [&str; 10] = [
    "plan",
    "policy",
    "config",
    "health",
    "host",
    "dataplane",
    "desired",
    "metrics",
    "control",
    "daemon",
];

#[cfg(test)]
mod layering {
    use std::path::Path;

    use super::LAYERS;

    /// Every `crate::LAYER` path in the files of `dir`, recursively.
    fn uses(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                uses(&path, out);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may build their fixtures with a higher layer (a
            // plan parsed from TOML): only the code the layer ships counts.
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(end) => &text[..end],
                None => &text,
            };
            if path.ends_with("tests.rs") {
                continue;
            }
            for layer in LAYERS {
                for pat in [format!("crate::{layer}"), format!("crate::{{{layer}")] {
                    if text.contains(&pat) {
                        out.push((path.display().to_string(), layer.to_string()));
                    }
                }
            }
            // `use crate::{a, b::c}` groups: every layer named at the start of a group item.
            for group in text.split("use crate::{").skip(1) {
                let body = &group[..group.find("};").unwrap_or(group.len())];
                for layer in LAYERS {
                    let named = body.split([',', '{', '\n']).any(|item| {
                        let item = item.trim();
                        item == layer || item.starts_with(&format!("{layer}::"))
                    });
                    if named {
                        out.push((path.display().to_string(), layer.to_string()));
                    }
                }
            }
        }
    }

    /// Imports point down the layers: a module of layer N names only
    /// layers below N.
    #[test]
    fn imports_point_down_the_layers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for (rank, layer) in LAYERS.iter().enumerate() {
            let dir = src.join(layer);
            let mut found = Vec::new();
            if dir.is_dir() {
                uses(&dir, &mut found);
            } else {
                let file = src.join(format!("{layer}.rs"));
                assert!(file.is_file(), "layer {layer} has no module");
                let tmp = std::env::temp_dir().join(format!("edge-layer-{layer}"));
                std::fs::create_dir_all(&tmp).unwrap();
                std::fs::copy(&file, tmp.join("mod.rs")).unwrap();
                uses(&tmp, &mut found);
                for f in &mut found {
                    f.0 = file.display().to_string();
                }
            }
            for (file, used) in found {
                let used_rank = LAYERS.iter().position(|l| *l == used).unwrap();
                if used_rank > rank {
                    bad.push(format!("{file} ({layer}) imports {used} (a higher layer)"));
                }
            }
        }
        assert!(bad.is_empty(), "imports pointing up:\n{}", bad.join("\n"));
    }

    /// The check itself sees an upward import.
    #[test]
    fn the_check_sees_an_upward_import() {
        let tmp = std::env::temp_dir().join("edge-layer-selftest");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("mod.rs"), "use crate::{\n    desired::View,\n    plan::Plan,\n};\nfn f() { crate::daemon::x(); }\n").unwrap();
        let mut found = Vec::new();
        uses(&tmp, &mut found);
        let layers: Vec<_> = found.iter().map(|f| f.1.as_str()).collect();
        for l in ["desired", "plan", "daemon"] {
            assert!(layers.contains(&l), "{l} not seen in {layers:?}");
        }
    }
}
