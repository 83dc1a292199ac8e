//! BMP over TCP: one tokio task per session reads whole messages (framed
//! by the common header) and passes them, through a bounded channel, to
//! one ingest thread that decodes them and applies them to the engine.
//! Decoding a full table takes CPU: on a thread of its own it never holds
//! up the daemon's runtime (control socket, probes, metrics); the bounded
//! channel slows the TCP reads (and so the sender) instead of growing.
//! A malformed message closes its session only, with a log line.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use log::{info, warn};
use tokio::{
    io::{AsyncReadExt as _, BufReader},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};

use super::{
    Event, Shared,
    bmp::{self, HEADER_LEN, Outcome, Session},
    lock, now,
};

/// Messages queued between the sessions and the ingest thread.
pub const QUEUE: usize = 4096;
/// Messages the ingest thread applies per lock of the engine.
pub const BATCH: usize = 1024;
/// Events queued toward the daemon.
pub const EVENTS: usize = 1024;

/// What a session passes to the ingest thread: its opening, a message
/// (`T`: its bytes; then, decoded, its actions), its end.
enum Frame<T> {
    Open {
        id: u64,
        router: IpAddr,
        close: watch::Sender<Option<String>>,
    },
    Message {
        id: u64,
        router: IpAddr,
        body: T,
    },
    Closed {
        id: u64,
        why: String,
        /// A malformed common header (bad version or length) ended it.
        malformed: bool,
    },
}

type Decoded = Frame<Result<Vec<bmp::Action>, bmp::BmpError>>;

/// Binds `addr` now (a failure names it), then accepts BMP sessions on
/// the current tokio runtime and ingests them on a thread of its own;
/// anomaly events go to `events`.
pub fn listen(
    addr: SocketAddr,
    engine: Shared,
    events: mpsc::Sender<Event>,
) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let bound = std_listener.local_addr()?;
    let listener = TcpListener::from_std(std_listener)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("bmp-ingest".into())
        .spawn(move || ingest(rx, engine, events))?;
    tokio::spawn(accept(listener, tx));
    Ok(bound)
}

async fn accept(listener: TcpListener, tx: mpsc::Sender<Frame<Vec<u8>>>) {
    let mut next = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                next += 1;
                let _ = stream.set_nodelay(true);
                tokio::spawn(session(stream, from, next, tx.clone()));
            }
            Err(e) => {
                warn!("bmp: accepting a session failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(stream: TcpStream, from: SocketAddr, id: u64, tx: mpsc::Sender<Frame<Vec<u8>>>) {
    let (close, mut closed) = watch::channel(None);
    let router = from.ip().to_canonical();
    if tx.send(Frame::Open { id, router, close }).await.is_err() {
        return;
    }
    info!("bmp: session from {from}");
    let mut reader = BufReader::with_capacity(1 << 18, stream);
    let mut malformed = false;
    let why = loop {
        let mut header = [0u8; HEADER_LEN];
        tokio::select! {
            r = reader.read_exact(&mut header) => if let Err(e) = r {
                break if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "the router closed the session".to_string()
                } else {
                    format!("reading failed: {e}")
                };
            },
            _ = closed.changed() => break closed.borrow().clone().unwrap_or_default(),
        }
        let len = match bmp::frame_len(&header) {
            Ok(l) => l,
            Err(e) => {
                warn!("bmp {from}: {e}; closing this session (other sessions go on)");
                malformed = true;
                break e.to_string();
            }
        };
        let mut bytes = vec![0u8; len];
        bytes[..HEADER_LEN].copy_from_slice(&header);
        if let Err(e) = reader.read_exact(&mut bytes[HEADER_LEN..]).await {
            break format!("the session ended inside a message: {e}");
        }
        if tx
            .send(Frame::Message {
                id,
                router,
                body: bytes,
            })
            .await
            .is_err()
        {
            return;
        }
    };
    let _ = tx.send(Frame::Closed { id, why, malformed }).await;
}

struct Open {
    session: Session,
    close: watch::Sender<Option<String>>,
    /// A malformed message closed it: what else it sent is dropped.
    dead: bool,
}

fn ingest(mut rx: mpsc::Receiver<Frame<Vec<u8>>>, engine: Shared, events: mpsc::Sender<Event>) {
    let mut sessions: HashMap<u64, Open> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        // Decode outside the lock (a message carries its router: its
        // session may open in this same batch).
        let decoded: Vec<Decoded> = batch
            .drain(..)
            .map(|f| match f {
                Frame::Open { id, router, close } => Decoded::Open { id, router, close },
                Frame::Message { id, router, body } => Decoded::Message {
                    id,
                    router,
                    body: bmp::decode(router, &body),
                },
                Frame::Closed { id, why, malformed } => Decoded::Closed { id, why, malformed },
            })
            .collect();
        let out = {
            let mut e = lock(&engine);
            let t = now();
            for d in decoded {
                match d {
                    Decoded::Open { id, router, close } => {
                        e.totals.sessions += 1;
                        e.totals.sessions_total += 1;
                        sessions.insert(
                            id,
                            Open {
                                session: Session::new(router),
                                close,
                                dead: false,
                            },
                        );
                    }
                    Decoded::Message {
                        id, body: actions, ..
                    } => {
                        let Some(s) = sessions.get_mut(&id).filter(|s| !s.dead) else {
                            continue;
                        };
                        match actions {
                            Ok(actions) => {
                                if let Outcome::Terminated(reason) =
                                    s.session.apply(actions, &mut e, t)
                                {
                                    info!(
                                        "bmp {}: terminated by the router: {reason}",
                                        s.session.name()
                                    );
                                }
                            }
                            Err(err) => {
                                e.totals.malformed += 1;
                                warn!(
                                    "bmp {}: {err}; closing this session (other sessions go on; its routes are kept as stale until it reconnects)",
                                    s.session.name()
                                );
                                s.dead = true;
                                let _ = s.close.send(Some(err.to_string()));
                            }
                        }
                    }
                    Decoded::Closed { id, why, malformed } => {
                        if malformed {
                            e.totals.malformed += 1;
                        }
                        if let Some(s) = sessions.remove(&id) {
                            if s.session.routes {
                                info!(
                                    "bmp {}: session ended ({why}); its routes are kept as stale for {}s or until it sends them again",
                                    s.session.name(),
                                    super::engine::STALE_HOLD
                                );
                            } else {
                                info!(
                                    "bmp {}: session ended ({why}); it had sent no routes",
                                    s.session.name()
                                );
                            }
                            e.totals.sessions -= 1;
                            let router = s.session.router;
                            if !sessions.values().any(|o| o.session.router == router) {
                                e.session_down(router, t);
                            }
                        }
                    }
                }
            }
            e.sweep(t);
            e.totals.paths = e.path_count();
            e.take_events()
        };
        for ev in out {
            if events.blocking_send(ev).is_err() {
                return;
            }
        }
    }
}
