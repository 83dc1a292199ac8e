//! The control socket between edgectl and edged: a Unix stream socket,
//! root only (file mode 0600 and the peer's credentials checked), one JSON
//! request per line and one JSON reply per line. Requests are bounded in
//! size and rate; a malformed one gets an error reply, never a crash.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::IpAddr,
    os::unix::{fs::PermissionsExt as _, net::UnixStream as StdUnixStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::IpNet;
use log::{debug, warn};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, mpsc, oneshot},
};

use crate::config::PrefixSpec;

/// Longest request line accepted (bytes).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Connections served at once; more wait.
pub const MAX_CONNECTIONS: usize = 16;
/// Requests per second per connection (a burst of this many, then paced).
pub const REQUESTS_PER_SECOND: u32 = 200;
/// An idle connection is closed after this long.
pub const IDLE: Duration = Duration::from_secs(60);

/// What edgectl asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status {},
    Stats {
        #[serde(default)]
        prefix: Option<IpNet>,
    },
    PrefixAdd {
        spec: PrefixSpec,
    },
    PrefixDel {
        prefix: IpNet,
    },
    PrefixList {},
    PrefixShow {
        prefix: IpNet,
    },
    PrefixLookup {
        address: IpAddr,
    },
    PopList {},
    PopDrain {
        pop: String,
    },
    PopUndrain {
        pop: String,
    },
    PolicyList {},
    PolicyShow {
        policy: String,
    },
    /// The most recent `limit` events (protection, PoP state, fallback).
    Events {
        #[serde(default = "default_limit")]
        limit: usize,
    },
    /// RTT percentiles per PoP over the last `window_seconds`.
    ReportLatency {
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
    ConfigReload {},
    Teardown {},
}

fn default_limit() -> usize {
    50
}

fn default_window() -> u64 {
    300
}

/// What edged answers: `ok` with `data`, or an `error` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it failed, as a word scripts can test: `invalid`, `not_found`,
    /// `map_full`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            error: None,
            kind: None,
            data,
        }
    }

    pub fn error(kind: &str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            kind: Some(kind.into()),
            data: serde_json::Value::Null,
        }
    }
}

/// A request on its way to the daemon, with where the reply goes.
pub type Envelope = (Request, oneshot::Sender<Response>);

/// Decodes one request line.
pub fn decode(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))
}

/// Binds the socket (replacing a stale one), root-only.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if StdUnixStream::connect(path).is_ok() {
            bail!(
                "another edged is listening on {}; stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    Ok(listener)
}

/// Accepts connections forever, passing requests to `tx`.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Envelope>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let me = nix::unistd::geteuid().as_raw();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("control socket: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(stream, tx, me).await {
                debug!("control connection: {e:#}");
            }
        });
    }
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Envelope>, me: u32) -> Result<()> {
    let cred = stream.peer_cred().context("reading peer credentials")?;
    let (read, mut write) = stream.into_split();
    if cred.uid() != 0 && cred.uid() != me {
        let reply = Response::error(
            "denied",
            format!("uid {} may not control edged (root only)", cred.uid()),
        );
        write_reply(&mut write, &reply).await?;
        warn!(
            "control socket: refused uid {} (pid {:?})",
            cred.uid(),
            cred.pid()
        );
        return Ok(());
    }
    let mut reader = tokio::io::BufReader::new(read);
    let mut line = Vec::new();
    let mut window = Instant::now();
    let mut in_window = 0u32;
    loop {
        line.clear();
        let n = tokio::time::timeout(
            IDLE,
            (&mut reader)
                .take(MAX_REQUEST as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await
        .context("idle")??;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST {
            let reply = Response::error(
                "invalid",
                format!("request longer than {MAX_REQUEST} bytes"),
            );
            write_reply(&mut write, &reply).await?;
            return Ok(()); // the rest of the line cannot be trusted
        }
        // Rate: REQUESTS_PER_SECOND per one-second window, then wait.
        if window.elapsed() >= Duration::from_secs(1) {
            window = Instant::now();
            in_window = 0;
        }
        in_window += 1;
        if in_window > REQUESTS_PER_SECOND {
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(window.elapsed())).await;
            window = Instant::now();
            in_window = 1;
        }
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match decode(trimmed) {
            Err(e) => Response::error("invalid", e),
            Ok(request) => {
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx.send((request, reply_tx)).await.is_err() {
                    return Ok(()); // daemon stopping
                }
                reply_rx
                    .await
                    .unwrap_or_else(|_| Response::error("failed", "edged is stopping"))
            }
        };
        write_reply(&mut write, &reply).await?;
    }
}

async fn write_reply(write: &mut tokio::net::unix::OwnedWriteHalf, r: &Response) -> Result<()> {
    let mut bytes = serde_json::to_vec(r)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    Ok(())
}

/// Sends one request and waits for the reply (edgectl's side).
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response> {
    let mut stream = StdUnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to edged at {} (is it running? --socket sets the path)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut bytes = serde_json::to_vec(request)?;
    bytes.push(b'\n');
    // A refusal arrives before the request is read: a failed write still
    // leaves the reply to read.
    let written = stream.write_all(&bytes);
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .context("reading edged's reply")?;
    if line.is_empty() {
        written.context("sending the request")?;
        bail!("edged closed the connection without replying");
    }
    serde_json::from_str(&line).context("edged's reply is not valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_errors() {
        let r = Request::PrefixAdd {
            spec: PrefixSpec {
                prefix: "198.51.100.0/24".into(),
                pop: Some("ams".into()),
                ..PrefixSpec::default()
            },
        };
        let line = serde_json::to_vec(&r).unwrap();
        assert_eq!(decode(&line).unwrap(), r);
        assert_eq!(
            decode(br#"{"command":"pop_drain","pop":"ams"}"#).unwrap(),
            Request::PopDrain { pop: "ams".into() }
        );
        for bad in [
            &b"{"[..],
            b"null",
            b"{\"command\":\"rm_rf\"}",
            b"{\"command\":\"prefix_del\",\"prefix\":\"192.0.2.1/24x\"}",
            b"{\"command\":\"status\",\"extra\":1}",
            b"{\"command\":\"pop_drain\",\"pop\":\"a\",\"extra\":1}",
            b"\xff\xfe",
        ] {
            assert!(
                decode(bad).is_err(),
                "{:?} decoded",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode(&vec![b' '; MAX_REQUEST + 1]).is_err());
    }
}
