//! The protocol's fixed numbers, shared by the daemon, the checker and the load client
//! (docs/protocol.md §3, §5): where a player asks first, how long it waits, and the
//! low-port rule. The request itself is `request::REQUEST`.

use std::time::Duration;

/// The port a player asks for the master policy, and where the daemon listens by
/// default. Only a policy served from here may hold `site-control` (Lightspark).
pub const POLICY_PORT: u16 = 843;

/// Policies served from a port below this may grant any port; from this port or above
/// they grant only ports of this value and above (the low-port rule).
pub const LOW_PORT_LIMIT: u16 = 1024;

/// Flash Player gives up on port 843 after about 3 s: the default `--timeout` of the
/// daemon (the whole-connection deadline) and of the checker.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
