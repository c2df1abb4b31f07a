#![doc = include_str!("../README.md")]

use mad_core::Registry;

pub mod r#box;
pub mod common;
pub mod dropbox;
pub mod email;
pub mod folder;
pub mod ftp;
pub mod gdrive;
pub mod graph;
mod http;
pub mod hub;
pub mod s3;
pub mod sftp;

/// Registers every channel kind of this crate (see the table above).
pub fn register(registry: &mut Registry) {
    folder::register(registry);
    email::register(registry);
    graph::register(registry);
    dropbox::register(registry);
    r#box::register(registry);
    gdrive::register(registry);
    ftp::register(registry);
    sftp::register(registry);
    s3::register(registry);
    hub::register(registry);
}
