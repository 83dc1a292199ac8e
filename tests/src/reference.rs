//! Test and benchmark helpers built on the library's public API: they take
//! shortcuts the daemon never takes (a plan written as if the maps were
//! fresh).

use anyhow::Result;
use edge_userspace::{
    dataplane::maps::Tables,
    desired::{apply, compile, dump, state::State},
    plan::Plan,
    policy::{Choices, PopView},
};

/// Writes a whole plan into `tables` as if they were fresh (ids in config
/// order, no live changes, nothing drained): for tests and benchmarks that
/// load the object themselves.
pub fn write_plan(tables: &mut Tables, plan: &Plan) -> Result<()> {
    let current = dump(tables)?;
    let c = compile(
        plan,
        &State::default(),
        &current,
        &|_| PopView::UP,
        &Choices::default(),
    )?;
    apply(tables, None, &current, &c.desired)?;
    Ok(())
}
