//! The only place that knows `<policy-file-request/>`: incremental prefix matching of
//! the request (docs/protocol.md §1), and reading it from a socket under a deadline that
//! covers the whole connection.
//!
//! The 22 characters are enough to answer (hand tests send no NUL); a byte that cannot
//! continue the request rejects the connection at once.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The request a player sends: 22 ASCII characters and one NUL (23 bytes).
pub const REQUEST: &[u8; 23] = b"<policy-file-request/>\0";

/// The part of [`REQUEST`] that must arrive before we answer (the NUL is optional).
pub const REQUEST_TEXT: &[u8; 22] = b"<policy-file-request/>";

/// Bytes read per `read` call while matching: the request and a little more, so a
/// trailing byte that came in the same segment is seen.
pub(crate) const READ_CHUNK: usize = 64;

/// What the bytes seen so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A proper prefix of the request: keep reading.
    NeedMore,
    /// The 22 characters have arrived.
    Complete {
        /// The NUL came right after them.
        nul: bool,
        /// Other bytes came after the request (or in place of the NUL).
        extra: bool,
    },
    /// Byte number `at` (0-based, counted over the whole connection) cannot be part of
    /// the request.
    Mismatch {
        /// Offset of the first byte that differs.
        at: usize,
    },
}

/// Incremental matcher: feed it what each `read` returns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    matched: usize,
}

impl Matcher {
    /// A matcher that has seen nothing.
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// How many bytes of the request have matched so far (0 to 22).
    pub fn matched(&self) -> usize {
        self.matched
    }

    /// Feeds the next bytes received. Once it returns `Complete` or `Mismatch` the
    /// connection is decided and further calls are not meaningful.
    pub fn feed(&mut self, data: &[u8]) -> Progress {
        let want = &REQUEST_TEXT[self.matched..];
        let n = want.len().min(data.len());
        if let Some(i) = (0..n).find(|&i| data[i] != want[i]) {
            return Progress::Mismatch {
                at: self.matched + i,
            };
        }
        self.matched += n;
        if self.matched < REQUEST_TEXT.len() {
            return Progress::NeedMore;
        }
        let rest = &data[n..];
        let nul = rest.first() == Some(&0);
        let extra = rest.len() > usize::from(nul);
        Progress::Complete { nul, extra }
    }
}

/// How reading the request ended.
#[derive(Debug)]
pub enum Outcome {
    /// The request arrived: answer it.
    Request {
        /// The NUL arrived too, with nothing after it: the client is done sending.
        nul: bool,
        /// Bytes came after the request: drain before closing.
        extra: bool,
    },
    /// A byte that cannot be part of the request.
    Junk {
        /// Offset of the first bad byte.
        at: usize,
        /// The bad byte.
        byte: u8,
    },
    /// The client closed before the request was complete.
    Closed {
        /// Request bytes received before the close.
        received: usize,
    },
    /// The deadline passed before the request was complete.
    TimedOut {
        /// Request bytes received in time.
        received: usize,
    },
    /// The connection failed (reset, ...).
    Failed {
        /// What the OS said.
        error: io::Error,
        /// Request bytes received before it failed.
        received: usize,
    },
}

/// A byte stream whose reads can be bounded in time: a socket, or a test double.
pub trait TimedRead: Read {
    /// Bounds the next reads to `limit` (never zero).
    ///
    /// # Errors
    ///
    /// Whatever the OS says when setting the timeout.
    fn set_read_limit(&mut self, limit: Duration) -> io::Result<()>;
}

/// True for the errors an expired socket timeout surfaces as (`WouldBlock` on Unix,
/// `TimedOut` elsewhere).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Time left until `deadline`, or `None` if it has passed.
pub(crate) fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Reads until the request is complete, refuted, or `deadline` passes; each read gets
/// only the time left.
pub fn read_request<S: TimedRead>(stream: &mut S, deadline: Instant) -> Outcome {
    let matcher = &mut Matcher::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let Some(left) = time_left(deadline) else {
            return Outcome::TimedOut {
                received: matcher.matched(),
            };
        };
        if let Err(e) = stream.set_read_limit(left) {
            return Outcome::Failed {
                error: e,
                received: matcher.matched(),
            };
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                return Outcome::Closed {
                    received: matcher.matched(),
                }
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => continue, // the loop head decides
            Err(e) => {
                return Outcome::Failed {
                    error: e,
                    received: matcher.matched(),
                }
            }
        };
        log::trace!("read {:?}", String::from_utf8_lossy(&buf[..n]));
        if let Some(outcome) = step(matcher, &buf[..n]) {
            return outcome;
        }
    }
}

/// Feeds `data` (the bytes of one read) to `matcher`: `None` while more is needed, else
/// the decided [`Outcome`] (`Request` or `Junk`).
pub(crate) fn step(matcher: &mut Matcher, data: &[u8]) -> Option<Outcome> {
    let before = matcher.matched();
    match matcher.feed(data) {
        Progress::NeedMore => None,
        Progress::Complete { nul, extra } => Some(Outcome::Request { nul, extra }),
        Progress::Mismatch { at } => Some(Outcome::Junk {
            at,
            // `at` counts from the start of the connection; `data` starts at `before`.
            byte: data.get(at - before).copied().unwrap_or(0),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn whole_request_with_nul() {
        let mut m = Matcher::new();
        assert_eq!(
            m.feed(REQUEST),
            Progress::Complete {
                nul: true,
                extra: false
            }
        );
    }

    #[test]
    fn text_without_nul_is_enough() {
        let mut m = Matcher::new();
        assert_eq!(
            m.feed(b"<policy-file-request/>"),
            Progress::Complete {
                nul: false,
                extra: false
            }
        );
    }

    #[test]
    fn every_split_of_the_request() {
        for cut in 1..REQUEST.len() {
            let mut m = Matcher::new();
            let first = m.feed(&REQUEST[..cut]);
            if cut < 22 {
                assert_eq!(first, Progress::NeedMore, "cut {cut}");
                let expect = Progress::Complete {
                    nul: true,
                    extra: false,
                };
                assert_eq!(m.feed(&REQUEST[cut..]), expect, "cut {cut}");
            } else {
                assert_eq!(
                    first,
                    Progress::Complete {
                        nul: false,
                        extra: false
                    }
                );
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut m = Matcher::new();
        for (i, b) in REQUEST_TEXT.iter().enumerate() {
            let p = m.feed(std::slice::from_ref(b));
            if i < 21 {
                assert_eq!(p, Progress::NeedMore);
            } else {
                assert_eq!(
                    p,
                    Progress::Complete {
                        nul: false,
                        extra: false
                    }
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_flagged() {
        let mut m = Matcher::new();
        assert_eq!(
            m.feed(b"<policy-file-request/>\0junk"),
            Progress::Complete {
                nul: true,
                extra: true
            }
        );
        let mut m = Matcher::new();
        assert_eq!(
            m.feed(b"<policy-file-request/>\r\n"),
            Progress::Complete {
                nul: false,
                extra: true
            }
        );
        let mut m = Matcher::new();
        assert_eq!(
            m.feed(b"<policy-file-request/>\0\0"),
            Progress::Complete {
                nul: true,
                extra: true
            }
        );
    }

    #[test]
    fn junk_is_rejected_at_the_first_differing_byte() {
        let cases: &[(&[u8], usize)] = &[
            (b"GET / HTTP/1.0\r\n\r\n", 0),
            (b"\0<policy-file-request/>", 0),
            (b"\n", 0),
            (b"<policy-file-request />", 20),
            (b"<POLICY-FILE-REQUEST/>", 1),
            (b"<policy-file-requesT/>", 19),
            (b"<p\xff", 2),
            (b"<cross-domain-policy>", 1),
        ];
        for (input, at) in cases {
            let mut m = Matcher::new();
            assert_eq!(m.feed(input), Progress::Mismatch { at: *at }, "{input:?}");
        }
        // Across reads, the offset counts the whole connection.
        let mut m = Matcher::new();
        assert_eq!(m.feed(b"<policy"), Progress::NeedMore);
        assert_eq!(m.feed(b"-file-x"), Progress::Mismatch { at: 13 });
    }

    #[test]
    fn empty_read_changes_nothing() {
        let mut m = Matcher::new();
        assert_eq!(m.feed(b""), Progress::NeedMore);
        assert_eq!(m.matched(), 0);
    }

    /// A stream that hands out pre-set chunks, then EOF, or a timeout.
    struct Script {
        chunks: VecDeque<io::Result<Vec<u8>>>,
        limits: Vec<Duration>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.chunks.pop_front() {
                None => Ok(0),
                Some(Err(e)) => Err(e),
                Some(Ok(c)) => {
                    assert!(c.len() <= buf.len());
                    buf[..c.len()].copy_from_slice(&c);
                    Ok(c.len())
                }
            }
        }
    }

    impl TimedRead for Script {
        fn set_read_limit(&mut self, limit: Duration) -> io::Result<()> {
            assert!(!limit.is_zero());
            self.limits.push(limit);
            Ok(())
        }
    }

    fn script(chunks: Vec<io::Result<Vec<u8>>>) -> Script {
        Script {
            chunks: chunks.into(),
            limits: Vec::new(),
        }
    }

    #[test]
    fn read_request_outcomes() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut s = script(vec![
            Ok(b"<policy-".to_vec()),
            Ok(b"file-request/>\0".to_vec()),
        ]);
        assert!(matches!(
            read_request(&mut s, far),
            Outcome::Request {
                nul: true,
                extra: false
            }
        ));
        // Every read was bounded by no more than the time left.
        assert_eq!(s.limits.len(), 2);
        assert!(s.limits.iter().all(|l| *l <= Duration::from_secs(60)));

        let mut s = script(vec![Ok(b"<pol".to_vec())]);
        assert!(matches!(
            read_request(&mut s, far),
            Outcome::Closed { received: 4 }
        ));

        let mut s = script(vec![Ok(b"<pol".to_vec()), Ok(b"X".to_vec())]);
        assert!(matches!(
            read_request(&mut s, far),
            Outcome::Junk { at: 4, byte: b'X' }
        ));

        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let mut s = script(vec![Ok(b"<".to_vec()), Err(reset)]);
        assert!(matches!(read_request(&mut s, far), Outcome::Failed { .. }));

        let mut s = script(vec![Ok(b"<policy-file-request/>".to_vec())]);
        assert!(matches!(
            read_request(&mut s, far),
            Outcome::Request {
                nul: false,
                extra: false
            }
        ));
    }

    #[test]
    fn past_deadline_times_out_without_reading() {
        let past = Instant::now();
        let mut s = script(vec![Ok(REQUEST.to_vec())]);
        assert!(matches!(
            read_request(&mut s, past),
            Outcome::TimedOut { received: 0 }
        ));
        assert_eq!(s.chunks.len(), 1, "nothing may be read after the deadline");
    }

    #[test]
    fn timeouts_loop_until_the_deadline() {
        let soon = Instant::now() + Duration::from_millis(30);
        let mut chunks = vec![Ok(b"<p".to_vec())];
        for _ in 0..1000 {
            chunks.push(Err(io::Error::from(io::ErrorKind::WouldBlock)));
        }
        let mut s = script(chunks);
        // Script timeouts return at once, so this loops until the real deadline passes.
        match read_request(&mut s, soon) {
            Outcome::TimedOut { received } => assert_eq!(received, 2),
            Outcome::Closed { received } => assert_eq!(received, 2), // ran out of script first
            other => panic!("{other:?}"),
        }
    }
}
