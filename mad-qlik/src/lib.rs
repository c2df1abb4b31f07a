//! Qlik data sources of mad, each a [`mad_core::DataSource`].

use mad_core::Registry;

pub mod qvd;

/// Registers the source kinds of this crate (`qvd`).
pub fn register(registry: &mut Registry) {
    qvd::register(registry);
}
