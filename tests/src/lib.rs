//! Test harness shared by the packet and topology tests and the `edge-lab`
//! demo: namespace labs, the standard edge topology, frame builders.

pub mod bird;
pub mod frames;
pub mod fuzzgen;
pub mod netns;
pub mod reference;
pub mod three_pops;
pub mod topology;
