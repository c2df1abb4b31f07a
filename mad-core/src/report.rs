//! Report definitions: what a report shows and how it is laid out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::FilterSet;
use crate::placeholder::names_in;
use crate::secret::SecretRef;
use crate::source::{Query, QueryColumn};
use crate::style::StyleRule;

/// The output formats the renderers produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Pdf,
    Xlsx,
    Html,
    Csv,
    /// A zip archive bundling a report's documents (see [`Protection::bundle`]).
    Zip,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Pdf => "pdf",
            OutputFormat::Xlsx => "xlsx",
            OutputFormat::Html => "html",
            OutputFormat::Csv => "csv",
            OutputFormat::Zip => "zip",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            OutputFormat::Pdf => "application/pdf",
            OutputFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            OutputFormat::Html => "text/html; charset=utf-8",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Zip => "application/zip",
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// How a column's values are summarised in subtotals and totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Count,
    Avg,
    Min,
    Max,
}

/// One column of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    /// The field shown, and the column's name in the fetched table.
    pub field: String,
    /// The header; the field name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A Qlik expression computing the column (for sources that evaluate expressions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// Whether the column is a measure (aggregated by the dimensions) rather than a dimension.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub measure: bool,
    /// A Qlik format code overriding the field's own number format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// How subtotals and totals summarise this column; no total when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Aggregate>,
    /// A relative width hint; widths come from content when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f32>,
    /// Conditional styles, such as negative values in red; the first matching rule wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub style: Vec<StyleRule>,
}

impl ColumnDef {
    pub fn new(field: impl Into<String>) -> Self {
        ColumnDef {
            field: field.into(),
            label: None,
            expr: None,
            measure: false,
            format: None,
            total: None,
            width: None,
            style: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn format(mut self, code: impl Into<String>) -> Self {
        self.format = Some(code.into());
        self
    }

    pub fn total(mut self, aggregate: Aggregate) -> Self {
        self.total = Some(aggregate);
        self
    }

    /// Adds a conditional style rule.
    pub fn style(mut self, rule: StyleRule) -> Self {
        self.style.push(rule);
        self
    }

    pub fn header(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.field)
    }
}

/// A sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    pub field: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub descending: bool,
}

impl SortKey {
    pub fn asc(field: impl Into<String>) -> Self {
        SortKey {
            field: field.into(),
            descending: false,
        }
    }

    pub fn desc(field: impl Into<String>) -> Self {
        SortKey {
            field: field.into(),
            descending: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageSize {
    #[default]
    A4,
    A3,
    Letter,
    Legal,
}

impl PageSize {
    /// Width and height in points, portrait.
    pub fn points(self) -> (f32, f32) {
        match self {
            PageSize::A4 => (595.28, 841.89),
            PageSize::A3 => (841.89, 1190.55),
            PageSize::Letter => (612.0, 792.0),
            PageSize::Legal => (612.0, 1008.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    #[default]
    Portrait,
    Landscape,
}

/// Page size, orientation and margins for paged formats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageSetup {
    pub size: PageSize,
    pub orientation: Orientation,
    /// Margins in millimetres.
    pub margin_mm: f32,
}

impl Default for PageSetup {
    fn default() -> Self {
        PageSetup {
            size: PageSize::A4,
            orientation: Orientation::Portrait,
            margin_mm: 15.0,
        }
    }
}

impl PageSetup {
    /// Width and height in points, after orientation.
    pub fn points(&self) -> (f32, f32) {
        let (w, h) = self.size.points();
        match self.orientation {
            Orientation::Portrait => (w, h),
            Orientation::Landscape => (h, w),
        }
    }

    pub fn margin_points(&self) -> f32 {
        self.margin_mm * 72.0 / 25.4
    }
}

/// Options for the CSV renderer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsvOptions {
    pub delimiter: char,
    /// Prefix cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) with `'`.
    pub neutralise_formulas: bool,
    /// Write numbers with their format (otherwise raw, with `.` as the decimal point).
    pub formatted_numbers: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            neutralise_formulas: true,
            formatted_numbers: false,
        }
    }
}

/// A report: its title, columns, order, grouping, totals, formats and file name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDef {
    /// The report's name; in a definitions file, the key it is defined under.
    #[serde(default)]
    pub name: String,
    /// The title, with placeholders.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// The columns; every field of the data when empty.
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub sort: Vec<SortKey>,
    /// Fields to group by, outermost first; each group gets a header and subtotals.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Show a grand total row (for columns that have a total).
    #[serde(default = "yes")]
    pub grand_total: bool,
    /// Show subtotals at the end of each group.
    #[serde(default = "yes")]
    pub subtotals: bool,
    /// Show the detail rows; without them a grouped report is a summary of its subtotals.
    #[serde(default = "yes")]
    pub details: bool,
    /// Formats rendered as a summary (no detail rows), such as an HTML e-mail body that
    /// summarises the attached PDF. PDF and HTML only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary_formats: Vec<OutputFormat>,
    pub formats: Vec<OutputFormat>,
    /// The file name without extension, with placeholders.
    pub file_name: String,
    #[serde(default)]
    pub page: PageSetup,
    /// Filters that apply to this report for every recipient.
    #[serde(default)]
    pub filters: FilterSet,
    #[serde(default)]
    pub csv: CsvOptions,
    /// Placeholders computed from the data for each recipient: name → expression, such as
    /// `total = "Sum([Sales])"`, used as `{total}` in titles, subjects and file names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expressions: BTreeMap<String, ExpressionDef>,
    /// Passwords for the documents; an output that cannot be protected is an error, never
    /// silently left open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<Protection>,
    /// Charts of a measure aggregated by a dimension, drawn beside or below the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartDef>,
    /// A user template for one format, chosen by its extension: `.xlsx` for XLSX, `.html` or
    /// `.jinja` for HTML. In a definitions file, relative to the file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PathBuf>,
}

/// The kinds of chart a report can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    Bar,
    Line,
    Pie,
}

/// A chart: one measure aggregated per value of one dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartDef {
    pub kind: ChartKind,
    /// The field whose values are the categories (bars, points, slices).
    pub dimension: String,
    /// The numeric field aggregated per category.
    pub measure: String,
    /// How the measure is aggregated per category; a sum when absent.
    #[serde(default = "sum")]
    pub aggregate: Aggregate,
    /// The title, with placeholders; "Sum of Sales by Region" style when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl ChartDef {
    pub fn new(kind: ChartKind, dimension: impl Into<String>, measure: impl Into<String>) -> Self {
        ChartDef {
            kind,
            dimension: dimension.into(),
            measure: measure.into(),
            aggregate: Aggregate::Sum,
            title: None,
        }
    }

    pub fn aggregate(mut self, aggregate: Aggregate) -> Self {
        self.aggregate = aggregate;
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The title template: the given one, or the aggregate, measure and dimension in words.
    pub fn title_template(&self) -> String {
        if let Some(title) = &self.title {
            return title.clone();
        }
        let aggregate = match self.aggregate {
            Aggregate::Sum => "Sum",
            Aggregate::Count => "Count",
            Aggregate::Avg => "Average",
            Aggregate::Min => "Minimum",
            Aggregate::Max => "Maximum",
        };
        let escape = |s: &str| s.replace('{', "{{").replace('}', "}}");
        format!(
            "{aggregate} of {} by {}",
            escape(&self.measure),
            escape(&self.dimension)
        )
    }
}

fn sum() -> Aggregate {
    Aggregate::Sum
}

/// Where a password comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PasswordDef {
    /// The same password for every recipient: `"env:REPORT_PASSWORD"` or `"file:..."`.
    Shared(SecretRef),
    /// Each recipient's own, from their secrets (a value table's `secret_columns`).
    Recipient { recipient_secret: String },
}

/// Document protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// Needed to open the documents (PDF user password, encrypted XLSX, AES zip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_password: Option<PasswordDef>,
    /// Needed to change them (PDF owner password and permissions, XLSX workbook and sheet
    /// protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_password: Option<PasswordDef>,
    /// Deliver the report's documents as one zip archive, encrypted with the open password.
    /// Formats that cannot carry a password themselves (HTML, CSV) need this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bundle: bool,
}

/// An expression whose value fills a placeholder, with an optional format code for numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpressionDef {
    Plain(String),
    Formatted {
        expr: String,
        #[serde(default)]
        format: Option<String>,
    },
}

impl ExpressionDef {
    pub fn expr(&self) -> &str {
        match self {
            ExpressionDef::Plain(e) | ExpressionDef::Formatted { expr: e, .. } => e,
        }
    }

    pub fn format(&self) -> Option<&str> {
        match self {
            ExpressionDef::Formatted { format, .. } => format.as_deref(),
            ExpressionDef::Plain(_) => None,
        }
    }
}

/// The format a template file is for, from its extension.
fn template_format_of(path: &Path) -> Option<OutputFormat> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "xlsx" => Some(OutputFormat::Xlsx),
        "html" | "htm" | "jinja" | "j2" => Some(OutputFormat::Html),
        _ => None,
    }
}

fn yes() -> bool {
    true
}

impl ReportDef {
    pub fn new(name: impl Into<String>, title: impl Into<String>) -> Self {
        let name = name.into();
        ReportDef {
            file_name: name.clone(),
            name,
            title: title.into(),
            subtitle: None,
            columns: Vec::new(),
            sort: Vec::new(),
            group_by: Vec::new(),
            grand_total: true,
            subtotals: true,
            details: true,
            summary_formats: Vec::new(),
            formats: vec![OutputFormat::Pdf],
            page: PageSetup::default(),
            filters: FilterSet::all(),
            csv: CsvOptions::default(),
            expressions: BTreeMap::new(),
            protection: None,
            charts: Vec::new(),
            template: None,
        }
    }

    /// The templates whose placeholders decide the content of a rendered document. A user
    /// template file (see [`ReportDef::template`]) may use any placeholder on top of these.
    pub fn content_templates(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.title.as_str())
            .chain(self.subtitle.as_deref())
            .chain(self.charts.iter().filter_map(|c| c.title.as_deref()))
    }

    /// The format the report's template is for, from its extension, or `None` without a
    /// template. An extension no format uses is an `InvalidConfig` error.
    pub fn template_format(&self) -> Result<Option<OutputFormat>> {
        let Some(path) = &self.template else {
            return Ok(None);
        };
        template_format_of(path).map(Some).ok_or_else(|| {
            Error::invalid_config(format!(
                "report '{}': the template {} has an extension no format uses; name it \
                 .xlsx for an XLSX template or .html / .jinja for an HTML template",
                self.name,
                path.display()
            ))
        })
    }

    /// The template file for `format`, when the report has one for that format.
    pub fn template_for(&self, format: OutputFormat) -> Option<&Path> {
        let path = self.template.as_deref()?;
        (template_format_of(path) == Some(format)).then_some(path)
    }

    /// The placeholder names the rendered content depends on.
    pub fn content_placeholders(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for template in self.content_templates() {
            for name in names_in(template)? {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    /// The report as a given format renders it: summary formats without detail rows.
    pub fn for_format(&self, format: OutputFormat) -> std::borrow::Cow<'_, ReportDef> {
        if !self.summary_formats.contains(&format) || !self.details {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut summary = self.clone();
        summary.details = false;
        std::borrow::Cow::Owned(summary)
    }

    /// The data this report needs: its columns plus the fields it groups and sorts by.
    /// An empty query means every field.
    pub fn query(&self) -> Query {
        if self.columns.is_empty() {
            return Query::default();
        }
        let mut columns: Vec<QueryColumn> = self
            .columns
            .iter()
            .map(|c| QueryColumn {
                name: c.field.clone(),
                expr: c.expr.clone(),
                measure: c.measure,
            })
            .collect();
        let extra = self
            .group_by
            .iter()
            .chain(self.sort.iter().map(|s| &s.field))
            .chain(self.charts.iter().flat_map(|c| [&c.dimension, &c.measure]));
        for field in extra {
            if !columns.iter().any(|c| &c.name == field) {
                columns.push(QueryColumn::field(field));
            }
        }
        Query { columns }
    }

    /// Checks what can be checked without data.
    pub fn validate(&self) -> Result<()> {
        if self.formats.is_empty() {
            return Err(Error::invalid_config(format!(
                "report '{}' lists no output formats",
                self.name
            )));
        }
        names_in(&self.file_name)?;
        if let Some(f) = self
            .summary_formats
            .iter()
            .find(|f| !matches!(f, OutputFormat::Pdf | OutputFormat::Html))
        {
            return Err(Error::invalid_config(format!(
                "report '{}' asks for a {f} summary; summaries are available for pdf and html",
                self.name
            )));
        }
        self.content_placeholders()?;
        if self.file_name.trim().is_empty() {
            return Err(Error::invalid_config(format!(
                "report '{}' has an empty file name pattern",
                self.name
            )));
        }
        if let Some(format) = self.template_format()?
            && !self.formats.contains(&format)
        {
            return Err(Error::invalid_config(format!(
                "report '{}' has a {format} template but does not list the {format} format; \
                 add \"{format}\" to its formats or remove the template",
                self.name
            )));
        }
        Ok(())
    }
}
