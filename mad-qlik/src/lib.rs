#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod cloud;
pub mod engine;
pub mod qvd;
mod tls;

pub use tls::TlsSettings;

/// Registers the source kinds of this crate (`qvd`, `qlik`).
pub fn register(registry: &mut Registry) {
    qvd::register(registry);
    engine::register(registry);
}
