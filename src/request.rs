//! The only place that knows `<policy-file-request/>`: incremental prefix matching of
//! the request under a whole-connection deadline (protocol.md §1).

/// The request a player sends: 22 ASCII characters and one NUL (23 bytes).
pub const REQUEST: &[u8; 23] = b"<policy-file-request/>\0";

/// The part of [`REQUEST`] that must arrive before we answer (the NUL is optional).
pub const REQUEST_TEXT: &[u8; 22] = b"<policy-file-request/>";
