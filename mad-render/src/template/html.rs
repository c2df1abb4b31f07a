//! HTML templates in Jinja syntax (minijinja), for report pages and e-mail bodies.
//!
//! Every value is HTML-escaped when printed; only `table` (the default table, already escaped)
//! is printed as it is. A variable or attribute the template names but the report does not
//! have is an error, never an empty string.
//!
//! What a template sees:
//! - `title`, `subtitle` (or none): with placeholders filled;
//! - `recipient`, `run`, `task`, `report`: `recipient.name`, `run.date`, ... (every
//!   placeholder with a dot in its name, grouped by the part before the dot);
//! - `placeholders`: every placeholder by its full name (`placeholders["Region"]`);
//! - `locale`: the recipient's locale tag;
//! - `filters`: a list of `{field, values, exclude}`, and `filters_text` as one line;
//! - `columns`: a list of `{header, numeric}`;
//! - `rows`: the rows in report order, each a list of the texts the report shows;
//! - `groups`: the outermost groups, each `{field, value, level, rows, totals, groups}`, where
//!   `rows` holds every row of the group and `groups` its inner groups; `totals` is none
//!   without subtotals;
//! - `totals`: the grand totals, one text per column (empty where a column has no total), or
//!   none without a grand total;
//! - `table`: the report's default table, ready to print;
//! - `charts`: the report's charts as PNG images, each `{src, alt, width, height, before}`
//!   (`src` a `cid:` or `data:` URL, `before` whether the report places it above the table),
//!   printed as `<img src="{{ c.src }}" alt="{{ c.alt }}" width="{{ c.width }}">`; empty for
//!   an empty table. A report with charts whose template never names `charts` is
//!   `Unsupported`, so charts are never dropped without a word.

use std::collections::BTreeMap;
use std::path::Path;

use mad_core::format::display;
use mad_core::{Error, ErrorKind, Layout, LayoutEvent, RenderJob, Result, Value as Cell};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::TemplateCache;
use crate::html::BACKEND;
use crate::html::page::{Chart, table_fragment};

/// Names of the template variables; placeholders named like them are only in `placeholders`.
const RESERVED: [&str; 14] = [
    "title",
    "subtitle",
    "placeholders",
    "locale",
    "filters",
    "filters_text",
    "columns",
    "rows",
    "groups",
    "totals",
    "table",
    "charts",
    "loop",
    "self",
];

/// A parsed HTML template.
pub struct HtmlTemplate {
    env: Environment<'static>,
    name: String,
}

impl std::fmt::Debug for HtmlTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlTemplate")
            .field("name", &self.name)
            .finish()
    }
}

impl HtmlTemplate {
    pub(crate) fn parse(path: &Path, bytes: Vec<u8>) -> Result<HtmlTemplate> {
        let source = String::from_utf8(bytes).map_err(|_| {
            Error::invalid_input(format!(
                "the template {} is not UTF-8 text; save it as UTF-8",
                path.display()
            ))
        })?;
        let name = path
            .file_name()
            .map_or_else(|| "template".into(), |n| n.to_string_lossy().into_owned());
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_template_owned(name.clone(), source)
            .map_err(|e| template_error(path, &e))?;
        Ok(HtmlTemplate { env, name })
    }

    fn render(&self, path: &Path, context: Value) -> Result<String> {
        let template = self
            .env
            .get_template(&self.name)
            .map_err(|e| template_error(path, &e))?;
        template
            .render(context)
            .map_err(|e| template_error(path, &e))
    }

    /// Whether the template names the variable `name` anywhere.
    fn names(&self, name: &str) -> bool {
        self.env
            .get_template(&self.name)
            .is_ok_and(|t| t.undeclared_variables(false).contains(name))
    }
}

fn template_error(path: &Path, err: &minijinja::Error) -> Error {
    let mut message = format!("the template {}: {err}", path.display());
    if err.kind() == minijinja::ErrorKind::UndefinedError {
        message.push_str(
            " (the variables are title, subtitle, recipient, run, task, report, placeholders, \
             locale, filters, filters_text, columns, rows, groups, totals, table and charts)",
        );
    }
    Error::invalid_config(message).with_backend(BACKEND)
}

/// Renders `job` through the HTML template at `path`, with the report's `charts`.
pub(crate) fn render(
    cache: &TemplateCache,
    path: &Path,
    job: &RenderJob<'_>,
    charts: &[Chart],
) -> Result<Vec<u8>> {
    let template = cache.html(path, BACKEND)?;
    if !job.report.charts.is_empty() && !template.names("charts") {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the report has charts, but the template {} never shows `charts`; print them \
                 (`{{% for c in charts %}}<img src=\"{{{{ c.src }}}}\" alt=\"{{{{ c.alt }}}}\">\
                 {{% endfor %}}`) or remove the charts from the report",
                path.display()
            ),
        )
        .with_backend(BACKEND));
    }
    let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
    let mut context = Context {
        job,
        layout: &layout,
    }
    .build()?;
    context.insert("charts".into(), chart_values(charts));
    Ok(template.render(path, Value::from(context))?.into_bytes())
}

/// The charts as template values.
fn chart_values(charts: &[Chart]) -> Value {
    let charts: Vec<Value> = charts
        .iter()
        .map(|chart| {
            let mut value = BTreeMap::new();
            value.insert("src", Value::from(chart.src.clone()));
            value.insert("alt", Value::from(chart.alt.clone()));
            value.insert("width", Value::from(chart.width));
            value.insert("height", Value::from(chart.height));
            value.insert("before", Value::from(chart.before));
            Value::from(value)
        })
        .collect();
    Value::from(charts)
}

struct Context<'a> {
    job: &'a RenderJob<'a>,
    layout: &'a Layout,
}

impl Context<'_> {
    fn build(&self) -> Result<BTreeMap<String, Value>> {
        let fill = |t: &str| {
            self.job
                .placeholders
                .render(t)
                .map_err(|e| e.with_backend(BACKEND))
        };
        let mut context = BTreeMap::new();
        context.insert(
            "title".to_string(),
            Value::from(fill(&self.job.report.title)?),
        );
        let subtitle = match &self.job.report.subtitle {
            Some(s) => Value::from(fill(s)?),
            None => Value::from(()),
        };
        context.insert("subtitle".into(), subtitle);
        self.placeholders(&mut context);
        context.insert("locale".into(), Value::from(self.job.locale.tag.clone()));
        context.insert("filters".into(), self.filters());
        context.insert(
            "filters_text".into(),
            Value::from(self.job.filters.to_string()),
        );
        context.insert("columns".into(), self.columns());
        let (rows, groups, totals) = self.walk();
        context.insert("rows".into(), Value::from(rows));
        context.insert("groups".into(), Value::from(groups));
        context.insert("totals".into(), totals);
        let table = table_fragment(self.layout, self.job.locale);
        context.insert("table".into(), Value::from_safe_string(table));
        Ok(context)
    }

    /// `placeholders` by full name, and the dotted ones grouped: `recipient.name`.
    fn placeholders(&self, context: &mut BTreeMap<String, Value>) {
        let mut all = BTreeMap::new();
        let mut grouped: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (name, value) in self.job.placeholders.iter() {
            all.insert(name.to_string(), Value::from(value));
            if let Some((group, key)) = name.split_once('.')
                && !RESERVED.contains(&group)
            {
                let group = grouped.entry(group.to_string()).or_default();
                group.insert(key.to_string(), Value::from(value));
            }
        }
        context.insert("placeholders".into(), Value::from(all));
        for (group, values) in grouped {
            context.insert(group, Value::from(values));
        }
    }

    /// The filters as written (a field both allowing and excluding values gives two).
    fn filters(&self) -> Value {
        let filters: Vec<Value> = self
            .job
            .filters
            .to_filters()
            .iter()
            .map(|written| {
                let (field, values, exclude) = (&written.field, &written.values, written.exclude);
                let mut filter = BTreeMap::new();
                filter.insert("field", Value::from(field));
                filter.insert(
                    "values",
                    Value::from(
                        values
                            .iter()
                            .map(|v| Value::from(v.as_str()))
                            .collect::<Vec<_>>(),
                    ),
                );
                filter.insert("exclude", Value::from(exclude));
                Value::from(filter)
            })
            .collect();
        Value::from(filters)
    }

    fn columns(&self) -> Value {
        let columns: Vec<Value> = self
            .layout
            .columns
            .iter()
            .map(|c| {
                let mut column = BTreeMap::new();
                column.insert("header", Value::from(c.header.as_str()));
                column.insert("numeric", Value::from(c.is_numeric()));
                Value::from(column)
            })
            .collect();
        Value::from(columns)
    }

    fn row_texts(&self, row: usize) -> Value {
        let texts: Vec<Value> = self
            .layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Value::from(c.display(self.layout.value(row, i), self.job.locale)))
            .collect();
        Value::from(texts)
    }

    fn total_texts(&self, totals: &[Option<f64>]) -> Value {
        let texts: Vec<Value> = self
            .layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match (c.total, totals.get(i).copied().flatten()) {
                (Some(_), Some(total)) => Value::from(c.display_total(total, self.job.locale)),
                _ => Value::from(""),
            })
            .collect();
        Value::from(texts)
    }

    fn group_text(&self, level: usize, value: &Cell) -> String {
        let index = self.layout.groups[level].0;
        match self.layout.columns.iter().find(|c| c.index == index) {
            Some(column) => column.display(value, self.job.locale),
            None => {
                let field = &self.layout.table.fields()[index];
                display(value, field.format.as_ref(), self.job.locale)
            }
        }
    }

    /// The rows, the group tree and the grand totals, in one walk.
    fn walk(&self) -> (Vec<Value>, Vec<Value>, Value) {
        let mut rows = Vec::with_capacity(self.layout.table.len());
        let mut roots = Vec::new();
        let mut open: Vec<Group> = Vec::new();
        let mut grand = Value::from(());
        self.layout.walk(|event| match event {
            LayoutEvent::GroupHeader {
                level,
                field,
                value,
            } => {
                close_to(level, &mut open, &mut roots);
                open.push(Group {
                    field: field.to_string(),
                    value: self.group_text(level, value),
                    level,
                    rows: Vec::new(),
                    groups: Vec::new(),
                    totals: Value::from(()),
                });
            }
            LayoutEvent::Row(row) => {
                let texts = self.row_texts(row);
                for group in &mut open {
                    group.rows.push(texts.clone());
                }
                rows.push(texts);
            }
            LayoutEvent::GroupFooter { level, totals, .. } => {
                if let Some(group) = open.get_mut(level) {
                    group.totals = self.total_texts(totals);
                }
                close_to(level, &mut open, &mut roots);
            }
            LayoutEvent::GrandTotal { totals, .. } => {
                if self.layout.has_totals() {
                    grand = self.total_texts(totals);
                }
            }
        });
        close_to(0, &mut open, &mut roots);
        (rows, roots, grand)
    }
}

/// A group being collected.
struct Group {
    field: String,
    value: String,
    level: usize,
    rows: Vec<Value>,
    groups: Vec<Value>,
    totals: Value,
}

impl Group {
    fn into_value(self) -> Value {
        let mut group = BTreeMap::new();
        group.insert("field", Value::from(self.field));
        group.insert("value", Value::from(self.value));
        group.insert("level", Value::from(self.level));
        group.insert("rows", Value::from(self.rows));
        group.insert("groups", Value::from(self.groups));
        group.insert("totals", self.totals);
        Value::from(group)
    }
}

/// Closes the open groups at `level` and deeper, attaching each to its parent.
fn close_to(level: usize, open: &mut Vec<Group>, roots: &mut Vec<Value>) {
    while open.len() > level {
        let Some(group) = open.pop() else { break };
        match open.last_mut() {
            Some(parent) => parent.groups.push(group.into_value()),
            None => roots.push(group.into_value()),
        }
    }
}
