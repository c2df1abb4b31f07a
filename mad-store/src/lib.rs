#![doc = include_str!("../README.md")]

mod runlog;

pub use runlog::SqliteRunLog;
