//! The change pipeline's random walk (`edge_userspace::daemon::walk`) with
//! its choices taken from the fuzzer's bytes, one byte per choice: live
//! adds, batches and dels (as deltas or through the whole pipeline),
//! reloads of other config texts (one invalid), map writes and state
//! records that fail. The walk checks after every step that maps, view
//! rows, counter slots and the recorded state agree with a whole compile,
//! that a failed change left everything as it was, and that a restart from
//! the recorded state writes nothing. At most 64 steps per input.
#![no_main]

use edge_userspace::daemon::walk::{Choose, Walk};
use libfuzzer_sys::fuzz_target;

/// The fuzzer's bytes as choices.
struct Bytes<'a>(&'a [u8]);

impl Choose for Bytes<'_> {
    fn below(&mut self, n: usize) -> Option<usize> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(usize::from(b) % n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut walk = Walk::new();
    let mut bytes = Bytes(data);
    for _ in 0..64 {
        if !walk.step(&mut bytes) {
            break;
        }
    }
});
