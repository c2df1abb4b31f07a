#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod common;
pub mod dropbox;
pub mod email;
pub mod folder;
pub mod graph;
pub mod r#box;
mod http;

/// Registers the channel kinds of this crate (`folder`, `email`).
pub fn register(registry: &mut Registry) {
    folder::register(registry);
    email::register(registry);
    graph::register(registry);
    dropbox::register(registry);
    r#box::register(registry);
}
