//! The Qlik Engine API client (JSON-RPC 2.0 over WebSocket) and the `qlik` data source.
//!
//! - [`Connector`] opens [`EngineSession`]s: one socket each, authenticated per
//!   [`QlikAuth`], with its own selection state and the app open.
//! - [`EngineSession`] makes the typed calls the source needs (`OpenDoc`,
//!   `CreateSessionObject`, `GetLayout`, `GetHyperCubeData`, `SelectValues`, `EvaluateEx`,
//!   ...), matching answers to requests, cancelling requests that time out, and mapping
//!   engine errors and close codes to [`mad_core::ErrorKind`]s.
//! - [`QlikSource`] is the [`mad_core::DataSource`] of kind `qlik`.

mod connector;
mod cube;
mod errors;
mod options;
mod pool;
mod rpc;
mod select;
mod session;
mod source;
mod transport;

pub use connector::Connector;
pub use cube::{MAX_CELLS, page_height};
pub use errors::{EngineError, codes};
pub use options::{QlikAuth, QlikOptions};
pub use rpc::SessionState;
pub use session::{EngineSession, OpenDocOptions, Page};
pub use source::{QlikSource, register};
