//! The protocol's fixed numbers, shared by the daemon, the checker and the load client
//! (docs/protocol.md §1–2): where a player asks first, and the low-port rule.

/// The port a player asks for the master policy, and where the daemon listens by
/// default. Only a policy served from here may hold `site-control` (Lightspark).
pub const POLICY_PORT: u16 = 843;

/// Policies served from a port below this may grant any port; from this port or above
/// they grant only ports of this value and above (the low-port rule).
pub const LOW_PORT_LIMIT: u16 = 1024;
