// The eBPF program lives in `main.rs` (the `edge` binary built for the bpf
// target by aya-build). This library target only exists so that
// edge-userspace can name edge-ebpf as a build dependency and be rebuilt
// when it changes.
#![no_std]
