#![doc = include_str!("../README.md")]

mod app;
mod auth;
mod data;
mod expr;
mod faults;
mod http;
mod methods;
mod observe;
mod rest;
mod rpc;
mod schema;
mod server;
mod session;
mod tls;

pub use app::{App, MasterDimension, MasterMeasure, SectionAccess, load_table};
pub use auth::{Auth, User};
pub use faults::Fault;
pub use observe::{SelectionEvent, SessionInfo, Violation};
pub use rest::{CloudDouble, CloudDoubleBuilder};
pub use schema::{DEFAULT_SCHEMA_PATH, ProtocolSchema};
pub use server::{QlikDouble, QlikDoubleBuilder};
pub use tls::ClientCertificate;

/// The backend name in errors raised by the double.
const BACKEND: &str = "qlik-double";
