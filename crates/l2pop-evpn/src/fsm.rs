//! One BGP session as a sans-I/O state machine (RFC 4271 §8), with its peer's Adj-RIB-In.
//!
//! [`Session::handle`] takes the current time and one [`Input`] (an administrative event, a TCP
//! event, bytes received, a timer that fired) and returns [`Output`]s: bytes to send, a TCP
//! connection to open or close, timers to arm or stop (as absolute deadlines on the caller's
//! monotonic clock), the session going up or down, and the changes to the Adj-RIB-In. It never
//! reads a clock, opens a socket or sleeps; the driver (`driver` feature) or a test does that.
//!
//! States and the transitions kept (RFC 4271 §8.2.2; optional attributes DelayOpen, collision
//! detection and damping are not used): Idle —Start→ Connect (active) or Active (passive);
//! Connect/Active —TCP up→ OpenSent (our OPEN sent); OpenSent —valid OPEN→ OpenConfirm (our
//! KEEPALIVE sent); OpenConfirm —KEEPALIVE→ Established (our End-of-RIB sent). Any error sends the NOTIFICATION the
//! RFC names, closes the connection, withdraws the peer's routes and returns to Idle, from where
//! the ConnectRetry timer restarts the session (automatic start, §8.1.1) until Stop. UPDATE
//! errors follow RFC 7606: only where it requires a reset does the session go down.
//!
//! Graceful restart, receiving side (RFC 4724 §4.2): when the TCP connection of an established
//! session is lost (no NOTIFICATION) and the peer's capability listed L2VPN/EVPN, its routes are
//! kept, marked stale, instead of withdrawn ([`Output::RoutesRetained`]), and the Restart timer
//! runs for the restart time the peer advertised. Back up, the peer re-sends its routes (each
//! one re-sent loses the mark); its End-of-RIB sweeps what is still stale. Stale routes are also
//! swept when the timer fires first, when the new OPEN does not list EVPN with the F bit (the
//! peer lost its forwarding state), or at Stop; every sweep ends with [`Output::StaleSwept`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::codec::{
    self, Framer, LocalOpen, Notification, PeerOpen, RouteRefreshSubtype, Verdict, WireMessage,
};
use crate::rib::{AdjRibIn, RibChange};

/// Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large value", 4 minutes).
pub const OPEN_HOLD: Duration = Duration::from_secs(240);

/// A session's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local: LocalOpen,
    pub peer_as: u32,
    /// Wait for the peer to connect instead of connecting (RFC 4271 §8.1.1, PassiveTcpEstablishment).
    pub passive: bool,
    pub connect_retry: Duration,
    /// Keepalive interval in seconds; at most a third of the negotiated hold time (the default).
    pub keepalive: Option<u16>,
    /// The owner advertises routes ([`Input::Advertise`]) and sends End-of-RIB after its
    /// initial advertisement; otherwise the session sends End-of-RIB once Established.
    pub advertises: bool,
}

/// The RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// The session's timers (RFC 4271 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// RFC 4724 §4.2: how long a lost peer's stale routes are kept (its advertised restart
    /// time, from the loss until its End-of-RIB).
    Restart,
}

/// What happens to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// ManualStart (active or passive by configuration).
    Start,
    /// ManualStop: Cease/Administrative Shutdown, no automatic restart.
    Stop,
    /// The TCP connection is up (we connected, or the peer connected to us).
    TcpConnected,
    /// The connection attempt failed, or the connection closed.
    TcpFailed,
    Received(&'a [u8]),
    /// A timer armed through [`Output::ArmTimer`] fired; late or re-armed ones are ignored.
    TimerExpired(Timer),
    /// An UPDATE (or End-of-RIB) of ours to send; dropped unless Established.
    Advertise(Vec<u8>),
}

/// What the session asks of its driver, and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer.
    Connect,
    Send(Vec<u8>),
    /// Close the connection (after sending what was queued).
    Disconnect,
    /// Arm (or re-arm) `timer` to fire at `at` on the caller's clock.
    ArmTimer {
        timer: Timer,
        at: Duration,
    },
    StopTimer(Timer),
    /// The session reached Established.
    Up(Negotiated),
    /// The session left Established.
    Down(DownReason),
    Routes(Vec<RibChange>),
    /// The peer sent End-of-RIB for L2VPN/EVPN (RFC 4724 §2).
    EndOfRib,
    /// Graceful restart: the session was lost, and the peer's routes stay, stale, until its
    /// End-of-RIB or its restart time (RFC 4724 §4.2). Comes before the `Down`.
    RoutesRetained,
    /// The retained routes still stale were withdrawn (the `Routes` before this one) and the
    /// rest are current again: End-of-RIB, restart time expired, lost forwarding state, Stop.
    StaleSwept,
    /// An UPDATE was malformed and recovered per RFC 7606; for the log.
    Malformed {
        verdict: Verdict,
        problems: Vec<String>,
    },
}

/// What the two OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer: PeerOpen,
    /// Seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: u16,
}

/// Why the session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    Stopped,
    ConnectionLost,
    NotificationSent(Notification),
    NotificationReceived(Notification),
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Stopped => write!(f, "stopped"),
            DownReason::ConnectionLost => write!(f, "connection lost"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}"),
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION {n}"),
        }
    }
}

/// One BGP session with one peer.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// Between Start and Stop: errors lead back to a new attempt.
    started: bool,
    framer: Framer,
    deadlines: BTreeMap<Timer, Duration>,
    negotiated: Option<Negotiated>,
    rib: AdjRibIn,
    /// The Adj-RIB-In holds routes retained across a session loss (graceful restart).
    retained: bool,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            state: State::Idle,
            started: false,
            framer: Framer::default(),
            deadlines: BTreeMap::new(),
            negotiated: None,
            rib: AdjRibIn::default(),
            retained: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn rib(&self) -> &AdjRibIn {
        &self.rib
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<(Timer, Duration)> {
        self.deadlines
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at))
    }

    fn ibgp(&self) -> bool {
        self.config.peer_as == self.config.local.asn
    }

    /// Applies one input at time `now`.
    pub fn handle(&mut self, now: Duration, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if self.state == State::Idle {
                    self.started = true;
                    self.stop_timer(&mut out, Timer::ConnectRetry);
                    self.begin(now, &mut out);
                }
            }
            Input::Stop => {
                self.started = false;
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    // RFC 4486 §4: Cease, Administrative Shutdown.
                    let cease = Notification::new(Notification::CEASE, 2, Vec::new());
                    out.push(Output::Send(cease.encode()));
                }
                self.close(now, &mut out, DownReason::Stopped);
                self.stop_timer(&mut out, Timer::ConnectRetry);
            }
            Input::TcpConnected => match self.state {
                State::Connect | State::Active => {
                    self.stop_timer(&mut out, Timer::ConnectRetry);
                    out.push(Output::Send(codec::open(&self.config.local)));
                    self.arm(&mut out, Timer::Hold, now + OPEN_HOLD);
                    self.state = State::OpenSent;
                }
                // Not expecting a connection (Idle), or already have one: refuse it.
                _ => out.push(Output::Disconnect),
            },
            Input::TcpFailed => match self.state {
                State::Idle => {}
                State::Connect | State::Active => {
                    // §8.2.2 Connect: TcpConnectionFails → Active, ConnectRetry restarted.
                    self.state = State::Active;
                    if !self.config.passive {
                        self.arm(
                            &mut out,
                            Timer::ConnectRetry,
                            now + self.config.connect_retry,
                        );
                    }
                }
                State::OpenSent | State::OpenConfirm | State::Established => {
                    self.fail(now, &mut out, None, DownReason::ConnectionLost);
                }
            },
            Input::Received(bytes) => self.received(now, bytes, &mut out),
            Input::Advertise(update) => {
                if self.state == State::Established {
                    out.push(Output::Send(update));
                }
            }
            Input::TimerExpired(timer) => {
                let due = self.deadlines.get(&timer).is_some_and(|at| *at <= now);
                if due {
                    self.deadlines.remove(&timer);
                    self.expired(now, timer, &mut out);
                }
            }
        }
        out
    }

    /// Idle → Connect (connect now) or Active (wait for the peer).
    fn begin(&mut self, now: Duration, out: &mut Vec<Output>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Output::Connect);
            self.arm(out, Timer::ConnectRetry, now + self.config.connect_retry);
        }
    }

    fn expired(&mut self, now: Duration, timer: Timer, out: &mut Vec<Output>) {
        match (timer, self.state) {
            (Timer::ConnectRetry, State::Idle) if self.started => self.begin(now, out),
            (Timer::ConnectRetry, State::Connect | State::Active) if !self.config.passive => {
                // Abandon the pending attempt and try again.
                out.push(Output::Disconnect);
                self.state = State::Idle;
                self.begin(now, out);
            }
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let expired = Notification::new(Notification::HOLD_TIMER_EXPIRED, 0, Vec::new());
                self.fail(now, out, Some(expired), DownReason::ConnectionLost);
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                out.push(Output::Send(codec::keepalive()));
                self.arm_keepalive(now, out);
            }
            (Timer::Restart, _) => self.sweep_retained(out),
            _ => {}
        }
    }

    fn received(&mut self, now: Duration, bytes: &[u8], out: &mut Vec<Output>) {
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            return;
        }
        self.framer.push(bytes);
        while let Some(message) = self.framer.next_message() {
            match message {
                Ok(message) => self.message(now, message, out),
                Err(error) => {
                    let notification = Notification::for_decode_error(&error);
                    self.fail(now, out, Some(notification), DownReason::ConnectionLost);
                }
            }
            if self.state == State::Idle {
                break;
            }
        }
    }

    fn message(&mut self, now: Duration, message: WireMessage, out: &mut Vec<Output>) {
        if let WireMessage::Notification(n) = &message {
            let received = Notification::new(n.code.as_u8(), n.subcode, n.data.to_vec());
            self.fail(now, out, None, DownReason::NotificationReceived(received));
            return;
        }
        match (self.state, message) {
            (State::OpenSent, WireMessage::Open(open)) => match self.check_open(&open) {
                Ok(peer) => {
                    let hold_time = self.config.local.hold_time.min(peer.hold_time);
                    let keepalive = match self.config.keepalive {
                        Some(k) if k > 0 => k.min(hold_time / 3),
                        _ => hold_time / 3,
                    };
                    self.negotiated = Some(Negotiated {
                        peer,
                        hold_time,
                        keepalive,
                    });
                    out.push(Output::Send(codec::keepalive()));
                    self.restart_hold(now, out);
                    self.arm_keepalive(now, out);
                    self.state = State::OpenConfirm;
                }
                Err(notification) => {
                    self.fail(
                        now,
                        out,
                        Some(notification.clone()),
                        DownReason::NotificationSent(notification),
                    );
                }
            },
            (State::OpenConfirm, WireMessage::Keepalive) => {
                self.restart_hold(now, out);
                self.state = State::Established;
                if let Some(negotiated) = &self.negotiated {
                    out.push(Output::Up(negotiated.clone()));
                    // RFC 4724 §4.2: without EVPN and the F bit in the new OPEN, the peer
                    // did not keep its forwarding state: the stale routes go at once.
                    if self.retained && negotiated.peer.graceful_restart_evpn != Some(true) {
                        self.sweep_retained(out);
                    }
                }
                // Without exports our initial update is empty: say so at once, as graceful
                // restart expects (RFC 4724 §2). An exporting owner sends it after its routes.
                if !self.config.advertises {
                    out.push(Output::Send(codec::end_of_rib()));
                }
            }
            (State::Established, WireMessage::Keepalive) => self.restart_hold(now, out),
            (State::Established, WireMessage::Update(update)) => {
                self.restart_hold(now, out);
                self.update(now, &update, out);
            }
            (State::Established, WireMessage::RouteRefresh(refresh)) => {
                self.restart_hold(now, out);
                // We advertise nothing, so a refresh request needs no answer; the peer's own
                // refresh (RFC 7313 §4) marks its routes stale and sweeps what it did not resend.
                match refresh.subtype() {
                    RouteRefreshSubtype::BoRR => self.rib.mark_stale(),
                    RouteRefreshSubtype::EoRR => {
                        let changes = self.rib.sweep_stale();
                        if !changes.is_empty() {
                            out.push(Output::Routes(changes));
                        }
                    }
                    _ => {}
                }
            }
            (state, _) => {
                // RFC 6608 §4: FSM error, subcode by the state the unexpected message came in.
                let subcode = match state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    _ => 3,
                };
                let error = Notification::new(Notification::FSM, subcode, Vec::new());
                self.fail(
                    now,
                    out,
                    Some(error.clone()),
                    DownReason::NotificationSent(error),
                );
            }
        }
    }

    /// RFC 4271 §6.2 OPEN message error handling, plus the one capability we need.
    fn check_open(&self, open: &codec::WireOpen) -> Result<PeerOpen, Notification> {
        if open.version != 4 {
            return Err(Notification::new(Notification::OPEN, 1, vec![0, 4]));
        }
        let peer = PeerOpen::from_wire(open);
        if peer.asn != self.config.peer_as {
            return Err(Notification::new(Notification::OPEN, 2, Vec::new()));
        }
        if peer.hold_time == 1 || peer.hold_time == 2 {
            return Err(Notification::new(Notification::OPEN, 6, Vec::new()));
        }
        let own = self.config.local.router_id;
        if peer.router_id == Ipv4Addr::UNSPECIFIED || (self.ibgp() && peer.router_id == own) {
            return Err(Notification::new(Notification::OPEN, 3, Vec::new()));
        }
        if !peer.evpn {
            // RFC 5492 §5: Unsupported Capability, data = the capability we require.
            let mp_evpn = vec![1, 4, 0, 25, 0, 70];
            return Err(Notification::new(Notification::OPEN, 7, mp_evpn));
        }
        Ok(peer)
    }

    fn update(&mut self, now: Duration, update: &codec::WireUpdate, out: &mut Vec<Output>) {
        let four_octet = self
            .negotiated
            .as_ref()
            .is_some_and(|n| n.peer.four_octet_as);
        match codec::evpn_update(update, four_octet, self.ibgp()) {
            Ok(evpn) => {
                if let Some(verdict) = evpn.verdict {
                    out.push(Output::Malformed {
                        verdict,
                        problems: evpn.problems.clone(),
                    });
                }
                let mut changes = Vec::new();
                for key in &evpn.withdrawn {
                    self.rib.withdraw(key, &mut changes);
                }
                // RFC 4271 §9.1.2: our own AS in the path is a loop (an eBGP peer sending our
                // exported routes back), and so is our own identifier as ORIGINATOR_ID (a
                // route reflector reflecting them, RFC 4456 §8); such a route replaces the
                // peer's earlier path for the NLRI, so it withdraws it.
                let looped = evpn.as_path.contains(&self.config.local.asn)
                    || evpn.originator_id == Some(self.config.local.router_id);
                for (key, path) in evpn.announced {
                    if looped {
                        self.rib.withdraw(&key, &mut changes);
                    } else {
                        self.rib.announce(key, path, &mut changes);
                    }
                }
                if !changes.is_empty() {
                    out.push(Output::Routes(changes));
                }
                if evpn.end_of_rib {
                    if self.retained {
                        self.sweep_retained(out);
                    }
                    out.push(Output::EndOfRib);
                }
            }
            Err(notification) => self.fail(
                now,
                out,
                Some(notification.clone()),
                DownReason::NotificationSent(notification),
            ),
        }
    }

    /// Sends `notification` (if any), closes, withdraws the peer's routes, goes Idle; the
    /// ConnectRetry timer brings the session back while it is started.
    fn fail(
        &mut self,
        now: Duration,
        out: &mut Vec<Output>,
        notification: Option<Notification>,
        reason: DownReason,
    ) {
        let reason = match (notification, reason) {
            (Some(n), DownReason::ConnectionLost) => {
                out.push(Output::Send(n.encode()));
                DownReason::NotificationSent(n)
            }
            (Some(n), reason) => {
                out.push(Output::Send(n.encode()));
                reason
            }
            (None, reason) => reason,
        };
        self.close(now, out, reason);
        if self.started {
            self.arm(out, Timer::ConnectRetry, now + self.config.connect_retry);
        }
    }

    fn close(&mut self, now: Duration, out: &mut Vec<Output>, reason: DownReason) {
        let was = self.state;
        if was != State::Idle {
            out.push(Output::Disconnect);
        }
        self.stop_timer(out, Timer::Hold);
        self.stop_timer(out, Timer::Keepalive);
        self.framer.clear();
        let negotiated = self.negotiated.take();
        self.state = State::Idle;
        // RFC 4724 §4.2: a lost connection (no NOTIFICATION either way) of a peer whose
        // capability listed EVPN keeps its routes, stale, for the restart time it advertised.
        let restart_time = negotiated
            .filter(|n| n.peer.graceful_restart_evpn.is_some())
            .and_then(|n| n.peer.graceful_restart_time)
            .filter(|t| *t > 0);
        let retain = match (was, &reason, restart_time) {
            (State::Established, DownReason::ConnectionLost, Some(seconds)) => {
                self.rib.mark_stale();
                self.retained = true;
                let until = now + Duration::from_secs(u64::from(seconds));
                self.arm(out, Timer::Restart, until);
                out.push(Output::RoutesRetained);
                true
            }
            // Lost again before End-of-RIB: the routes stay until the running timer fires.
            (_, DownReason::ConnectionLost, _) if self.retained && was != State::Established => {
                true
            }
            _ => false,
        };
        // Down first, so that the owner can report the speaker's state before the routes.
        if was == State::Established {
            out.push(Output::Down(reason));
        }
        if !retain {
            // Session loss withdraws the peer's routes (RFC 4271 §9.1).
            let changes = self.rib.clear();
            if !changes.is_empty() {
                out.push(Output::Routes(changes));
            }
            if self.retained {
                self.retained = false;
                self.stop_timer(out, Timer::Restart);
                out.push(Output::StaleSwept);
            }
        }
    }

    /// Ends a graceful restart: withdraws the routes still stale, stops the Restart timer.
    fn sweep_retained(&mut self, out: &mut Vec<Output>) {
        if !self.retained {
            return;
        }
        self.retained = false;
        self.stop_timer(out, Timer::Restart);
        let changes = self.rib.sweep_stale();
        if !changes.is_empty() {
            out.push(Output::Routes(changes));
        }
        out.push(Output::StaleSwept);
    }

    fn arm(&mut self, out: &mut Vec<Output>, timer: Timer, at: Duration) {
        self.deadlines.insert(timer, at);
        out.push(Output::ArmTimer { timer, at });
    }

    fn stop_timer(&mut self, out: &mut Vec<Output>, timer: Timer) {
        if self.deadlines.remove(&timer).is_some() {
            out.push(Output::StopTimer(timer));
        }
    }

    fn restart_hold(&mut self, now: Duration, out: &mut Vec<Output>) {
        match self.negotiated.as_ref().map(|n| n.hold_time) {
            Some(hold) if hold > 0 => {
                self.arm(out, Timer::Hold, now + Duration::from_secs(u64::from(hold)));
            }
            _ => self.stop_timer(out, Timer::Hold),
        }
    }

    fn arm_keepalive(&mut self, now: Duration, out: &mut Vec<Output>) {
        match self.negotiated.as_ref().map(|n| n.keepalive) {
            Some(k) if k > 0 => {
                self.arm(
                    out,
                    Timer::Keepalive,
                    now + Duration::from_secs(u64::from(k)),
                );
            }
            _ => self.stop_timer(out, Timer::Keepalive),
        }
    }
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
pub(crate) mod tests;
