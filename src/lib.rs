//! flashpolicyd: a Flash socket policy server.
pub mod error;
pub mod policy;
pub use error::{Error, Result};
