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
/// Connections waiting for a slot at once; a connection beyond these is
/// told at once that the socket is at its limit.
pub const MAX_WAITING: usize = 16;
/// How long a connection waits for a slot before it is told that the
/// socket is at its limit (reply kind `busy`) and closed.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);
/// Requests per second per connection (a burst of this many, then paced).
pub const REQUESTS_PER_SECOND: u32 = 200;
/// An idle connection is closed after this long.
pub const IDLE: Duration = Duration::from_secs(60);

/// A request on its way to the daemon, who sent it, and where the reply
/// goes.
pub type Envelope = (Request, Caller, oneshot::Sender<Response>);

/// Who sent a request: the peer's credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Caller {
    /// The user, for the record of live changes: `root (uid 0)`, or
    /// `uid 1001` when the user has no name.
    pub fn name(&self) -> String {
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid)) {
            Ok(Some(u)) => format!("{} (uid {})", u.name, self.uid),
            _ => format!("uid {}", self.uid),
        }
    }
}

/// The group whose members may use the read-only commands: its number.
pub type Readers = Option<u32>;

/// Binds the socket (replacing a stale one): root only (0600), or with
/// `read_group` (a group name or number) 0660 owned by that group, whose
/// members may then send read-only requests ([`Request::reads_only`]).
pub fn bind(path: &Path, read_group: Option<&str>) -> Result<(UnixListener, Readers)> {
    let readers = read_group.map(group_id).transpose()?;
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
    if let Some(gid) = readers {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .with_context(|| format!("chgrp {gid} {}", path.display()))?;
    }
    let mode = if readers.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok((listener, readers))
}

/// A group's number, from its name or the number itself.
fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => bail!(
            "[daemon] read_group: no group named {group:?} on this host (create it: groupadd --system {group})"
        ),
        Err(e) => bail!("[daemon] read_group: looking up group {group:?}: {e}"),
    }
}

/// Whether the process `pid` (the peer) is in group `gid`: its effective
/// group or one of its supplementary groups (`/proc/PID/status`, as the
/// peer credentials carry only the primary group).
fn in_group(pid: Option<i32>, primary: u32, gid: u32) -> bool {
    if primary == gid {
        return true;
    }
    let Some(pid) = pid else { return false };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|g| g.split_whitespace().any(|x| x.parse() == Ok(gid)))
        })
        .unwrap_or(false)
}

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// root, or edged's own user: everything.
    Full,
    /// A member of `read_group`: read-only requests.
    Read,
}

/// Accepts connections forever, passing requests to `tx`. At most
/// [`MAX_CONNECTIONS`] are served at once; up to [`MAX_WAITING`] more wait
/// [`SLOT_WAIT`] for a slot; any other is answered with a `busy` error
/// saying so, and closed.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Envelope>, readers: Readers) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    let me = nix::unistd::geteuid().as_raw();
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_default();
    let busy = Arc::new(busy_reply(&path));
    let refusals = Arc::new(Refusals::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("control socket: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = connection(stream, tx, me, readers).await {
                    debug!("control connection: {e:#}");
                }
            });
            continue;
        }
        let Ok(wait) = waiting.clone().try_acquire_owned() else {
            // No room even to wait: say so without blocking (a new
            // socket's buffer takes the line), then close.
            let _ = stream.try_write(&busy);
            refusals.note();
            continue;
        };
        let (slots, busy, refusals) = (slots.clone(), busy.clone(), refusals.clone());
        tokio::spawn(async move {
            let slot = tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await;
            drop(wait);
            match slot {
                Ok(Ok(permit)) => {
                    let _permit = permit;
                    if let Err(e) = connection(stream, tx, me, readers).await {
                        debug!("control connection: {e:#}");
                    }
                }
                _ => {
                    refusals.note();
                    let mut stream = stream;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), stream.write_all(&busy)).await;
                }
            }
        });
    }
}

/// The reply to a connection the socket has no room for, as a line.
fn busy_reply(path: &Path) -> Vec<u8> {
    let reply: Response = Response::error(
        ErrorKind::Busy,
        format!(
            "edged's control socket {} is at its connection limit: it serves {MAX_CONNECTIONS} connections at once, and all {MAX_CONNECTIONS} are taken (other clients hold them; an idle one is closed after {} s). Try again in a moment, or find the holders: ss -xp | grep {}",
            path.display(),
            IDLE.as_secs(),
            path.display(),
        ),
    );
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Connections refused for want of a slot, logged at most every 10 s.
#[derive(Default)]
struct Refusals {
    count: std::sync::atomic::AtomicU64,
    logged: std::sync::Mutex<Option<Instant>>,
}

impl Refusals {
    fn note(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.count.fetch_add(1, Relaxed);
        let mut logged = self.logged.lock().expect("refusals lock");
        if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *logged = Some(Instant::now());
            warn!(
                "control socket: at its limit of {MAX_CONNECTIONS} connections: {} refused (busy) since the last report",
                self.count.swap(0, Relaxed)
            );
        }
    }
}

async fn connection(
    stream: UnixStream,
    tx: mpsc::Sender<Envelope>,
    me: u32,
    readers: Readers,
) -> Result<()> {
    let cred = stream.peer_cred().context("reading peer credentials")?;
    let caller = Caller {
        uid: cred.uid(),
        pid: cred.pid(),
    };
    let (read, mut write) = stream.into_split();
    let access = if cred.uid() == 0 || cred.uid() == me {
        Some(Access::Full)
    } else {
        readers
            .filter(|&g| in_group(cred.pid(), cred.gid(), g))
            .map(|_| Access::Read)
    };
    let Some(access) = access else {
        let who = match readers {
            Some(g) => format!("root and members of group {g} (read-only)"),
            None => "root only".into(),
        };
        let reply = Response::error(
            ErrorKind::Denied,
            format!("uid {} may not control edged ({who})", cred.uid()),
        );
        write_reply(&mut write, &reply).await?;
        warn!(
            "control socket: refused uid {} (pid {})",
            cred.uid(),
            cred.pid()
                .map_or_else(|| "unknown".into(), |p| p.to_string())
        );
        return Ok(());
    };
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
            Ok(request) if access == Access::Read && !request.reads_only() => {
                warn!(
                    "control socket: refused {} from uid {} (pid {}): read-only access",
                    request.command(),
                    cred.uid(),
                    cred.pid()
                        .map_or_else(|| "unknown".into(), |p| p.to_string())
                );
                let denied = Response::error(
                    ErrorKind::Denied,
                    format!(
                        "uid {} has read-only access (group {}): {} changes edged and needs root",
                        cred.uid(),
                        readers.unwrap_or_default(),
                        request.command()
                    ),
                );
                if matches!(request, Request::PrefixBatch { .. }) {
                    // Its items follow on the connection, unread: close.
                    write_reply(&mut write, &denied).await?;
                    return Ok(());
                }
                denied
            }
            Ok(Request::PrefixBatch { count, .. }) => {
                let items = match batch_items(&mut reader, count).await? {
                    Ok(items) => items,
                    Err(refused) => {
                        // The rest of the batch cannot be trusted.
                        write_reply(&mut write, &refused.into()).await?;
                        return Ok(());
                    }
                };
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx
                    .send((Request::PrefixBatch { count, items }, caller, reply_tx))
                    .await
                    .is_err()
                {
                    return Ok(()); // daemon stopping
                }
                reply_rx
                    .await
                    .unwrap_or_else(|_| Response::error(ErrorKind::Failed, "edged is stopping"))
            }
            Ok(request) => {
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx.send((request, caller, reply_tx)).await.is_err() {
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

/// The `count` item lines after a `prefix_batch` request; `Ok(Err)`: the
/// refusal to send back (too many, too long, malformed).
async fn batch_items<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    count: usize,
) -> Result<Result<Vec<BatchItem>, Refused>> {
    if count > MAX_BATCH {
        return Ok(Err(Refused {
            kind: ErrorKind::Invalid,
            message: format!("a batch of {count} items: at most {MAX_BATCH}"),
        }));
    }
    let mut items = Vec::with_capacity(count.min(1 << 16));
    let mut line = Vec::new();
    for i in 1..=count {
        line.clear();
        let n = tokio::time::timeout(
            IDLE,
            (&mut *reader)
                .take(MAX_REQUEST as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await
        .context("idle in a batch")??;
        let refuse = |message: String| {
            Ok(Err(Refused {
                kind: ErrorKind::Invalid,
                message,
            }))
        };
        if n == 0 {
            return refuse(format!("the batch ended after {} of {count} items", i - 1));
        }
        if line.len() > MAX_REQUEST {
            return refuse(format!("batch item {i}: longer than {MAX_REQUEST} bytes"));
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        match serde_json::from_slice::<BatchItem>(text) {
            Ok(item) => items.push(item),
            Err(e) => return refuse(format!("batch item {i}: malformed: {e}")),
        }
    }
    Ok(Ok(items))
}

async fn write_reply(write: &mut tokio::net::unix::OwnedWriteHalf, r: &Response) -> Result<()> {
    if let Some(Reply::PrefixRows(rows)) = &r.data {
        // A big list goes out in pieces, encoded as they go: the same
        // bytes as the whole reply, without the whole reply in memory.
        let head = serde_json::to_vec(&Response::<()> {
            data: None,
            ..Response::ok(())
        })?;
        let head = head
            .strip_suffix(b"\"data\":null}")
            .context("the reply envelope ends with data")?;
        write.write_all(head).await?;
        write.write_all(b"\"data\":").await?;
        for piece in rows.pieces(1 << 20) {
            write.write_all(&piece).await?;
        }
        write.write_all(b"}\n").await?;
        return Ok(());
    }
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
    call_with(socket, request, &[], timeout)
}

/// Sends a `prefix_batch` of `items` and waits for the reply.
pub fn call_batch<T: DeserializeOwned>(
    socket: &Path,
    items: &[BatchItem],
    timeout: Duration,
) -> Result<Response<T>> {
    let request = Request::PrefixBatch {
        count: items.len(),
        items: Vec::new(),
    };
    call_with(socket, &request, items, timeout)
}

/// Sends `request` and the lines of `items` after it.
fn call_with<T: DeserializeOwned>(
    socket: &Path,
    request: &Request,
    items: &[BatchItem],
    timeout: Duration,
) -> Result<Response<T>> {
    decode_reply(&call_line(socket, request, items, timeout)?)
}

/// Sends `request` (and the lines of `items` after it): edged's reply line,
/// for [`decode_reply`] (a big reply decoded borrowing from it).
pub fn call_line(
    socket: &Path,
    request: &Request,
    items: &[BatchItem],
    timeout: Duration,
) -> Result<String> {
    let (stream, written) = send(socket, request, items, timeout)?;
    let mut line = String::new();
    if let Err(e) = BufReader::new(&stream).read_line(&mut line) {
        return Err(read_error(e, timeout));
    }
    if line.is_empty() {
        written.context("sending the request")?;
        bail!("edged closed the connection without replying");
    }
    Ok(line)
}

/// Connects to edged and sends `request` (and the batch `items` after it);
/// the connection, to read the reply from, and whether the request was
/// written whole (a refusal arrives before the request is read: a failed
/// write still leaves the reply to read).
pub fn send(
    socket: &Path,
    request: &Request,
    items: &[BatchItem],
    timeout: Duration,
) -> Result<(StdUnixStream, std::io::Result<()>)> {
    let mut stream = StdUnixStream::connect(socket).map_err(|e| {
        let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
        anyhow::Error::new(e).context(if denied {
            format!(
                "connecting to edged at {}: not allowed (the control socket admits root, and the members of `[daemon] read_group` for the show commands)",
                socket.display()
            )
        } else {
            format!(
                "connecting to edged at {} (is it running? --socket or EDGE_SOCKET sets the path)",
                socket.display()
            )
        })
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut bytes = encode(request);
    bytes.push(b'\n');
    for item in items {
        serde_json::to_writer(&mut bytes, item).context("encoding a batch item")?;
        bytes.push(b'\n');
    }
    let written = stream.write_all(&bytes);
    Ok((stream, written))
}

/// A failed read of edged's reply, saying what happened (no reply within
/// `timeout`).
pub fn read_error(e: std::io::Error, timeout: Duration) -> anyhow::Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        return anyhow::anyhow!(
            "edged did not reply within {} s (--timeout sets the wait): it may still be applying a large change; `edgectl status` shows whether it answers",
            timeout.as_secs_f64()
        );
    }
    anyhow::Error::new(e).context("reading edged's reply")
}

#[cfg(test)]
mod tests;
