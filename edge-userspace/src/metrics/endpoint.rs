//! The metrics endpoint: `GET /metrics` over HTTP/1.1, served by hyper as
//! tasks on edged's tokio runtime (no thread of its own).
//!
//! It is open to every local user, so it must hold against hostile ones
//! (issue 15):
//! - at most [`LIMITS`]`.connections` connections are open at once. A new
//!   one past that closes the oldest connection still waiting for its
//!   request (half-open and slowloris clients go first), else the one
//!   whose response has moved no byte for longest, if that is at least
//!   [`STALLED`] (a client not reading); only when there is neither is it
//!   answered 503 and closed. A scrape that is sending or receiving is
//!   never interrupted.
//! - the request head must arrive within `header_timeout` of the accept,
//!   and the connection end within `deadline`. One request per connection
//!   (no keep-alive), so a client that pipelines requests without reading
//!   gets at most one response and is then closed.
//! - one exposition is rendered at a time, on the blocking pool (it reads
//!   the BPF maps), and scrapes that arrive during a render share the next
//!   one: the runtime's workers never block on it, the thread count does
//!   not grow with the clients, and N scrapes at once cost two renders.
//! - accept errors (no file descriptor left) are counted, logged at most
//!   every 10 s, and retried after a pause; with no descriptor left a
//!   connection is closed as above to give one back. Nothing here panics.
//!
//! HTTP parsing is hyper's (`http1::Builder` with `header_read_timeout`).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{
            AtomicU64,
            Ordering::{Relaxed, SeqCst},
        },
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::{debug, info, warn};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    task::JoinHandle,
};

use super::{HostFacts, classic_text, render};
use crate::{dataplane::maps::Counters, desired::View};

/// The endpoint's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub connections: usize,
    /// From accept until the request head (request line and headers) is in.
    pub header_timeout: Duration,
    /// From accept until the connection is closed, response sent or not.
    pub deadline: Duration,
    /// Pause after a failed accept.
    pub accept_retry: Duration,
}

/// The bounds edged serves with (docs/metrics.md).
pub const LIMITS: Limits = Limits {
    connections: 64,
    header_timeout: Duration::from_secs(5),
    deadline: Duration::from_secs(10),
    accept_retry: Duration::from_millis(100),
};

/// Accept errors are logged at most once per this long.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept that closed a waiting connection.
const FREED_RETRY: Duration = Duration::from_millis(5);
/// A connection with a request in progress that moved no byte for this
/// long (a client not reading its response) may be closed to make room.
const STALLED: Duration = Duration::from_secs(1);
/// How long a new connection waits for the one it displaced to close.
const EVICT_WAIT: Duration = Duration::from_millis(200);
/// Bytes hyper buffers per connection (the request head must fit).
const MAX_BUF: usize = 16 * 1024;
/// Connections the kernel queues for accept.
const BACKLOG: i32 = 1024;
/// What a connection past the limit gets before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nRetry-After: 1\r\nConnection: close\r\n\r\nmetrics endpoint: too busy now\n";

/// The endpoint's own figures, as the exposition shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Connections open now.
    pub open: u64,
    /// Connections open at most.
    pub limit: u64,
    /// Every connection accepted (those then rejected included).
    pub accepted: u64,
    /// Answered 503 and closed: the limit was reached and no open
    /// connection was still waiting for its request.
    pub rejected: u64,
    /// Closed while still waiting for its request, to make room.
    pub evicted: u64,
    /// Closed at the header timeout or the deadline.
    pub timed_out: u64,
    /// Failed accepts.
    pub accept_errors: u64,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    rejected: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
    accept_errors: AtomicU64,
}

/// Renders the exposition (OpenMetrics) with the endpoint's figures.
pub type Source = dyn Fn(&EndpointStats) -> Result<String> + Send + Sync;

/// An open connection, as eviction sees it.
struct Conn {
    /// Closes it.
    close: oneshot::Sender<()>,
    /// Its request has not arrived yet.
    waiting: bool,
    /// When it last moved a byte (milliseconds since the endpoint started).
    progress: Arc<AtomicU64>,
}

/// The last exposition rendered.
#[derive(Default)]
struct Rendered {
    /// Renders started before it, itself included (0: none yet).
    index: u64,
    openmetrics: Option<Result<Bytes, String>>,
    /// The classic text of it, made on first use.
    classic: Option<Bytes>,
}

/// One endpoint: its bounds, its connections and its counters.
pub struct Endpoint {
    limits: Limits,
    started: Instant,
    slots: Arc<Semaphore>,
    /// Open connections, in accept order.
    conns: Mutex<BTreeMap<u64, Conn>>,
    counts: Counts,
    /// Renders started so far.
    renders: AtomicU64,
    /// Scrapes waiting for or holding an exposition.
    pending: AtomicU64,
    /// The last render; held while rendering (one at a time).
    last: tokio::sync::Mutex<Rendered>,
    /// Held by a render on the blocking pool, even when the request that
    /// started it is gone: never two at once.
    rendering: Arc<Semaphore>,
    source: Arc<Source>,
    http: http1::Builder,
}

impl Endpoint {
    pub fn new(limits: Limits, source: Arc<Source>) -> Arc<Self> {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(false)
            .max_buf_size(MAX_BUF);
        Arc::new(Self {
            limits,
            started: Instant::now(),
            slots: Arc::new(Semaphore::new(limits.connections)),
            conns: Mutex::default(),
            counts: Counts::default(),
            renders: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            last: tokio::sync::Mutex::default(),
            rendering: Arc::new(Semaphore::new(1)),
            source,
            http,
        })
    }

    pub fn stats(&self) -> EndpointStats {
        let c = &self.counts;
        EndpointStats {
            open: self
                .limits
                .connections
                .saturating_sub(self.slots.available_permits()) as u64,
            limit: self.limits.connections as u64,
            accepted: c.accepted.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            evicted: c.evicted.load(Relaxed),
            timed_out: c.timed_out.load(Relaxed),
            accept_errors: c.accept_errors.load(Relaxed),
        }
    }

    fn conns(&self) -> MutexGuard<'_, BTreeMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Closes, to make room, the oldest connection still waiting for its
    /// request or else the one stalled longest (no byte moved for
    /// [`STALLED`]: a client not reading its response); false when there is
    /// none.
    fn evict_oldest(&self) -> bool {
        let now = self.now_ms();
        let mut conns = self.conns();
        loop {
            let waiting = conns.iter().find(|(_, c)| c.waiting);
            let stalled = || {
                conns
                    .iter()
                    .map(|(id, c)| (c.progress.load(Relaxed), id))
                    .filter(|(at, _)| now.saturating_sub(*at) >= STALLED.as_millis() as u64)
                    .min()
                    .map(|(_, id)| id)
            };
            let Some(id) = waiting.map(|(id, _)| id).or_else(stalled).copied() else {
                return false;
            };
            let Some(conn) = conns.remove(&id) else {
                return false;
            };
            if conn.close.send(()).is_ok() {
                self.counts.evicted.fetch_add(1, Relaxed);
                return true;
            }
        }
    }

    /// Accepts connections until the runtime stops.
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let mut throttle = Throttle::new(LOG_EVERY);
        let mut next_id = 0u64;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    self.counts.accept_errors.fetch_add(1, Relaxed);
                    // No descriptor left: one still waiting gives its back.
                    let exhausted = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    let freed = exhausted && self.evict_oldest();
                    if let Some(more) = throttle.ready(Instant::now()) {
                        warn!(
                            "metrics endpoint: accept: {e}{}{}; retrying (every {} ms while nothing can be closed){}",
                            if more > 0 {
                                format!(" ({more} more since the last message)")
                            } else {
                                String::new()
                            },
                            if freed {
                                "; closed the oldest connection still waiting for its request"
                            } else {
                                ""
                            },
                            self.limits.accept_retry.as_millis(),
                            if exhausted {
                                " (raise LimitNOFILE / RLIMIT_NOFILE)"
                            } else {
                                ""
                            },
                        );
                    }
                    // Room made: try again as soon as that connection is
                    // gone; else wait for descriptors to come back.
                    tokio::time::sleep(if freed {
                        FREED_RETRY
                    } else {
                        self.limits.accept_retry
                    })
                    .await;
                    continue;
                }
            };
            self.counts.accepted.fetch_add(1, Relaxed);
            let permit = match self.slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) if self.evict_oldest() => {
                    tokio::time::timeout(EVICT_WAIT, self.slots.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
                Err(_) => None,
            };
            let Some(permit) = permit else {
                self.counts.rejected.fetch_add(1, Relaxed);
                // Without waiting for anything: the request read if it is in
                // (a close with unread bytes resets the connection, and the
                // client may not see the answer), the answer written if it
                // fits, then closed.
                let mut sink = [0u8; 4096];
                for _ in 0..4 {
                    if !matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = stream.try_write(BUSY);
                continue;
            };
            next_id += 1;
            let (close, closed) = oneshot::channel();
            let progress = Arc::new(AtomicU64::new(self.now_ms()));
            let conn = Conn {
                close,
                waiting: true,
                progress: progress.clone(),
            };
            self.conns().insert(next_id, conn);
            let stream = Tracked {
                stream,
                progress,
                started: self.started,
            };
            tokio::spawn(self.clone().connection(next_id, stream, permit, closed));
        }
    }

    async fn connection(
        self: Arc<Self>,
        id: u64,
        stream: Tracked,
        permit: OwnedSemaphorePermit,
        closed: oneshot::Receiver<()>,
    ) {
        let _permit = permit;
        let service = {
            let me = self.clone();
            service_fn(move |request| {
                let me = me.clone();
                async move {
                    // In progress: evicted only when it stalls.
                    if let Some(c) = me.conns().get_mut(&id) {
                        c.waiting = false;
                    }
                    Ok::<_, Infallible>(me.respond(&request).await)
                }
            })
        };
        let conn = self.http.serve_connection(TokioIo::new(stream), service);
        // The sender dropped (never, while the task runs): not closed so.
        let evicted = async {
            if closed.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = tokio::time::timeout(self.limits.deadline, conn) => match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_timeout() => {
                    self.counts.timed_out.fetch_add(1, Relaxed);
                }
                Ok(Err(e)) => debug!("metrics connection: {e}"),
                Err(_) => {
                    self.counts.timed_out.fetch_add(1, Relaxed);
                }
            },
            () = evicted => {} // counted where it was decided
        }
        self.conns().remove(&id);
    }

    async fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/metrics" {
            return text(StatusCode::NOT_FOUND, "not found: try /metrics\n".into());
        }
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics only\n".into());
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        // Content negotiation as Prometheus does it: OpenMetrics when asked
        // for, the classic text format otherwise.
        let openmetrics = request.headers().get_all(header::ACCEPT).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.contains("application/openmetrics-text"))
        });
        let body = match self.exposition(openmetrics).await {
            Ok(body) => body,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        let content_type = if openmetrics {
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        } else {
            "text/plain; version=0.0.4; charset=utf-8"
        };
        let mut r = Response::new(Full::new(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    }

    /// An exposition rendered after the request arrived: scrapes that
    /// arrive while one is rendered share the next, so any number of them
    /// costs at most two renders in a row, and none is answered with
    /// counters older than its request.
    async fn exposition(&self, openmetrics: bool) -> Result<Bytes, String> {
        let arrived = self.renders.load(SeqCst);
        let pending = Pending::enter(&self.pending);
        let mut last = self.last.lock().await;
        let body = self.exposition_in(&mut last, arrived, openmetrics).await;
        // Only a scrape that arrived before a render started may share it:
        // with none left, the exposition is not kept (it can be large).
        if pending.leave() == 0 {
            *last = Rendered {
                index: last.index,
                ..Rendered::default()
            };
        }
        body
    }

    async fn exposition_in(
        &self,
        last: &mut Rendered,
        arrived: u64,
        openmetrics: bool,
    ) -> Result<Bytes, String> {
        if last.index <= arrived || last.openmetrics.is_none() {
            let index = self.renders.fetch_add(1, SeqCst) + 1;
            let source = self.source.clone();
            let stats = self.stats();
            let text = self
                .blocking(move || source(&stats).map_err(|e| format!("reading counters: {e:#}\n")))
                .await
                .and_then(|r| r);
            *last = Rendered {
                index,
                openmetrics: Some(text.map(Bytes::from)),
                classic: None,
            };
        }
        let om = match &last.openmetrics {
            Some(Ok(om)) => om.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("no exposition\n".into()),
        };
        if openmetrics {
            return Ok(om);
        }
        if let Some(classic) = &last.classic {
            return Ok(classic.clone());
        }
        let classic = self
            .blocking(move || Bytes::from(classic_text(&String::from_utf8_lossy(&om))))
            .await?;
        last.classic = Some(classic.clone());
        Ok(classic)
    }

    /// Runs `f` on the blocking pool, one at a time (the turn moves along:
    /// a render outlives a connection dropped at its deadline, and the
    /// next waits for it).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let turn = self
            .rendering
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("{e}\n"))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            f()
        })
        .await
        .map_err(|e| {
            warn!("metrics: rendering failed: {e}");
            format!("rendering failed: {e}\n")
        })
    }
}

/// Counts a scrape waiting for or holding an exposition, until it leaves
/// (or is dropped, its connection gone).
struct Pending<'a> {
    count: &'a AtomicU64,
    left: bool,
}

impl<'a> Pending<'a> {
    fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, SeqCst);
        Self { count, left: false }
    }

    /// How many are left besides this one.
    fn leave(mut self) -> u64 {
        self.left = true;
        self.count.fetch_sub(1, SeqCst) - 1
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.left {
            self.count.fetch_sub(1, SeqCst);
        }
    }
}

/// A connection's socket, noting when it last moved a byte.
struct Tracked {
    stream: TcpStream,
    progress: Arc<AtomicU64>,
    started: Instant,
}

impl Tracked {
    fn moved(&self) {
        self.progress
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Lets a message through at most once per `every`; counts the others.
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(messages held back since the last one)` when one may go out.
    fn ready(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Binds `addr` with a backlog of [`BACKLOG`] (the kernel queues
/// connections while edged is out of descriptors).
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let bind = || -> io::Result<TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        TcpListener::from_std(socket.into())
    };
    bind().with_context(|| format!("binding the metrics endpoint {addr}"))
}

/// Serves `GET /metrics` on `addr` as tasks on the current tokio runtime,
/// reading the counters pinned under `pin_dir` on every scrape.
pub fn serve(
    addr: SocketAddr,
    pin_dir: PathBuf,
    view: Arc<RwLock<Arc<View>>>,
    host: Arc<RwLock<Arc<HostFacts>>>,
    routes: Option<crate::analytics::Shared>,
    customers: Arc<RwLock<Arc<super::CustomerFacts>>>,
) -> Result<JoinHandle<()>> {
    let listener = bind(addr)?;
    let counters =
        Mutex::new(Counters::open(&pin_dir).context("opening the counters for metrics")?);
    let started = Instant::now();
    let source = move |endpoint: &EndpointStats| -> Result<String> {
        let view = view.read().unwrap_or_else(PoisonError::into_inner).clone();
        let host = host.read().unwrap_or_else(PoisonError::into_inner).clone();
        let customers = customers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stats = counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read(view.prefix_slots())?;
        let routes = routes
            .as_ref()
            .map(|e| super::RouteFacts::of(&crate::analytics::lock(e)));
        Ok(render(
            &stats,
            &view,
            &host,
            routes.as_ref(),
            &customers,
            endpoint,
            started.elapsed().as_secs(),
        ))
    };
    let endpoint = Endpoint::new(LIMITS, Arc::new(source));
    Ok(tokio::spawn(endpoint.run(listener)))
}

/// Raises the soft limit on open files to the hard one (the endpoint's
/// connections, the control socket's and the maps all take descriptors;
/// the systemd unit sets the hard limit with `LimitNOFILE`), and logs it.
pub fn raise_fd_limit() {
    match raise_nofile() {
        Ok((before, after)) if before < after => {
            info!("open files: soft limit raised from {before} to the hard limit, {after}")
        }
        Ok((_, after)) => info!("open files: soft limit {after} (the hard limit)"),
        Err(e) => warn!("open files: could not raise the soft limit to the hard one: {e}"),
    }
}

/// (soft limit before, soft limit now).
fn raise_nofile() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the rlimit it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the rlimit it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, limit.rlim_cur))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::TcpStream,
    };

    use super::*;

    const TEST_LIMITS: Limits = Limits {
        connections: 4,
        header_timeout: Duration::from_millis(400),
        deadline: Duration::from_millis(1500),
        accept_retry: Duration::from_millis(20),
    };

    /// An endpoint on a loopback port whose exposition is `body(stats)`.
    async fn start(
        limits: Limits,
        body: impl Fn(&EndpointStats) -> String + Send + Sync + 'static,
    ) -> (Arc<Endpoint>, SocketAddr) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = Endpoint::new(limits, Arc::new(move |s: &EndpointStats| Ok(body(s))));
        tokio::spawn(endpoint.clone().run(listener));
        (endpoint, addr)
    }

    /// One request on a new connection; what came back until the server
    /// closed it (5 s at most).
    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let out = closed_within(&mut s, Duration::from_secs(5))
            .await
            .expect("a response within 5 s");
        String::from_utf8(out).unwrap()
    }

    const SCRAPE: &str = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    /// Reads until the server closes (EOF or reset); the bytes read, or
    /// `None` when it is still open after `within`.
    async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let read = tokio::time::timeout(within, async {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        read.ok().map(|()| out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_both_formats_404_and_405() {
        let (_, addr) = start(TEST_LIMITS, |_| {
            "# TYPE edge_x counter\nedge_x_total 3\n# EOF\n".to_string()
        })
        .await;
        let classic = get(addr, SCRAPE).await;
        assert!(classic.starts_with("HTTP/1.1 200 OK\r\n"), "{classic}");
        assert!(
            classic.contains("content-type: text/plain; version=0.0.4"),
            "{classic}"
        );
        assert!(classic.contains("connection: close"), "{classic}");
        assert!(
            classic.ends_with("\r\n\r\n# TYPE edge_x_total counter\nedge_x_total 3\n"),
            "{classic}"
        );
        let om = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
        )
        .await;
        assert!(
            om.contains("content-type: application/openmetrics-text"),
            "{om}"
        );
        assert!(om.ends_with("edge_x_total 3\n# EOF\n"), "{om}");
        let nf = get(addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
        let na = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(na.starts_with("HTTP/1.1 405 "), "{na}");
        let bad = get(addr, "NOT HTTP AT ALL\r\n\r\n").await;
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    }

    /// Silent and half-sent clients beyond the limit: the oldest waiting
    /// ones are closed to make room, a scrape answers at once, and those
    /// left are closed at the header timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_answers_while_silent_clients_hold_the_limit() {
        let (endpoint, addr) = start(TEST_LIMITS, |s| format!("open {}\n", s.open)).await;
        let mut held = Vec::new();
        for i in 0..12 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET /metr").await.unwrap();
            }
            held.push(s);
        }
        let t = Instant::now();
        let r = get(addr, SCRAPE).await;
        let took = t.elapsed();
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        assert!(took < Duration::from_millis(300), "scrape took {took:?}");
        // 12 silent + 1 scrape through 4 slots: 9 displaced, none refused.
        let s = endpoint.stats();
        assert_eq!(
            (s.accepted, s.evicted, s.rejected, s.limit),
            (13, 9, 0, 4),
            "{s:?}"
        );
        for s in &mut held {
            let left = closed_within(s, Duration::from_secs(2)).await;
            assert_eq!(left, Some(vec![]), "closed without a byte");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // The counter moves just after the socket is closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = endpoint.stats();
        assert_eq!((s.timed_out, s.open), (3, 0), "{s:?}");
    }

    /// A client that pipelines requests and never reads gets one response
    /// and is closed; scrapes meanwhile answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipelining_client_gets_one_response_and_is_closed() {
        let (endpoint, addr) = start(TEST_LIMITS, |_| "x 1\n".repeat(2000)).await;
        let mut p = TcpStream::connect(addr).await.unwrap();
        let burst = SCRAPE.repeat(1000);
        // Written while the server may close: how much goes in does not matter.
        let _ = tokio::time::timeout(Duration::from_secs(2), p.write_all(burst.as_bytes())).await;
        let r = get(addr, SCRAPE).await;
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        let got = closed_within(&mut p, Duration::from_secs(3))
            .await
            .expect("closed by the server");
        let got = String::from_utf8_lossy(&got);
        assert!(got.matches("HTTP/1.1 200 OK").count() <= 1, "{got}");
        assert!(endpoint.stats().accepted >= 2);
    }

    /// Past the limit with every connection's request in progress: 503 at
    /// once, counted. Clients that never read their (large) response: once
    /// stalled for 1 s the one stalled longest makes room for a scrape; the
    /// other is closed at the deadline. Each counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_limit_503_then_stalled_readers_make_room_or_time_out() {
        let limits = Limits {
            connections: 2,
            deadline: Duration::from_secs(4),
            ..TEST_LIMITS
        };
        // 16 MiB: more than two sockets' buffers hold.
        let (endpoint, addr) = start(limits, |_| "y".repeat(16 << 20)).await;
        let mut slow = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(SCRAPE.as_bytes()).await.unwrap();
            slow.push(s);
        }
        // Both requests in progress (rendered, stuck writing).
        let t = Instant::now();
        while endpoint.conns().values().any(|c| c.waiting) || endpoint.stats().open < 2 {
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{:?}",
                endpoint.stats()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let r = get(addr, SCRAPE).await;
        assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
        assert_eq!(endpoint.stats().rejected, 1);
        // Stalled 1 s: one of them makes room.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let r = get(addr, SCRAPE).await;
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{}", &r[..40]);
        let s = endpoint.stats();
        assert_eq!((s.evicted, s.timed_out, s.open), (1, 0, 1), "{s:?}");
        // The other is closed at the deadline (4 s after accept).
        tokio::time::sleep(Duration::from_millis(4500).saturating_sub(t.elapsed())).await;
        let s = endpoint.stats();
        assert_eq!((s.evicted, s.timed_out, s.open), (1, 1, 0), "{s:?}");
        drop(slow);
        let r = get(addr, SCRAPE).await;
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{}", &r[..40]);
    }

    /// Scrapes that arrive together share renders, each started after they
    /// arrived: 20 at once cost at most two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_renders_started_after_they_arrived() {
        let renders = Arc::new(AtomicU64::new(0));
        let limits = Limits {
            connections: 32,
            ..TEST_LIMITS
        };
        let counted = renders.clone();
        let (endpoint, addr) = start(limits, move |_| {
            let n = counted.fetch_add(1, SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(300));
            format!("render {n}\n")
        })
        .await;
        let t = Instant::now();
        let scrapes: Vec<_> = (0..20).map(|_| tokio::spawn(get(addr, SCRAPE))).collect();
        for s in scrapes {
            let r = s.await.unwrap();
            assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        }
        let took = t.elapsed();
        let n = renders.load(SeqCst);
        assert!((1..=2).contains(&n), "{n} renders for 20 scrapes");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        // Not kept once they are answered; a scrape after them gets a
        // render of its own.
        assert!(endpoint.last.lock().await.openmetrics.is_none());
        let after = get(addr, SCRAPE).await;
        assert!(after.ends_with(&format!("render {}\n", n + 1)), "{after}");
    }

    #[test]
    fn throttle_lets_one_message_through_per_period() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.ready(t0), Some(0));
        assert_eq!(t.ready(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.ready(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.ready(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.ready(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.ready(t0 + Duration::from_secs(25)), Some(1));
    }

    #[tokio::test]
    async fn a_port_in_use_is_an_error() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let e = bind(first.local_addr().unwrap()).unwrap_err();
        assert!(
            format!("{e:#}").contains("binding the metrics endpoint 127.0.0.1:"),
            "{e:#}"
        );
    }

    #[test]
    fn the_soft_fd_limit_is_raised_to_the_hard_one() {
        let (_, after) = raise_nofile().unwrap();
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the rlimit it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
        assert_eq!(l.rlim_cur, l.rlim_max);
        assert_eq!(after, l.rlim_cur);
    }
}
