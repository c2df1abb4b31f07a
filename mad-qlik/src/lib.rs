#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod qvd;

/// Registers the source kinds of this crate (`qvd`).
pub fn register(registry: &mut Registry) {
    qvd::register(registry);
}
