//! The email channel.

use mad_core::Registry;

/// Registers the `email` channel kind.
pub fn register(_registry: &mut Registry) {}
