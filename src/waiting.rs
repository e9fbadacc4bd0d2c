//! The waiting room (Linux): connections that have not sent their whole request yet,
//! and connections lingering after the reply until the client closes, wait here — in
//! one thread blocked in `epoll_wait` — instead of in a pool worker. Idle and trickling
//! clients therefore cost a descriptor and a few bytes, never a worker, and the fixed
//! pool stays free for the clients that are ready.
//!
//! A parked connection goes back to the pool as soon as it is readable; it is closed
//! when its deadline passes, or evicted (oldest first) when the room is full or the
//! process runs out of descriptors.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::conn::{self, Conn, Phase};
use crate::request::Outcome;
use crate::stats::Stats;

/// Token of the wake-up eventfd in the epoll set.
const WAKE: u64 = u64::MAX;
/// Events handled per `epoll_wait`.
const EVENTS: usize = 256;
/// Longest sleep of the room when nothing is due (it is woken for everything else).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Stale deadline entries tolerated beyond twice the live ones before the heap is
/// rebuilt (see [`Parked::compact`]).
const STALE_SLACK: usize = 1024;

/// The workers' side: hands connections to the room. Cheap to clone.
#[derive(Clone)]
pub struct Parker {
    tx: Sender<Conn>,
    shared: Arc<Signals>,
}

struct Signals {
    wake: EventFd,
    evict: AtomicUsize,
    stop: AtomicBool,
}

/// The room's side: run it on its own thread with [`Room::run`].
pub struct Room {
    rx: Receiver<Conn>,
    shared: Arc<Signals>,
    capacity: usize,
    epoll: Epoll,
}

/// Creates a connected [`Parker`] and [`Room`] holding at most `capacity` connections.
/// Every descriptor the room needs is created here, before any connection is accepted:
/// a flood that fills the descriptor table cannot keep the room from starting.
///
/// # Errors
///
/// What the OS says when the eventfd or the epoll instance cannot be created.
pub fn channel(capacity: usize) -> io::Result<(Parker, Room)> {
    let wake = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
    let shared = Arc::new(Signals {
        wake,
        evict: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel();
    Ok((
        Parker {
            tx,
            shared: Arc::clone(&shared),
        },
        Room {
            rx,
            shared,
            capacity: capacity.max(1),
            epoll,
        },
    ))
}

impl Parker {
    /// Parks `conn` until it is readable or its time is up. If the room is gone, the
    /// connection is handed back.
    ///
    /// # Errors
    ///
    /// The connection itself, when the room no longer runs.
    pub fn park(&self, conn: Conn) -> Result<(), Conn> {
        self.tx.send(conn).map_err(|e| e.0)?;
        self.wake();
        Ok(())
    }

    /// Asks the room to close its `n` oldest connections (to free descriptors).
    pub fn evict(&self, n: usize) {
        self.shared.evict.fetch_add(n, Ordering::SeqCst);
        self.wake();
    }

    /// Asks the room to return once it holds nothing.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        let _ = self.shared.wake.write(1);
    }
}

/// A parked connection and the generation that names it in the deadline heap.
struct Slot {
    conn: Conn,
    generation: u64,
}

/// The parked connections: a slab indexed by epoll token, and a min-heap of wake-up
/// times with lazy deletion (an entry whose generation no longer matches is stale).
#[derive(Default)]
struct Parked {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_generation: u64,
    len: usize,
}

impl Parked {
    fn insert(&mut self, conn: Conn) -> usize {
        let when = conn.deadline;
        self.next_generation += 1;
        let generation = self.next_generation;
        let slot = Slot { conn, generation };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((when, index, generation)));
        self.len += 1;
        self.compact();
        index
    }

    /// Drops the stale deadline entries once they outnumber the live ones by more than
    /// [`STALE_SLACK`], and gives back the memory they held. Without it, a connection
    /// that leaves the room early (its request completed a moment later, its client
    /// closed while lingering) leaves its entry until that deadline would have passed
    /// or reaches the top: beside long-waiting connections, one entry for every
    /// connection parked in the last `--timeout` seconds (a flood of split requests
    /// beside 2,000 held connections grew the daemon by 2.5 to 3 MB, kept after the
    /// flood: docs/performance.md). The rebuild is linear in the entries, and at least `len + slack`
    /// insertions happen between two rebuilds, so it costs O(1) per insertion.
    fn compact(&mut self) {
        if self.heap.len() <= 2 * self.len + STALE_SLACK {
            return;
        }
        let slots = &self.slots;
        self.heap.retain(|Reverse((_, index, generation))| {
            matches!(slots.get(*index), Some(Some(s)) if s.generation == *generation)
        });
        let keep = 2 * (self.heap.len() + STALE_SLACK);
        if self.heap.capacity() > 2 * keep {
            self.heap.shrink_to(keep);
        }
    }

    fn remove(&mut self, index: usize) -> Option<Conn> {
        let slot = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(slot.conn)
    }

    /// Drops stale heap entries and returns the earliest live wake-up time.
    fn next_due(&mut self) -> Option<(Instant, usize)> {
        while let Some(Reverse((when, index, generation))) = self.heap.peek().copied() {
            match self.slots.get(index) {
                Some(Some(s)) if s.generation == generation => return Some((when, index)),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }
}

impl Room {
    /// Serves the room until [`Parker::stop`] was called and it is empty. A readable
    /// connection is read here without waiting; once its request is complete it goes to
    /// `dispatch` (a worker writes the reply), junk and early closes end here, and
    /// lingering connections are drained here.
    ///
    /// # Errors
    ///
    /// What the OS says if `epoll_wait` fails for a reason other than a signal.
    pub fn run(self, stats: &Stats, dispatch: impl Fn(Conn, Outcome)) -> io::Result<()> {
        let epoll = &self.epoll;
        let mut parked = Parked::default();
        let mut events = vec![EpollEvent::empty(); EVENTS];
        let mut last_full_warning: Option<Instant> = None;
        loop {
            let sleep = match parked.next_due() {
                Some((when, _)) => when.saturating_duration_since(Instant::now()),
                None => MAX_SLEEP,
            };
            // Round up so we never wake just before a deadline and spin.
            let ms = sleep.as_micros().div_ceil(1000).min(MAX_SLEEP.as_millis()) as u16;
            let n = match epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => return Err(e.into()),
            };
            for ev in &events[..n] {
                let token = ev.data();
                if token == WAKE {
                    let _ = self.shared.wake.read();
                    continue;
                }
                let index = token as usize;
                // Read in place: a connection that is still incomplete keeps its slot,
                // its registration and its deadline entry.
                let Some(Some(slot)) = parked.slots.get_mut(index) else {
                    continue;
                };
                let decided = match slot.conn.phase {
                    Phase::Request => conn::read_now(&mut slot.conn),
                    Phase::Linger { .. } => {
                        if conn::linger_now(&mut slot.conn) {
                            continue;
                        }
                        None
                    }
                };
                let lingering = matches!(slot.conn.phase, Phase::Linger { .. });
                if decided.is_none() && !lingering {
                    continue;
                }
                let Some(conn) = parked.remove(index) else {
                    continue;
                };
                let _ = epoll.delete(&conn.stream);
                match decided {
                    // Only a complete request needs a worker (to write the reply).
                    Some(outcome @ Outcome::Request { .. }) => dispatch(conn, outcome),
                    Some(other) => {
                        conn::finish(conn, other, stats);
                    }
                    None => {} // lingering is over: close
                }
            }
            while let Ok(conn) = self.rx.try_recv() {
                if parked.len >= self.capacity {
                    self.evict_oldest(epoll, &mut parked, stats);
                    let now = Instant::now();
                    if last_full_warning
                        .map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1))
                    {
                        last_full_warning = Some(now);
                        warn!(
                            "{} slow or idle connections wait for their request: closing the oldest to make room",
                            self.capacity
                        );
                    }
                }
                self.add(epoll, &mut parked, conn);
            }
            for _ in 0..self.shared.evict.swap(0, Ordering::SeqCst) {
                if !self.evict_oldest(epoll, &mut parked, stats) {
                    break;
                }
            }
            let now = Instant::now();
            while let Some((when, index)) = parked.next_due() {
                if when > now {
                    break;
                }
                if let Some(conn) = parked.remove(index) {
                    let _ = epoll.delete(&conn.stream);
                    conn::expire(conn, false, stats);
                }
            }
            if self.shared.stop.load(Ordering::SeqCst) && parked.len == 0 {
                return Ok(());
            }
        }
    }

    fn add(&self, epoll: &Epoll, parked: &mut Parked, conn: Conn) {
        let index = parked.insert(conn);
        let Some(Some(slot)) = parked.slots.get(index) else {
            return;
        };
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        if let Err(e) = epoll.add(&slot.conn.stream, EpollEvent::new(flags, index as u64)) {
            if let Some(conn) = parked.remove(index) {
                debug!("{} cannot wait: {e}", conn.peer);
            }
        }
    }

    /// Closes the connection that has waited longest. Returns false if none is left.
    fn evict_oldest(&self, epoll: &Epoll, parked: &mut Parked, stats: &Stats) -> bool {
        let Some((_, index)) = parked.next_due() else {
            return false;
        };
        if let Some(conn) = parked.remove(index) {
            let _ = epoll.delete(&conn.stream);
            conn::expire(conn, true, stats);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// Connections that leave the room long before their deadline, while a few stay
    /// parked: the deadline heap must not keep an entry for each one that left.
    #[test]
    fn connections_that_leave_early_do_not_pile_up_in_the_deadline_heap() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).unwrap();
        let conn = |secs| {
            Conn::new(
                stream.try_clone().unwrap(),
                addr,
                Duration::from_secs(secs),
                None,
            )
        };
        let mut p = Parked::default();
        // The ones that stay have the earliest deadlines, so the stale entries of the
        // others never reach the top of the heap.
        let stay: Vec<usize> = (0..10).map(|_| p.insert(conn(1))).collect();
        for _ in 0..20_000 {
            let i = p.insert(conn(3));
            assert!(p.remove(i).is_some());
        }
        assert_eq!(p.len, stay.len());
        assert!(
            p.heap.len() <= 2 * p.len + STALE_SLACK,
            "{} heap entries for {} parked connections",
            p.heap.len(),
            p.len
        );
        assert!(p.heap.capacity() <= 4 * (2 * p.len + STALE_SLACK) + 1);
        // The live ones are all still due, earliest first.
        let (_, first) = p.next_due().unwrap();
        assert!(stay.contains(&first));
        for i in stay {
            assert!(p.remove(i).is_some());
        }
        assert_eq!(p.next_due(), None);
    }
}
