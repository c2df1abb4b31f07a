#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod common;
pub mod email;
pub mod folder;
pub mod hub;
pub mod s3;

/// Registers the channel kinds of this crate (`folder`, `email`).
pub fn register(registry: &mut Registry) {
    folder::register(registry);
    email::register(registry);
    s3::register(registry);
    hub::register(registry);
}
