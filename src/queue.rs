//! The hand-off between the accept threads (and the waiting room) and the pool's workers.
//!
//! Every wake-up of a sleeping thread costs a context switch, and on a virtual machine
//! often an inter-processor interrupt, which is as dear as serving the connection. So:
//! - a job wakes a sleeping worker only when the workers already awake have more than
//!   [`JOBS_PER_AWAKE_WORKER`] jobs each to get through (an awake worker comes back for
//!   the next job by itself), or when none is awake;
//! - the worker woken is the one that went to sleep last (its stack and the caches are
//!   still warm, and the others stay asleep).
//!
//! That is only right when an awake worker never waits for a client, which is the case on
//! Linux with the waiting room. A worker about to wait for a client says so with
//! [`Queue::blocking`], and a queue made with `lazy: false` (blocking workers) wakes a
//! sleeper for every job, as a plain condition variable would.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Jobs an awake worker may have waiting for it before another worker is woken: each
/// takes some microseconds, so the wait this adds is far below a round trip.
pub const JOBS_PER_AWAKE_WORKER: usize = 4;

pub struct Queue<T> {
    state: Mutex<State<T>>,
    /// One per worker, so that the one woken can be chosen.
    bells: Vec<Condvar>,
    lazy: bool,
}

struct State<T> {
    jobs: VecDeque<T>,
    /// Workers asleep, the last to fall asleep on top.
    sleepers: Vec<usize>,
    asleep: Vec<bool>,
    /// Workers neither asleep nor waiting for a client.
    awake: usize,
    closed: bool,
}

impl<T> Queue<T> {
    /// A queue for `workers` workers, numbered from 0, all counted awake until their
    /// first [`pop`](Queue::pop).
    pub fn new(workers: usize, lazy: bool) -> Self {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                sleepers: Vec::with_capacity(workers),
                asleep: vec![false; workers],
                awake: workers,
                closed: false,
            }),
            bells: (0..workers).map(|_| Condvar::new()).collect(),
            lazy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a job, waking a worker if the awake ones are not enough.
    pub fn push(&self, job: T) {
        let mut st = self.lock();
        st.jobs.push_back(job);
        let woken = self.wake_if_needed(&mut st);
        drop(st);
        if let Some(i) = woken {
            self.bells[i].notify_one();
        }
    }

    fn wake_if_needed(&self, st: &mut State<T>) -> Option<usize> {
        let needed = !self.lazy
            || st.awake == 0
            || st.jobs.len() > st.awake.saturating_mul(JOBS_PER_AWAKE_WORKER);
        if !needed || st.jobs.is_empty() {
            return None;
        }
        let i = st.sleepers.pop()?;
        st.asleep[i] = false;
        st.awake += 1;
        Some(i)
    }

    /// The next job for worker `me`, sleeping while there is none; `None` once the queue
    /// is closed and empty.
    pub fn pop(&self, me: usize) -> Option<T> {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            if st.closed {
                return None;
            }
            st.awake = st.awake.saturating_sub(1);
            st.asleep[me] = true;
            st.sleepers.push(me);
            while st.asleep[me] && !st.closed {
                st = match self.bells[me].wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        }
    }

    /// Runs `f`, during which the calling worker may wait for a client: it does not count
    /// as awake, so jobs that arrive meanwhile wake another worker. (Only the waiting
    /// room's fallback needs it, so only Linux uses it outside the tests.)
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut st = self.lock();
        st.awake = st.awake.saturating_sub(1);
        let woken = self.wake_if_needed(&mut st);
        drop(st);
        if let Some(i) = woken {
            self.bells[i].notify_one();
        }
        let r = f();
        self.lock().awake += 1;
        r
    }

    /// No more jobs: every worker returns from `pop` once the queue is empty.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        drop(st);
        for bell in &self.bells {
            bell.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    /// Waits (with a deadline) until `n` workers sleep.
    fn until_asleep<T>(q: &Queue<T>, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while q.lock().sleepers.len() < n {
            assert!(std::time::Instant::now() < deadline, "workers never slept");
            thread::yield_now();
        }
    }

    /// A queue, what its workers served (worker, job), and the workers.
    type Pool = (
        Arc<Queue<u32>>,
        mpsc::Receiver<(usize, u32)>,
        Vec<thread::JoinHandle<()>>,
    );

    fn workers(n: usize, lazy: bool) -> Pool {
        let q = Arc::new(Queue::new(n, lazy));
        let (tx, rx) = mpsc::channel();
        let handles = (0..n)
            .map(|me| {
                let q = Arc::clone(&q);
                let tx = tx.clone();
                thread::spawn(move || {
                    while let Some(job) = q.pop(me) {
                        let _ = tx.send((me, job));
                    }
                })
            })
            .collect();
        (q, rx, handles)
    }

    /// Closes the queue and waits for every worker of [`workers`] to return.
    fn stop(q: &Queue<u32>, handles: Vec<thread::JoinHandle<()>>) {
        q.close();
        for h in handles {
            h.join().expect("worker");
        }
    }

    #[test]
    fn the_last_worker_to_sleep_is_woken_first() {
        let (q, rx, handles) = workers(3, true);
        until_asleep(&q, 3);
        let top = *q.lock().sleepers.last().expect("three sleepers");
        q.push(7);
        let (who, job) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a job served");
        assert_eq!((who, job), (top, 7));
        // It went back to sleep on top of the stack, so it serves the next one too.
        until_asleep(&q, 3);
        q.push(8);
        let (who, _) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a job served");
        assert_eq!(who, top);
        stop(&q, handles);
    }

    #[test]
    fn every_job_is_served_once_and_close_ends_the_workers() {
        let (q, rx, handles) = workers(4, true);
        for j in 0..1000 {
            q.push(j);
        }
        let mut seen: Vec<u32> = (0..1000)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("job").1)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        stop(&q, handles);
    }

    #[test]
    fn a_lazy_queue_wakes_nobody_while_an_awake_worker_keeps_up() {
        let q: Queue<u32> = Queue::new(2, true);
        // Nobody has popped yet: both count as awake.
        q.push(1);
        assert_eq!(q.lock().awake, 2);
        // Both asleep (simulated): the first job wakes one, the next ones wake nobody
        // until that one is behind by more than JOBS_PER_AWAKE_WORKER.
        {
            let mut st = q.lock();
            st.jobs.clear();
            st.awake = 0;
            st.sleepers = vec![0, 1];
            st.asleep = vec![true, true];
        }
        q.push(1);
        assert_eq!(q.lock().sleepers, vec![0]);
        for j in 0..JOBS_PER_AWAKE_WORKER as u32 - 1 {
            q.push(j);
        }
        assert_eq!(q.lock().sleepers, vec![0], "woke a second worker too early");
        q.push(99);
        assert!(q.lock().sleepers.is_empty(), "never woke the second worker");
    }

    #[test]
    fn a_worker_waiting_for_a_client_does_not_hold_up_the_queue() {
        // Job 0 makes its worker wait (as for a slow client) inside `blocking`: without
        // it, that worker would count as awake and job 5 would wait behind it.
        let q = Arc::new(Queue::new(2, true));
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..2)
            .map(|me| {
                let (q, tx, hold) = (Arc::clone(&q), tx.clone(), Arc::clone(&hold));
                thread::spawn(move || {
                    while let Some(job) = q.pop(me) {
                        if job == 0 {
                            q.blocking(|| {
                                let _ = tx.send(0);
                                let h = hold.lock().expect("hold");
                                let _ = h.recv_timeout(Duration::from_secs(10));
                            });
                        } else {
                            let _ = tx.send(job);
                        }
                    }
                })
            })
            .collect();
        until_asleep(&q, 2);
        q.push(0u32);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(0));
        q.push(5);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(5),
            "job 5 waited for the blocked worker"
        );
        let _ = release.send(());
        stop(&q, handles);
    }

    #[test]
    fn an_eager_queue_wakes_a_sleeper_for_every_job() {
        let q: Queue<u32> = Queue::new(2, false);
        {
            let mut st = q.lock();
            st.awake = 1;
            st.sleepers = vec![1];
            st.asleep = vec![false, true];
        }
        q.push(1);
        assert!(q.lock().sleepers.is_empty());
    }
}
