//! edge userspace: everything `edged` (the daemon) and `edgectl` (the
//! operator CLI) share, as layers. Each layer imports only the layers listed
//! above it here (a test in this file fails otherwise):
//!
//! | layer | purpose |
//! |---|---|
//! | [`plan`] | the validated model every layer speaks (no TOML, no maps) |
//! | [`policy`] | routing methods and table layout: plan + PoP health → selection tables (pure) |
//! | [`latency`] | customer latency: histograms, report windows, objective watch (pure) |
//! | [`config`] | the TOML schema, parsing and validation, producing a plan |
//! | [`health`] | probes, the health state machine, the per-PoP runner |
//! | [`host`] | the host through netlink: routes, neighbours, interfaces |
//! | [`analytics`] | route analytics: BMP sessions, the view of who announces the registered prefixes, hijack and leak detection |
//! | [`dataplane`] | the kernel program: loader, typed map owners, DIR-24-8, batch syscalls, counters, ring buffer |
//! | [`desired`] | plan → desired map contents (compile), diff and apply with undo behind [`desired::MapWriter`], the state file |
//! | [`metrics`] | the Prometheus endpoint |
//! | [`control`] | the control socket and its typed, versioned protocol |
//! | [`daemon`] | edged: lifecycle, change pipeline, failover, request handling |
//!
//! See docs/architecture.md for two walks through the layers.

pub mod analytics;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod desired;
pub mod health;
pub mod host;
pub mod latency;
pub mod metrics;
pub mod plan;
pub mod policy;

/// The layers, lowest first (the order of the module list above).
#[cfg(test)]
const LAYERS: [&str; 12] = [
    "plan",
    "policy",
    "latency",
    "config",
    "health",
    "host",
    "analytics",
    "dataplane",
    "desired",
    "metrics",
    "control",
    "daemon",
];

#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    use super::LAYERS;

    /// The files of a layer: `src/LAYER.rs`, or every file below `src/LAYER/`
    /// except unit-test files (tests may build fixtures with a higher layer,
    /// say a plan parsed from TOML: only the code the layer ships counts).
    fn files(path: &Path) -> Vec<PathBuf> {
        if !path.is_dir() {
            return vec![path.with_extension("rs")];
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if !p.ends_with("tests.rs") && p.extension().is_some_and(|e| e == "rs") {
                // Rust files only (a layer may hold test data, such as a
                // captured BMP session).
                out.push(p);
            }
        }
        out
    }

    /// The layers `text` names as `crate::LAYER…` or as an item of a
    /// `use crate::{…}` group, outside its inline `mod tests`.
    fn named(text: &str) -> Vec<&'static str> {
        let text = &text[..text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len())];
        let mut out = Vec::new();
        for rest in text.split("crate::").skip(1) {
            // `crate::{a, b::c}`: every item of the group; `crate::a::b`: `a`.
            let items: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find("};").unwrap_or(group.len())]
                    .split([',', '{', '\n'])
                    .collect(),
                None => vec![rest],
            };
            for item in items {
                let first = item
                    .trim()
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next();
                if let Some(layer) = LAYERS.iter().find(|l| first == Some(**l))
                    && !out.contains(layer)
                {
                    out.push(*layer);
                }
            }
        }
        out
    }

    /// Imports point down the layers: a module of layer N names only
    /// layers below N.
    #[test]
    fn imports_point_down_the_layers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for (rank, layer) in LAYERS.iter().enumerate() {
            let layer_files = files(&src.join(layer));
            assert!(
                layer_files.iter().all(|f| f.is_file()),
                "layer {layer} has no module"
            );
            for file in layer_files {
                let text = std::fs::read_to_string(&file).unwrap();
                for used in named(&text) {
                    if LAYERS.iter().position(|l| *l == used).unwrap() > rank {
                        bad.push(format!(
                            "{} ({layer}) imports {used} (a higher layer)",
                            file.display()
                        ));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "imports pointing up:\n{}", bad.join("\n"));
    }

    /// The check sees each way of naming a layer, and not a name that
    /// only starts like one, nor what an inline test module uses.
    #[test]
    fn the_check_sees_every_way_of_naming_a_layer() {
        let text = "use crate::{\n    desired::View,\n    plan::Plan,\n    policy as p,\n};\nfn f() { crate::daemon::x(); }\nuse crate::host;\nconst X: &str = \"crate::planet\";\n#[cfg(test)]\nmod tests {\n    use crate::control;\n}\n";
        let mut seen = named(text);
        seen.sort();
        assert_eq!(seen, ["daemon", "desired", "host", "plan", "policy"]);
    }
}
