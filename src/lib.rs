//! flashpolicyd: a Flash socket policy server.
pub mod error;
pub mod policy;
pub mod request;
pub use error::{Error, Result};
