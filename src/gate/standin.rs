//! The readiness gate's stand-in on systems without one (all but Linux): it never
//! starts, so every connection goes straight to a worker, which waits for a slow
//! client itself, bounded by the deadline: correct, only not flood-proof.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::conn::Conn;
use crate::stats::Stats;

/// No gate can exist here: [`Gate::start`] always says so.
pub(crate) enum Gate {}

impl Gate {
    /// Always `Unsupported`: the caller serves without a gate.
    pub(crate) fn start(
        _capacity: usize,
        _stats: Arc<Stats>,
        _dispatch: impl Fn(Conn) + Send + 'static,
    ) -> io::Result<(Arc<Gate>, JoinHandle<()>)> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn admit(&self, _conn: Conn) -> Option<Conn> {
        match *self {}
    }

    pub(crate) fn evict(&self, _n: usize) {
        match *self {}
    }

    pub(crate) fn stop(&self) {
        match *self {}
    }
}
