//! mad: personalised report bursting for Qlik users.
//!
//! This facade re-exports the crates and builds a [`Registry`] with every built-in source,
//! renderer and channel.

pub use mad_core::*;
pub use {
    mad_core as core, mad_deliver as deliver, mad_qlik as qlik, mad_render as render,
    mad_store as store,
};

/// A registry with every built-in source, renderer and channel.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    mad_qlik::register(&mut registry);
    mad_render::register(&mut registry);
    mad_deliver::register(&mut registry);
    registry
}

// The README's Rust example is compiled with the documentation tests, so it cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeExample;
