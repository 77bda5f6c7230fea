//! The thin tokio driver (feature `driver`): one task per neighbour owns a [`Session`] and its
//! TCP connection, feeds it bytes, connection events and timer expiries, and carries out its
//! outputs; session events (up, down, Adj-RIB-In changes) go to the caller on a channel. A
//! listener task hands inbound connections to the neighbour they come from.
//!
//! ```text
//!  TcpListener ──accept──► listen() ──stream (by peer address)──┐
//!                                                               ▼
//!  peer ◄──TCP──► session task (Session: handle(now, input) → outputs) ──SessionEvent──► caller
//!                     ▲ timers: Session::next_deadline()
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::codec::Verdict;
use crate::fsm::{DownReason, Input, Negotiated, Output, Session, SessionConfig};
use crate::rib::RibChange;

/// How a neighbour is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub address: IpAddr,
    pub port: u16,
    /// Source address of our connections (the address the peer has configured for us).
    pub local_address: Option<IpAddr>,
    pub session: SessionConfig,
}

/// What a session task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Up {
        peer: IpAddr,
        negotiated: Negotiated,
    },
    Down {
        peer: IpAddr,
        reason: DownReason,
    },
    Routes {
        peer: IpAddr,
        changes: Vec<RibChange>,
    },
    EndOfRib {
        peer: IpAddr,
    },
    /// Graceful restart: the session was lost and the peer's routes are kept, stale (before
    /// its `Down`).
    RoutesRetained {
        peer: IpAddr,
    },
    /// The kept routes still stale were withdrawn (the `Routes` before this one).
    StaleSwept {
        peer: IpAddr,
    },
    Malformed {
        peer: IpAddr,
        verdict: Verdict,
        problems: Vec<String>,
    },
    /// The task ended (after a Stop on shutdown).
    Stopped {
        peer: IpAddr,
    },
}

/// A running session task.
#[derive(Debug)]
pub struct SessionHandle {
    pub peer: IpAddr,
    /// Inbound connections from this peer.
    pub inbound: mpsc::Sender<TcpStream>,
    /// Our UPDATEs for this peer, sent in order while the session is Established (dropped
    /// otherwise: the owner sends its whole export again when the session comes up).
    pub advertise: mpsc::UnboundedSender<Vec<u8>>,
    pub task: JoinHandle<()>,
}

/// Starts the session task of `neighbour`; it runs until `shutdown`, then sends a Cease.
pub fn spawn(
    neighbour: Neighbour,
    events: mpsc::Sender<SessionEvent>,
    shutdown: CancellationToken,
) -> SessionHandle {
    let (inbound, incoming) = mpsc::channel(4);
    let (advertise, updates) = mpsc::unbounded_channel();
    let peer = neighbour.address;
    let task = tokio::spawn(run(neighbour, incoming, updates, events, shutdown));
    SessionHandle {
        peer,
        inbound,
        advertise,
        task,
    }
}

/// Accepts connections and hands each to its neighbour's task; unknown sources are closed.
pub async fn listen(
    listener: TcpListener,
    peers: HashMap<IpAddr, mpsc::Sender<TcpStream>>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, from)) => match peers.get(&from.ip()) {
                Some(session) => {
                    if session.try_send(stream).is_err() {
                        tracing::debug!(%from, "session busy: inbound connection closed");
                    }
                }
                None => tracing::info!(%from, "connection from an unknown address closed"),
            },
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A peer that takes nothing for this long is given up (RFC 9687's send hold timer, whose
/// suggested value is 8 minutes; we use 180 s, the default hold time of FRR and others).
const SEND_TIMEOUT: Duration = Duration::from_secs(180);

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

async fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(local) = local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(peer))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What woke the task.
enum Wake {
    Shutdown,
    Inbound(Option<TcpStream>),
    Advertise(Option<Vec<u8>>),
    Connected(std::io::Result<TcpStream>),
    Read(std::io::Result<Vec<u8>>),
    Timer(crate::fsm::Timer),
}

async fn run(
    neighbour: Neighbour,
    mut incoming: mpsc::Receiver<TcpStream>,
    mut updates: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::Sender<SessionEvent>,
    shutdown: CancellationToken,
) {
    let peer = neighbour.address;
    let remote = SocketAddr::new(peer, neighbour.port);
    let epoch = Instant::now();
    let mut session = Session::new(neighbour.session.clone());
    let mut conn: Option<TcpStream> = None;
    let mut connecting: Option<Connecting> = None;
    let mut inbound_open = true;
    let mut updates_open = true;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut outputs = session.handle(epoch.elapsed(), Input::Start);
    let mut stopping = false;
    loop {
        let mut write_failed = false;
        for output in outputs.drain(..) {
            match output {
                Output::Connect => {
                    let timeout = neighbour.session.connect_retry.max(Duration::from_secs(1));
                    connecting = Some(Box::pin(connect(remote, neighbour.local_address, timeout)));
                }
                Output::Send(bytes) => {
                    if let Some(stream) = conn.as_mut() {
                        let sent = tokio::time::timeout(SEND_TIMEOUT, stream.write_all(&bytes));
                        if !matches!(sent.await, Ok(Ok(()))) {
                            write_failed = true;
                        }
                    }
                }
                Output::Disconnect => {
                    connecting = None;
                    if let Some(mut stream) = conn.take() {
                        let _ = stream.shutdown().await;
                    }
                }
                Output::ArmTimer { .. } | Output::StopTimer(_) => {}
                Output::Up(negotiated) => {
                    tracing::info!(%peer, hold = negotiated.hold_time, "BGP session established");
                    let _ = events.send(SessionEvent::Up { peer, negotiated }).await;
                }
                Output::Down(reason) => {
                    tracing::warn!(%peer, %reason, "BGP session down");
                    let _ = events.send(SessionEvent::Down { peer, reason }).await;
                }
                Output::Routes(changes) => {
                    let _ = events.send(SessionEvent::Routes { peer, changes }).await;
                }
                Output::EndOfRib => {
                    let _ = events.send(SessionEvent::EndOfRib { peer }).await;
                }
                Output::RoutesRetained => {
                    tracing::info!(%peer, "graceful restart: the peer's routes are kept, stale");
                    let _ = events.send(SessionEvent::RoutesRetained { peer }).await;
                }
                Output::StaleSwept => {
                    tracing::info!(%peer, "graceful restart over: stale routes swept");
                    let _ = events.send(SessionEvent::StaleSwept { peer }).await;
                }
                Output::Malformed { verdict, problems } => {
                    tracing::warn!(%peer, ?verdict, ?problems, "malformed UPDATE (RFC 7606)");
                    let _ = events
                        .send(SessionEvent::Malformed {
                            peer,
                            verdict,
                            problems,
                        })
                        .await;
                }
            }
        }
        if stopping {
            let _ = events.send(SessionEvent::Stopped { peer }).await;
            return;
        }
        if write_failed {
            conn = None;
            outputs = session.handle(epoch.elapsed(), Input::TcpFailed);
            continue;
        }
        let deadline = session.next_deadline();
        let wake = tokio::select! {
            _ = shutdown.cancelled() => Wake::Shutdown,
            stream = incoming.recv(), if inbound_open => Wake::Inbound(stream),
            update = updates.recv(), if updates_open => Wake::Advertise(update),
            result = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                Wake::Connected(result)
            }
            read = async {
                let stream = conn.as_mut().expect("guarded");
                stream.read(&mut buffer).await.map(|n| buffer[..n].to_vec())
            }, if conn.is_some() => Wake::Read(read),
            timer = async {
                match deadline {
                    Some((timer, at)) => {
                        tokio::time::sleep_until(epoch + at).await;
                        timer
                    }
                    None => std::future::pending().await,
                }
            } => Wake::Timer(timer),
        };
        let now = epoch.elapsed();
        outputs = match wake {
            Wake::Shutdown => {
                stopping = true;
                session.handle(now, Input::Stop)
            }
            Wake::Inbound(None) => {
                inbound_open = false;
                Vec::new()
            }
            Wake::Advertise(None) => {
                updates_open = false;
                Vec::new()
            }
            Wake::Advertise(Some(update)) => session.handle(now, Input::Advertise(update)),
            Wake::Inbound(Some(stream)) => {
                if conn.is_some() {
                    drop(stream);
                    Vec::new()
                } else {
                    let _ = stream.set_nodelay(true);
                    connecting = None;
                    conn = Some(stream);
                    session.handle(now, Input::TcpConnected)
                }
            }
            Wake::Connected(result) => {
                connecting = None;
                match result {
                    Ok(stream) => {
                        conn = Some(stream);
                        session.handle(now, Input::TcpConnected)
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "connect failed");
                        session.handle(now, Input::TcpFailed)
                    }
                }
            }
            Wake::Read(Ok(bytes)) if !bytes.is_empty() => {
                session.handle(now, Input::Received(&bytes))
            }
            Wake::Read(_) => {
                conn = None;
                session.handle(now, Input::TcpFailed)
            }
            Wake::Timer(timer) => session.handle(now, Input::TimerExpired(timer)),
        };
    }
}
