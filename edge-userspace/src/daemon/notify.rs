//! Service-manager notifications (sd_notify(3)) for `Type=notify`: READY
//! once edged forwards, RELOADING/READY around every reload, STOPPING on
//! exit, and STATUS lines for `systemctl status`. Each is a no-op when
//! `NOTIFY_SOCKET` is unset (edged not started by systemd); a failed send
//! is logged, never fatal: forwarding does not depend on the supervisor.

use log::warn;
use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        warn!("sd_notify {states:?}: {e}");
    }
}

/// edged forwards and answers on its control socket.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts. `MONOTONIC_USEC` goes with it, as systemd 253 and
/// later require of `RELOADING=1` (older ones ignore it).
pub fn reloading(status: &str) {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status(status)];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// A reload ended (applied or rejected: edged keeps running either way).
pub fn reloaded(status: &str) {
    ready(status);
}

/// edged is exiting.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}
