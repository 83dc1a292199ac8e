//! The shell completions shipped in dist/completions are what edgectl
//! generates now (regenerate with `edgectl completions SHELL`).

#[test]
fn shipped_completions_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgectl"))
            .args(["completions", shell])
            .output()
            .expect("run edgectl");
        assert!(out.status.success());
        let shipped = std::fs::read(dir.join(format!("edgectl.{shell}")))
            .unwrap_or_else(|e| panic!("dist/completions/edgectl.{shell}: {e}"));
        assert!(
            shipped == out.stdout,
            "dist/completions/edgectl.{shell} is stale: run `edgectl completions {shell} > dist/completions/edgectl.{shell}`"
        );
    }
}
