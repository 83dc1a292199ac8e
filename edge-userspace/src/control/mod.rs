//! The control socket between edgectl and edged: a Unix stream socket,
//! root only (file mode 0600 and the peer's credentials checked), one JSON
//! request per line and one JSON reply per line, both carrying the protocol
//! version ([`protocol`]'s types; docs/protocol.md). Requests are bounded in
//! size and rate; a malformed one gets an error reply, never a crash.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::{fs::PermissionsExt as _, net::UnixStream as StdUnixStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use log::{debug, warn};
use serde::de::DeserializeOwned;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, mpsc, oneshot},
};

pub mod protocol;

pub use protocol::*;

/// Connections served at once; more wait.
pub const MAX_CONNECTIONS: usize = 16;
/// Requests per second per connection (a burst of this many, then paced).
pub const REQUESTS_PER_SECOND: u32 = 200;
/// An idle connection is closed after this long.
pub const IDLE: Duration = Duration::from_secs(60);

/// A request on its way to the daemon, with where the reply goes.
pub type Envelope = (Request, oneshot::Sender<Response>);

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
            ErrorKind::Denied,
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
                ErrorKind::Invalid,
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
            Err(refused) => refused.into(),
            Ok(request) => {
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx.send((request, reply_tx)).await.is_err() {
                    return Ok(()); // daemon stopping
                }
                reply_rx
                    .await
                    .unwrap_or_else(|_| Response::error(ErrorKind::Failed, "edged is stopping"))
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

/// Sends one request and waits for the reply (edgectl's side); `T` is the
/// request's reply type (see [`Request`]).
pub fn call<T: DeserializeOwned>(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response<T>> {
    let mut stream = StdUnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to edged at {} (is it running? --socket sets the path)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut bytes = encode(request);
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
    decode_reply(&line)
}

#[cfg(test)]
mod tests;
