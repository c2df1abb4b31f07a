//! The registry: which source, channel and renderer implementations definitions can name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::render::{Protector, Renderer};
use crate::report::OutputFormat;
use crate::source::{CsvOptions, CsvSource, DataSource};

/// What a factory gets besides its options.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// The folder relative input paths in definitions are relative to.
    pub base_dir: PathBuf,
    /// The folder relative output paths are relative to; `base_dir` when absent.
    pub output_dir: Option<PathBuf>,
}

impl BuildContext {
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        BuildContext {
            base_dir: base_dir.into(),
            output_dir: None,
        }
    }

    /// An input `path` (a data file, a template) made absolute against the definitions' folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// An output `path` (a target folder, an outbox) made absolute against the output folder.
    pub fn resolve_output(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        self.output_dir
            .as_ref()
            .unwrap_or(&self.base_dir)
            .join(path)
    }
}

/// Reads a component's options into its typed configuration, naming the component and the
/// problem (an unknown option is an error, so typos do not pass silently).
pub fn parse_options<T: DeserializeOwned>(kind: &str, options: &serde_json::Value) -> Result<T> {
    serde_json::from_value(options.clone())
        .map_err(|e| Error::invalid_config(format!("the options of a '{kind}' component: {e}")))
}

type SourceFactory =
    dyn Fn(&serde_json::Value, &BuildContext) -> Result<Arc<dyn DataSource>> + Send + Sync;
type ChannelFactory =
    dyn Fn(&serde_json::Value, &BuildContext) -> Result<Arc<dyn Channel>> + Send + Sync;

/// Maps the `kind` of a definition to the code that builds it.
#[derive(Clone)]
pub struct Registry {
    sources: BTreeMap<String, Arc<SourceFactory>>,
    channels: BTreeMap<String, Arc<ChannelFactory>>,
    renderers: BTreeMap<OutputFormat, Arc<dyn Renderer>>,
    protector: Option<Arc<dyn Protector>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("renderers", &self.renderers.keys().collect::<Vec<_>>())
            .field("protector", &self.protector.is_some())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry knowing the sources of this crate (`csv`).
    pub fn new() -> Self {
        let mut registry = Registry {
            sources: BTreeMap::new(),
            channels: BTreeMap::new(),
            renderers: BTreeMap::new(),
            protector: None,
        };
        registry.register_source("csv", |options, ctx| {
            let mut options: CsvOptions = parse_options("csv", options)?;
            options.path = ctx.resolve(&options.path);
            Ok(Arc::new(CsvSource::new(options)))
        });
        registry
    }

    pub fn register_source<F>(&mut self, kind: &str, factory: F) -> &mut Self
    where
        F: Fn(&serde_json::Value, &BuildContext) -> Result<Arc<dyn DataSource>>
            + Send
            + Sync
            + 'static,
    {
        self.sources.insert(kind.to_string(), Arc::new(factory));
        self
    }

    pub fn register_channel<F>(&mut self, kind: &str, factory: F) -> &mut Self
    where
        F: Fn(&serde_json::Value, &BuildContext) -> Result<Arc<dyn Channel>>
            + Send
            + Sync
            + 'static,
    {
        self.channels.insert(kind.to_string(), Arc::new(factory));
        self
    }

    pub fn register_renderer(&mut self, renderer: Arc<dyn Renderer>) -> &mut Self {
        self.renderers.insert(renderer.format(), renderer);
        self
    }

    pub fn renderers(&self) -> &BTreeMap<OutputFormat, Arc<dyn Renderer>> {
        &self.renderers
    }

    pub fn register_protector(&mut self, protector: Arc<dyn Protector>) -> &mut Self {
        self.protector = Some(protector);
        self
    }

    pub fn protector(&self) -> Option<&Arc<dyn Protector>> {
        self.protector.as_ref()
    }

    pub fn build_source(
        &self,
        kind: &str,
        options: &serde_json::Value,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn DataSource>> {
        let factory = self.sources.get(kind).ok_or_else(|| {
            Error::invalid_config(format!(
                "unknown source kind '{kind}' (known: {})",
                self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        factory(options, ctx)
    }

    pub fn build_channel(
        &self,
        kind: &str,
        options: &serde_json::Value,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn Channel>> {
        let factory = self.channels.get(kind).ok_or_else(|| {
            Error::invalid_config(format!(
                "unknown channel kind '{kind}' (known: {})",
                self.channels.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        factory(options, ctx)
    }
}
