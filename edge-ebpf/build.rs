fn main() {
    // bpf-linker is a runtime tool of this build: make cargo rebuild when it changes.
    if let Ok(path) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
