//! The folder channel.

use mad_core::Registry;

/// Registers the `folder` channel kind.
pub fn register(_registry: &mut Registry) {}
