//! The `[daemon]` keys that say how a reload reads the config file
//! (`reload_settle_ms`, `reload_max_shrink_percent`). They concern reading
//! the file rather than what it registers, so they are checked here, next
//! to the reading, and handed to the plan after validation.

use std::time::Duration;

use toml::Spanned;

use super::{Problem, schema, validate::line_of};
use crate::plan::ReloadGuard;

/// The reload guard the `[daemon]` table asks for, and its problems.
pub(super) fn guard(daemon: &schema::Daemon, text: &str) -> (ReloadGuard, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut value = |v: &Option<Spanned<i64>>, key: &str, max: u64, default: u64| match v {
        None => default,
        Some(v) if (0..=max as i64).contains(v.get_ref()) => *v.get_ref() as u64,
        Some(v) => {
            problems.push(Problem {
                // Spans past the file's end (none here) would be live changes.
                line: (v.span().start <= text.len()).then(|| line_of(text, v.span().start)),
                message: format!("[daemon] {key} {} is outside 0-{max}", v.get_ref()),
                map_full: false,
            });
            default
        }
    };
    let settle = value(
        &daemon.reload_settle_ms,
        "reload_settle_ms",
        ReloadGuard::MAX_SETTLE_MS,
        ReloadGuard::DEFAULT_SETTLE_MS,
    );
    let shrink = value(
        &daemon.reload_max_shrink_percent,
        "reload_max_shrink_percent",
        100,
        u64::from(ReloadGuard::DEFAULT_MAX_SHRINK_PERCENT),
    );
    (
        ReloadGuard {
            settle: Duration::from_millis(settle),
            max_shrink_percent: shrink as u32,
        },
        problems,
    )
}
