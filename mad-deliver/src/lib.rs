#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod r#box;
pub mod common;
pub mod dropbox;
pub mod email;
pub mod folder;
pub mod gdrive;
pub mod graph;
mod http;

/// Registers the channel kinds of this crate (`folder`, `email`).
pub fn register(registry: &mut Registry) {
    folder::register(registry);
    email::register(registry);
    graph::register(registry);
    dropbox::register(registry);
    r#box::register(registry);
    gdrive::register(registry);
}
