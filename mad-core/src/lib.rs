#![doc = include_str!("../README.md")]

pub mod channel;
mod cpu;
pub mod engine;
pub mod error;
pub mod expr;
pub mod filter;
pub mod format;
pub mod layout;
pub mod placeholder;
pub mod recipient;
pub mod registry;
pub mod render;
pub mod report;
pub mod runlog;
pub mod secret;
pub mod source;
pub mod style;
pub mod summary;
pub mod table;
pub mod value;
pub mod workspace;

pub use channel::{Channel, ChannelCapabilities, Delivery, Receipt};
pub use engine::{Engine, EngineOptions, OnEmpty, RunInfo, Task, TaskChannel};
pub use error::{Error, ErrorKind, Result};
pub use filter::{Filter, FilterSet};
pub use format::Locale;
pub use layout::{Layout, LayoutColumn, LayoutEvent};
pub use placeholder::Placeholders;
pub use recipient::{Recipient, ValueTableDef};
pub use registry::{BuildContext, Registry, parse_options};
pub use render::{
    Document, InlinePart, Passwords, Protector, RenderJob, Rendered, Renderer, RendererCapabilities,
};
pub use report::{
    Aggregate, ChartDef, ChartKind, ChartPlacement, ColumnDef, ExpressionDef, GroupDef,
    OutputFormat, PageBand, PageSetup, ReportDef, SortKey,
};
pub use runlog::{DeliveryKey, MemoryRunLog, PriorAttempt, RunLog};
pub use secret::{Secret, SecretRef};
pub use source::{DataSource, FetchRequest, Query, QueryColumn, SourceCapabilities};
pub use style::{CellStyle, Color, Condition, ConditionalStyle, StyleRule};
pub use summary::{RecipientOutcome, RunSummary, Status};
pub use table::{Column, ColumnBuilder, Table};
pub use value::{Field, FieldKind, NumberFormat, Schema, Value};
pub use workspace::{ComponentDef, Runtime, TaskDef, Workspace};
