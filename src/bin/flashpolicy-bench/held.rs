//! Held connections: slowloris pressure beside the measuring clients. Each holder
//! thread opens its share of slots, then sweeps them every [`SWEEP`] on non-blocking
//! sockets: idle slots send nothing, trickling slots send the request one byte per
//! second. A slot the server closes is reopened at most once per second, as a
//! persistent attacker would.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{classify_connect, contains, Failure, MARKER};
use crate::net;
use flashpolicyd::request::REQUEST;

/// How often every held slot is serviced.
pub const SWEEP: Duration = Duration::from_millis(250);
/// A slot the server closed is reopened no sooner than this after its last attempt.
pub const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// A trickling slot sends one byte this often.
pub const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// Longest connect of a held slot.
const HOLD_CONNECT_MAX: Duration = Duration::from_secs(2);
/// Bytes of a reply kept to look for the policy marker.
const KEEP: usize = 4096;

/// What a held slot does while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Sends nothing.
    Idle,
    /// Sends the request one byte per [`TRICKLE_EVERY`].
    Trickle,
}

/// Counters shared by the holder threads and read by the runner.
#[derive(Debug, Default)]
pub struct Shared {
    /// Slots open right now.
    pub open: AtomicUsize,
    /// Holder threads done with their initial opening.
    pub setup_done: AtomicUsize,
    /// Successful connects, the initial ones included.
    pub opened: AtomicU64,
}

/// What one holder thread saw, summed by the runner.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Connects that failed, by [`Failure`] index.
    pub connect_errors: [u64; Failure::ALL.len()],
    /// Slots the server closed (EOF or reset).
    pub server_closed: u64,
    /// ... of which after sending a policy.
    pub replies: u64,
    /// Connects after the first one of each slot.
    pub reopens: u64,
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        for (a, b) in self.connect_errors.iter_mut().zip(other.connect_errors) {
            *a += b;
        }
        self.server_closed += other.server_closed;
        self.replies += other.replies;
        self.reopens += other.reopens;
    }
}

/// The fixed part of a holder's job.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub target: SocketAddr,
    /// Spread of loopback source addresses (see [`net::source_for`]).
    pub src_ips: u8,
    /// Global index of this holder's first slot.
    pub first: usize,
    /// Slots of this holder.
    pub count: usize,
    /// `Some(style)` for every slot, or `None` to alternate idle, trickle, idle...
    pub style: Option<Style>,
    /// Initial opening must end by then.
    pub setup_deadline: Instant,
    /// The holder returns at this instant whatever happens.
    pub hard_deadline: Instant,
}

struct Slot {
    stream: Option<TcpStream>,
    style: Style,
    sent: usize,
    next_write: Instant,
    last_attempt: Instant,
    got: Vec<u8>,
}

/// Runs one holder until `stop` is set or its hard deadline passes, then closes its
/// slots. Never blocks on a socket for longer than a connect.
pub fn hold(plan: &Plan, shared: &Shared, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..plan.count)
        .map(|j| Slot {
            stream: None,
            style: plan.style.unwrap_or(if (plan.first + j) % 2 == 0 {
                Style::Idle
            } else {
                Style::Trickle
            }),
            sent: 0,
            next_write: now,
            last_attempt: now,
            got: Vec::new(),
        })
        .collect();
    for (j, slot) in slots.iter_mut().enumerate() {
        if stop.load(Relaxed) || Instant::now() >= plan.setup_deadline {
            break;
        }
        open(plan, shared, slot, plan.first + j, &mut tally);
    }
    shared.setup_done.fetch_add(1, Relaxed);
    while !stop.load(Relaxed) && Instant::now() < plan.hard_deadline {
        let t = Instant::now();
        for (j, slot) in slots.iter_mut().enumerate() {
            if stop.load(Relaxed) || Instant::now() >= plan.hard_deadline {
                break;
            }
            let now = Instant::now();
            if slot.stream.is_some() {
                service(shared, slot, &mut tally, now);
            } else if now.duration_since(slot.last_attempt) >= REOPEN_EVERY {
                tally.reopens += 1;
                open(plan, shared, slot, plan.first + j, &mut tally);
            }
        }
        if let Some(rest) = SWEEP.checked_sub(t.elapsed()) {
            thread::sleep(rest);
        }
    }
    for slot in &mut slots {
        if slot.stream.take().is_some() {
            shared.open.fetch_sub(1, Relaxed);
        }
    }
    tally
}

fn open(plan: &Plan, shared: &Shared, slot: &mut Slot, index: usize, tally: &mut Tally) {
    let now = Instant::now();
    slot.last_attempt = now;
    let src = net::source_for(&plan.target, plan.src_ips, index as u64);
    let budget = HOLD_CONNECT_MAX.min(plan.hard_deadline.saturating_duration_since(now));
    if budget.is_zero() {
        return;
    }
    match net::connect(plan.target, src, budget) {
        Ok(s) => {
            if s.set_nonblocking(true).is_err() {
                return; // dropping closes it; retried like a refused connect
            }
            slot.stream = Some(s);
            slot.sent = 0;
            slot.got.clear();
            slot.next_write = Instant::now();
            shared.open.fetch_add(1, Relaxed);
            shared.opened.fetch_add(1, Relaxed);
        }
        Err(e) => tally.connect_errors[classify_connect(&e).index()] += 1,
    }
}

/// Trickles a byte if one is due, drains what the server sent, notices a close.
fn service(shared: &Shared, slot: &mut Slot, tally: &mut Tally, now: Instant) {
    let Some(s) = slot.stream.as_mut() else {
        return;
    };
    let mut closed = false;
    if slot.style == Style::Trickle && slot.sent < REQUEST.len() && now >= slot.next_write {
        match s.write(&REQUEST[slot.sent..=slot.sent]) {
            Ok(1) => {
                slot.sent += 1;
                slot.next_write += TRICKLE_EVERY;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            _ => closed = true,
        }
    }
    let mut buf = [0u8; 1024];
    // Bounded: a policy is at most 10 kB, so a few reads empty the socket.
    for _ in 0..64 {
        if closed {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => {
                if slot.got.len() < KEEP {
                    slot.got.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => closed = true,
        }
    }
    if closed {
        tally.server_closed += 1;
        if contains(&slot.got, MARKER) {
            tally.replies += 1;
        }
        slot.stream = None;
        slot.last_attempt = now;
        shared.open.fetch_sub(1, Relaxed);
    }
}
