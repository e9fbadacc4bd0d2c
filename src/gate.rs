//! The readiness gate (Linux): the one extension of the design. A fixed pool of
//! workers that block on reads is held by N clients that trickle their request or go
//! silent after connecting (`TCP_DEFER_ACCEPT` only keeps the silent ones out for a
//! while). So a connection whose request has not fully arrived waits here, in one
//! thread blocked in `epoll_wait`, and is handed to the pool (`pool.execute`, by the
//! `dispatch` it is given) once a worker can finish it without waiting: the whole
//! request is queued, bytes that cannot be one, or a hang-up. It only peeks: it never
//! reads or writes a client byte. It closes (and counts) what reaches its deadline,
//! and the oldest when it is full or the process is out of descriptors.
//! Without it (other systems, no epoll) the daemon is the same, only not flood-proof.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::warn;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{recv, MsgFlags};

use crate::conn::{self, Conn};
use crate::request::{Matcher, Progress, READ_CHUNK};
use crate::stats::Stats;

/// Epoll token of the wake-up eventfd.
const WAKE: u64 = u64::MAX;
/// Longest sleep when nothing is due (everything else wakes the gate).
const MAX_SLEEP_MS: u16 = 1000;

/// The accept threads' side of the gate.
pub(crate) struct Gate {
    tx: Sender<(Conn, usize)>,
    wake: EventFd,
    evict: AtomicUsize,
    stop: AtomicBool,
}

/// Peeks at what `conn` has queued: `None` if a worker can finish it now, else how
/// many request bytes have arrived so far.
fn not_ready(conn: &Conn) -> Option<usize> {
    let mut buf = [0u8; READ_CHUNK];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(conn.stream.as_raw_fd(), &mut buf, flags) {
        Ok(0) => None, // hang-up: the worker reads the end at once
        Ok(n) => match Matcher::new().feed(&buf[..n]) {
            Progress::NeedMore => Some(n),
            Progress::Complete { .. } | Progress::Mismatch { .. } => None,
        },
        Err(nix::errno::Errno::EAGAIN) => Some(0),
        Err(_) => None, // the worker's read reports the error
    }
}

impl Gate {
    /// Starts the gate thread, holding at most `capacity` connections; ready ones go to
    /// `dispatch`. Every descriptor it needs is made here, before any accept.
    ///
    /// # Errors
    ///
    /// What the OS says when the eventfd, epoll instance or thread cannot be made.
    pub(crate) fn start(
        capacity: usize,
        stats: Arc<Stats>,
        dispatch: impl Fn(Conn) + Send + 'static,
    ) -> io::Result<(Arc<Gate>, JoinHandle<()>)> {
        let wake =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            tx,
            wake,
            evict: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let held = Held {
            gate: Arc::clone(&gate),
            rx,
            epoll,
            capacity: capacity.max(1),
            conns: BTreeMap::new(),
            next: 0,
        };
        let thread = thread::Builder::new()
            .name("readiness-gate".into())
            .spawn(move || held.run(&stats, dispatch))?;
        Ok((gate, thread))
    }

    /// Returns `conn` if a worker can finish it now; else holds it until it can.
    pub(crate) fn admit(&self, conn: Conn) -> Option<Conn> {
        let Some(received) = not_ready(&conn) else {
            return Some(conn);
        };
        match self.tx.send((conn, received)) {
            Ok(()) => {
                let _ = self.wake.write(1);
                None
            }
            Err(mpsc::SendError((conn, _))) => Some(conn), // the gate has stopped
        }
    }

    /// Asks the gate to close its `n` oldest connections (to free descriptors).
    pub(crate) fn evict(&self, n: usize) {
        self.evict.fetch_add(n, Ordering::SeqCst);
        let _ = self.wake.write(1);
    }

    /// Asks the gate thread to return once it holds nothing.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.write(1);
    }
}

/// The gate thread's state: held connections (with the request bytes seen) by epoll
/// token. Tokens are handed out in arrival order, which is deadline order (every
/// deadline is accept time + `--timeout`): the first entry is the oldest.
struct Held {
    gate: Arc<Gate>,
    rx: Receiver<(Conn, usize)>,
    epoll: Epoll,
    capacity: usize,
    conns: BTreeMap<u64, (Conn, usize)>,
    next: u64,
}

impl Held {
    fn run(mut self, stats: &Stats, dispatch: impl Fn(Conn)) {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut warned: Option<Instant> = None;
        let hung_up = EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        loop {
            let ms = self.oldest().map_or(MAX_SLEEP_MS, |(_, deadline)| {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so it never wakes just before a deadline and spins.
                left.as_micros().div_ceil(1000).min(MAX_SLEEP_MS.into()) as u16
            });
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("readiness gate: epoll_wait failed: {e}; handing on all");
                    break;
                }
            };
            for ev in &events[..n] {
                let token = ev.data();
                if token == WAKE {
                    let _ = self.gate.wake.read();
                } else if let Some((conn, received)) = self.conns.get_mut(&token) {
                    // After a hang-up the worker reads the partial request and the end.
                    match not_ready(conn) {
                        Some(now) if !ev.events().intersects(hung_up) => *received = now,
                        _ => self.remove(token).map_or((), |(c, _)| dispatch(c)),
                    }
                }
            }
            while let Ok((conn, received)) = self.rx.try_recv() {
                if self.conns.len() >= self.capacity {
                    self.close_oldest(true, stats);
                    if warned.map_or(true, |t| t.elapsed() >= Duration::from_secs(1)) {
                        warned = Some(Instant::now());
                        warn!("{} connections wait for their request: closing the oldest to make room", self.capacity);
                    }
                }
                self.insert(conn, received);
            }
            for _ in 0..self.gate.evict.swap(0, Ordering::SeqCst) {
                self.close_oldest(true, stats);
            }
            while self
                .oldest()
                .is_some_and(|(_, deadline)| deadline <= Instant::now())
            {
                self.close_oldest(false, stats);
            }
            if self.gate.stop.load(Ordering::SeqCst) && self.conns.is_empty() {
                return;
            }
        }
        for (_, (conn, _)) in std::mem::take(&mut self.conns) {
            dispatch(conn);
        }
    }

    fn insert(&mut self, conn: Conn, received: usize) {
        let token = self.next;
        self.next += 1;
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if let Err(e) = self.epoll.add(&conn.stream, EpollEvent::new(flags, token)) {
            log::debug!("{} cannot wait for its request: {e}", conn.peer);
            return;
        }
        self.conns.insert(token, (conn, received));
    }

    fn remove(&mut self, token: u64) -> Option<(Conn, usize)> {
        let held = self.conns.remove(&token)?;
        let _ = self.epoll.delete(&held.0.stream);
        Some(held)
    }

    /// The longest-held connection's token and deadline.
    fn oldest(&self) -> Option<(u64, Instant)> {
        let (&token, (conn, _)) = self.conns.first_key_value()?;
        Some((token, conn.deadline))
    }

    fn close_oldest(&mut self, evicted: bool, stats: &Stats) {
        if let Some((conn, received)) = self.oldest().and_then(|(t, _)| self.remove(t)) {
            conn::expire(conn, received, evicted, stats);
        }
    }
}

#[cfg(test)]
mod tests;
