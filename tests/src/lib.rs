//! Test harness shared by the tests and the `edge-lab`, `edge-bench` and
//! `edge-reliability` binaries: namespace labs, the standard edge topology,
//! frame builders, the eBPF object under BPF_PROG_TEST_RUN, BIRD and FRR
//! instances, a delay line.

pub mod bird;
pub mod delayline;
pub mod expect;
pub mod frames;
pub mod frr;
pub mod fuzzgen;
pub mod harness;
pub mod netns;
pub mod reference;
pub mod three_pops;
pub mod topology;
pub mod vlan_lab;
