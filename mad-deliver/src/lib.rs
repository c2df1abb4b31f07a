#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod common;
pub mod email;
pub mod folder;
pub mod ftp;
pub mod sftp;

/// Registers the channel kinds of this crate (`folder`, `email`).
pub fn register(registry: &mut Registry) {
    folder::register(registry);
    email::register(registry);
    ftp::register(registry);
    sftp::register(registry);
}
