#![doc = include_str!("../README.md")]

pub mod hub;
mod runlog;

pub use hub::{HubEntry, HubIndex};
pub use runlog::SqliteRunLog;
