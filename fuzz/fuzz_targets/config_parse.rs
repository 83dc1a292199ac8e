//! `config::parse` on any text: never panics; a rejected config names at
//! least one problem and every line it names is inside the text; an
//! accepted one is a consistent plan.
#![no_main]

use edge_fuzz::{check_plan, check_problems};
use edge_userspace::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text) {
        Ok(plan) => check_plan(&plan),
        Err(invalid) => check_problems(text, &invalid),
    }
});
