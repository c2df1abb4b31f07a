//! Definitions on disk: sources, reports, channels and tasks in one TOML or JSON file, and
//! turning them into runnable tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{OnEmpty, Task, TaskChannel};
use crate::error::{Error, Result};
use crate::filter::FilterSet;
use crate::recipient::{Recipient, ValueTableDef};
use crate::registry::{BuildContext, Registry};
use crate::report::{OutputFormat, ReportDef};
use crate::source::{DataSource, FetchRequest, Query};

/// A source or channel definition: its kind and the kind's own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDef {
    pub kind: String,
    /// For channels: the formats this channel receives (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formats: Option<Vec<OutputFormat>>,
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A task as written in a definitions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    pub name: String,
    /// The name of the source the reports read.
    pub source: String,
    /// The names of the reports.
    pub reports: Vec<String>,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    #[serde(default)]
    pub value_tables: Vec<ValueTableDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<String>,
    #[serde(default, skip_serializing_if = "FilterSet::is_unfiltered")]
    pub filters: FilterSet,
    /// The names of the channels.
    pub channels: Vec<String>,
    #[serde(default)]
    pub on_empty: OnEmpty,
}

/// Everything a user defines, as one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    #[serde(default)]
    pub sources: BTreeMap<String, ComponentDef>,
    #[serde(default)]
    pub reports: BTreeMap<String, ReportDef>,
    #[serde(default)]
    pub channels: BTreeMap<String, ComponentDef>,
    #[serde(default)]
    pub tasks: Vec<TaskDef>,
    /// The folder relative input paths are resolved against (the file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The folder relative output paths are resolved against (`base_dir` when absent).
    #[serde(skip)]
    pub output_dir: Option<PathBuf>,
}

impl Workspace {
    /// Reads a `.toml` or `.json` definitions file.
    pub fn load(path: &Path) -> Result<Workspace> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Workspace::from_json(&text, base),
            _ => Workspace::from_toml(&text, base),
        }
        .map_err(|e| e.context(path.display()))
    }

    pub fn from_toml(text: &str, base_dir: impl Into<PathBuf>) -> Result<Workspace> {
        let ws: Workspace =
            toml::from_str(text).map_err(|e| Error::invalid_config(format!("definitions: {e}")))?;
        ws.finish(base_dir.into())
    }

    pub fn from_json(text: &str, base_dir: impl Into<PathBuf>) -> Result<Workspace> {
        let ws: Workspace = serde_json::from_str(text)
            .map_err(|e| Error::invalid_config(format!("definitions: {e}")))?;
        ws.finish(base_dir.into())
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::internal(format!("writing definitions: {e}")))
    }

    /// Resolves relative output paths (target folders, outboxes) against `dir`.
    pub fn with_output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    fn finish(mut self, base_dir: PathBuf) -> Result<Workspace> {
        let ctx = BuildContext::new(&base_dir);
        self.base_dir = base_dir;
        for (name, report) in &mut self.reports {
            if report.name.is_empty() {
                report.name = name.clone();
            }
            if let Some(template) = &report.template {
                report.template = Some(ctx.resolve(template));
            }
            report.validate()?;
        }
        Ok(self)
    }

    /// Builds every source and channel once, so tasks share them.
    pub fn instantiate(&self, registry: &Registry) -> Result<Runtime> {
        let ctx = BuildContext {
            base_dir: self.base_dir.clone(),
            output_dir: self.output_dir.clone(),
        };
        let mut sources = BTreeMap::new();
        for (name, def) in &self.sources {
            let options = self.source_options(name, def);
            let source = registry
                .build_source(&def.kind, &options, &ctx)
                .map_err(|e| e.context(format!("source '{name}'")))?;
            sources.insert(name.clone(), source);
        }
        let mut channels = BTreeMap::new();
        for (name, def) in &self.channels {
            let options = serde_json::Value::Object(def.options.clone());
            let channel = registry
                .build_channel(&def.kind, &options, &ctx)
                .map_err(|e| e.context(format!("channel '{name}'")))?;
            channels.insert(
                name.clone(),
                TaskChannel {
                    name: name.clone(),
                    channel,
                    formats: def.formats.clone(),
                },
            );
        }
        Ok(Runtime {
            workspace: self.clone(),
            sources,
            channels,
            registry: registry.clone(),
        })
    }
}

impl Workspace {
    /// The options a source is built with. A CSV file read as a value table keeps its secret
    /// columns as text, so a password of digits stays exactly as written; a kind given for the
    /// column in the source's `fields` is left as it is.
    fn source_options(&self, name: &str, def: &ComponentDef) -> serde_json::Value {
        let mut options = def.options.clone();
        let secret_columns: Vec<&String> = self
            .tasks
            .iter()
            .flat_map(|task| &task.value_tables)
            .filter(|table| table.source == name)
            .flat_map(|table| &table.secret_columns)
            .collect();
        if def.kind != "csv" || secret_columns.is_empty() {
            return serde_json::Value::Object(options);
        }

        let fields = options
            .entry("fields")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let Some(fields) = fields.as_object_mut() {
            for column in secret_columns {
                fields
                    .entry(column.clone())
                    .or_insert_with(|| serde_json::Value::from("text"));
            }
        }
        serde_json::Value::Object(options)
    }
}

/// A workspace with its sources and channels built, ready to produce tasks.
#[derive(Debug, Clone)]
pub struct Runtime {
    workspace: Workspace,
    sources: BTreeMap<String, Arc<dyn DataSource>>,
    channels: BTreeMap<String, TaskChannel>,
    registry: Registry,
}

impl Runtime {
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    pub fn source(&self, name: &str) -> Result<Arc<dyn DataSource>> {
        self.sources.get(name).cloned().ok_or_else(|| {
            Error::invalid_config(format!(
                "no source named '{name}' (defined: {})",
                names(self.sources.keys())
            ))
        })
    }

    /// Checks every task without fetching anything: the sources, reports and channels it names
    /// exist, its reports are consistent, and its listed recipients have well-formed locales
    /// and known time zones. Recipients from value tables are checked when a run loads them, or by
    /// [`Runtime::check_with_value_tables`].
    pub fn check(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self
            .workspace
            .tasks
            .iter()
            .find(|t| !seen.insert(t.name.as_str()))
        {
            return Err(Error::invalid_config(format!(
                "two tasks are named '{}'; give each its own name",
                twice.name
            )));
        }
        for def in &self.workspace.tasks {
            self.check_task(def)
                .map_err(|e| e.context(format!("task '{}'", def.name)))?;
        }
        Ok(())
    }

    /// [`Runtime::check`], and then every task built as a run would build it (its value tables
    /// read) and checked as a run would check it before starting: a missing file, a
    /// misspelled column, no channels, two recipients with one id, or a recipient's bad time
    /// zone shows before a run. The fields a task names (its burst field, the fields of its
    /// required filters, and, on sources without expressions, its reports' columns) are
    /// looked up in its source's fields, so a misspelled field shows too. This reads the value
    /// tables and asks each task's source for its fields; it fetches no report data.
    pub async fn check_with_value_tables(&self) -> Result<()> {
        self.check()?;
        for def in &self.workspace.tasks {
            let in_task = |e: Error| e.context(format!("task '{}'", def.name));
            let task = self.build_task(def).await.map_err(in_task)?;
            // Its messages name the task.
            crate::engine::validate(&task)?;
            for recipient in &task.recipients {
                recipient.check().map_err(in_task)?;
            }
            self.check_fields(def, &task).await.map_err(in_task)?;
        }
        Ok(())
    }

    /// Every field the task names is one its source has.
    async fn check_fields(&self, def: &TaskDef, task: &Task) -> Result<()> {
        let known: std::collections::BTreeSet<String> = task
            .source
            .fields()
            .await
            .map_err(|e| e.context(format!("reading the fields of source '{}'", def.source)))?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let missing = |what: String, field: &str| {
            Error::invalid_config(format!(
                "{what} names the field '{field}', which source '{}' does not have (fields: {})",
                def.source,
                names(known.iter())
            ))
        };
        if let Some(field) = def.burst.as_deref().filter(|f| !known.contains(*f)) {
            return Err(missing("its burst".into(), field));
        }
        let required = |set: &FilterSet| -> Vec<String> {
            set.rules()
                .filter(|(field, rule)| !rule.optional && !known.contains(*field))
                .map(|(field, _)| field.to_string())
                .collect()
        };
        if let Some(field) = required(&def.filters).first() {
            return Err(missing("its filter".into(), field));
        }
        for recipient in &task.recipients {
            if let Some(field) = required(&recipient.filters).first() {
                return Err(missing(
                    format!("the filter of recipient '{}'", recipient.id),
                    field,
                ));
            }
        }
        let computes = task.source.capabilities().expressions;
        for report in &task.reports {
            if let Some(field) = required(&report.filters).first() {
                return Err(missing(
                    format!("the filter of report '{}'", report.name),
                    field,
                ));
            }
            if computes {
                continue; // columns may be expressions or master items the source resolves
            }
            let columns = report.query().columns;
            if let Some(column) = columns.iter().find(|c| !known.contains(&c.name)) {
                return Err(missing(format!("report '{}'", report.name), &column.name));
            }
        }
        Ok(())
    }

    /// The recipients a value table names, read from its source now.
    async fn value_table(&self, vt: &ValueTableDef) -> Result<Vec<Recipient>> {
        let source = self.source(&vt.source)?;
        let table = source
            .fetch(FetchRequest::new(&Query::default(), &FilterSet::all()))
            .await
            .map_err(|e| e.context(format!("loading the value table from '{}'", vt.source)))?;
        vt.recipients(&table)
    }

    fn check_task(&self, def: &TaskDef) -> Result<()> {
        self.source(&def.source)?;
        for vt in &def.value_tables {
            self.source(&vt.source)
                .map_err(|e| e.context("its value table"))?;
        }
        for name in &def.reports {
            let report = self.workspace.reports.get(name).ok_or_else(|| {
                Error::invalid_config(format!(
                    "no report named '{name}' (defined: {})",
                    names(self.workspace.reports.keys())
                ))
            })?;
            report.validate()?;
        }
        for name in &def.channels {
            if !self.channels.contains_key(name) {
                return Err(Error::invalid_config(format!(
                    "no channel named '{name}' (defined: {})",
                    names(self.channels.keys())
                )));
            }
        }
        for recipient in &def.recipients {
            recipient.check()?;
        }
        Ok(())
    }

    /// The task named `name`, with its value tables loaded.
    pub async fn task(&self, name: &str) -> Result<Task> {
        let def = self
            .workspace
            .tasks
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                Error::invalid_config(format!(
                    "no task named '{name}' (defined: {})",
                    self.workspace
                        .tasks
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        if self
            .workspace
            .tasks
            .iter()
            .filter(|t| t.name == name)
            .count()
            > 1
        {
            return Err(Error::invalid_config(format!(
                "two tasks are named '{name}'; give each its own name"
            )));
        }
        self.build_task(def)
            .await
            .map_err(|e| e.context(format!("task '{name}'")))
    }

    async fn build_task(&self, def: &TaskDef) -> Result<Task> {
        let reports = def
            .reports
            .iter()
            .map(|r| {
                self.workspace
                    .reports
                    .get(r)
                    .cloned()
                    .map(Arc::new)
                    .ok_or_else(|| Error::invalid_config(format!("no report named '{r}'")))
            })
            .collect::<Result<Vec<_>>>()?;
        let channels = def
            .channels
            .iter()
            .map(|c| {
                self.channels
                    .get(c)
                    .cloned()
                    .ok_or_else(|| Error::invalid_config(format!("no channel named '{c}'")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut recipients: Vec<Arc<Recipient>> =
            def.recipients.iter().cloned().map(Arc::new).collect();
        for vt in &def.value_tables {
            recipients.extend(self.value_table(vt).await?.into_iter().map(Arc::new));
        }
        Ok(Task {
            name: def.name.clone(),
            source: self.source(&def.source)?,
            reports,
            recipients,
            burst: def.burst.clone(),
            filters: def.filters.clone(),
            channels,
            renderers: self.registry.renderers().clone(),
            protector: self.registry.protector().cloned(),
            on_empty: def.on_empty,
        })
    }
}

/// Defined names for an error message, or "none".
fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}
