//! QVD files, read natively.

use mad_core::Registry;

/// Registers the `qvd` source kind.
pub fn register(_registry: &mut Registry) {}
