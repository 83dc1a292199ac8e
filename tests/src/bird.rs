//! BIRD 2 instances for route-sync tests: a real BGP daemon in a test
//! namespace, with its own control socket, stopped on drop.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::netns::netns_command;

pub struct Bird {
    child: Child,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Bird {
    /// Starts `bird -f` in `ns` with `config` (files in a directory named
    /// `name` under the temp dir) and waits until its socket answers.
    pub fn start(ns: &str, name: &str, config: &str) -> Self {
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (conf, socket, log) = (
            dir.join("bird.conf"),
            dir.join("bird.ctl"),
            dir.join("bird.log"),
        );
        std::fs::write(&conf, config.replace("LOGFILE", &log.display().to_string())).unwrap();
        let child = netns_command(ns, Path::new("bird"))
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bird (xtask setup installs the Debian package bird2)");
        let mut b = Bird {
            child,
            config: conf,
            socket,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.cmd(&["show", "status"]).is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("bird {name} exited ({status}); see its messages above");
            }
            assert!(Instant::now() < deadline, "bird {name} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    /// Runs a birdc command; its output.
    pub fn cmd(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !text.contains("Unable to connect") {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Writes a new config and makes bird apply it (`configure`).
    pub fn reconfigure(&self, config: &str) {
        std::fs::write(
            &self.config,
            config.replace("LOGFILE", &self.log.display().to_string()),
        )
        .unwrap();
        let out = self.cmd(&["configure"]).expect("birdc configure");
        assert!(out.contains("Reconfigured"), "birdc configure: {out}");
    }

    /// Waits until protocol `name` is Established (bounded).
    pub fn wait_established(&self, name: &str, limit: Duration) -> Duration {
        let t = Instant::now();
        loop {
            let out = self.cmd(&["show", "protocols", name]).unwrap_or_default();
            if out.contains("Established") {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < limit,
                "BGP session {name} not established after {limit:?}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
