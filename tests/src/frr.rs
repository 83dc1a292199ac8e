//! FRR bgpd instances for the route analytics tests: Debian's `frr`
//! package, one bgpd per test namespace with its own config, vty socket
//! directory and pid file (no zebra, nothing installed in the kernel; the
//! `bmp` module loaded), stopped on drop.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::netns::netns_command;

/// Where Debian's frr package puts bgpd (not on PATH).
pub const BGPD: &str = "/usr/lib/frr/bgpd";

pub struct Frr {
    child: Child,
    name: String,
    dir: PathBuf,
}

impl Frr {
    /// Starts bgpd in `ns` with `config` (files in a directory named
    /// `name` under the temp dir) and waits until vtysh reaches it.
    pub fn start(ns: &str, name: &str, config: &str) -> Self {
        assert!(
            Path::new(BGPD).is_file(),
            "{BGPD} is missing: `cargo xtask setup` installs the Debian package frr"
        );
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("bgpd.conf");
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(dir.join("bgpd.log")).unwrap();
        let child = netns_command(ns, Path::new(BGPD))
            // Stay root (-S), no zebra (-Z), no kernel routes (-n), no vty
            // TCP port (-P 0), the BMP module.
            .args(["-S", "-Z", "-n", "-P", "0", "-M", "bmp", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bgpd (xtask setup installs the Debian package frr)");
        let mut f = Frr {
            child,
            name: name.to_string(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while f.vtysh(&["show version"]).is_err() {
            if let Ok(Some(status)) = f.child.try_wait() {
                panic!("bgpd {name} exited ({status}): {}", f.log());
            }
            assert!(
                Instant::now() < deadline,
                "bgpd {name} did not start: {}",
                f.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    /// bgpd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bgpd.log")).unwrap_or_default()
    }

    /// Runs vtysh commands (each a `-c`) against this bgpd.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket").arg(&self.dir);
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Config mode: `conf t`, then `commands`; panics if vtysh fails.
    pub fn configure(&self, commands: &[&str]) {
        let mut all = vec!["configure terminal"];
        all.extend_from_slice(commands);
        self.vtysh(&all)
            .unwrap_or_else(|e| panic!("vtysh on {}: {commands:?}: {e}", self.name));
    }

    /// Waits until every BGP session is Established (bounded).
    pub fn wait_established(&self, sessions: usize, limit: Duration) -> Duration {
        let t = Instant::now();
        loop {
            let out = self.vtysh(&["show bgp summary json"]).unwrap_or_default();
            let up = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| {
                    v["ipv4Unicast"]["peers"]
                        .as_object()
                        .map(|p| p.values().filter(|s| s["state"] == "Established").count())
                })
                .unwrap_or(0);
            if up >= sessions {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < limit,
                "bgpd {}: {up} of {sessions} BGP sessions established after {limit:?}:\n{out}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
