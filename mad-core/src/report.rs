//! Report definitions: what a report shows and how it is laid out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::FilterSet;
use crate::placeholder::names_in;
use crate::secret::SecretRef;
use crate::source::{Query, QueryColumn};
use crate::style::ConditionalStyle;

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
    /// Conditional styles; the first whose condition a cell (or total) meets applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub style: Vec<ConditionalStyle>,
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

    /// Adds a conditional style.
    pub fn style(mut self, style: ConditionalStyle) -> Self {
        self.style.push(style);
        self
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
    /// The group levels with their options, outermost first: the table form of `group_by`
    /// (a report uses one or the other).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupDef>,
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
    /// The line at the top of every page, with placeholders; paged formats also fill
    /// `{page}` and `{pages}`, and every format `{title}` and `{filters}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<PageBand>,
    /// The line at the bottom of every page, with the same placeholders as `header`; paged
    /// formats show "Page X of Y" and the run date when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<PageBand>,
    /// Charts of the report's rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartDef>,
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
    /// A user template for one format, chosen by its extension: `.xlsx` for XLSX, `.html` or
    /// `.jinja` for HTML. In a definitions file, relative to the file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PathBuf>,
}

/// One group level and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub field: String,
    /// Start each value of this level on a new page (paged formats; HTML breaks there when
    /// printed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub page_break: bool,
}

impl GroupDef {
    pub fn new(field: impl Into<String>) -> Self {
        GroupDef {
            field: field.into(),
            page_break: false,
        }
    }

    pub fn with_page_break(mut self) -> Self {
        self.page_break = true;
        self
    }
}

/// A page header or footer: a text on the left, in the centre and on the right, each with
/// placeholders. Written as a string, it is the left text:
/// `footer = "Confidential"` or `footer = { left = "{title}", right = "Page {page} of {pages}" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "PageBandRepr")]
pub struct PageBand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
}

impl PageBand {
    /// A band with one text on the left.
    pub fn left(text: impl Into<String>) -> Self {
        PageBand {
            left: Some(text.into()),
            ..Default::default()
        }
    }

    pub fn with_center(mut self, text: impl Into<String>) -> Self {
        self.center = Some(text.into());
        self
    }

    pub fn with_right(mut self, text: impl Into<String>) -> Self {
        self.right = Some(text.into());
        self
    }

    /// The texts that are set, left to right.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        [&self.left, &self.center, &self.right]
            .into_iter()
            .filter_map(|p| p.as_deref())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PageBandRepr {
    Text(String),
    Parts {
        #[serde(default)]
        left: Option<String>,
        #[serde(default)]
        center: Option<String>,
        #[serde(default)]
        right: Option<String>,
    },
}

impl From<PageBandRepr> for PageBand {
    fn from(repr: PageBandRepr) -> Self {
        match repr {
            PageBandRepr::Text(text) => PageBand::left(text),
            PageBandRepr::Parts {
                left,
                center,
                right,
            } => PageBand {
                left,
                center,
                right,
            },
        }
    }
}

/// What a chart draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    Bar,
    Line,
    Pie,
}

/// Where a chart goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartPlacement {
    /// Above the table, below the title.
    #[default]
    Before,
    /// Below the table and its grand total.
    After,
}

/// A chart of a measure aggregated per value of a dimension, over the recipient's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartDef {
    pub kind: ChartKind,
    /// The field whose values become bars, points or slices.
    pub dimension: String,
    /// The field aggregated per dimension value.
    pub measure: String,
    #[serde(default = "sum")]
    pub aggregate: Aggregate,
    /// The chart's title, with placeholders; "<aggregate> of <measure> by <dimension>" when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub placement: ChartPlacement,
    /// Show only the largest values, adding the rest up as "Other".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl ChartDef {
    pub fn new(kind: ChartKind, dimension: impl Into<String>, measure: impl Into<String>) -> Self {
        ChartDef {
            kind,
            dimension: dimension.into(),
            measure: measure.into(),
            aggregate: Aggregate::Sum,
            title: None,
            placement: ChartPlacement::Before,
            limit: None,
        }
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn with_aggregate(mut self, aggregate: Aggregate) -> Self {
        self.aggregate = aggregate;
        self
    }

    pub fn with_placement(mut self, placement: ChartPlacement) -> Self {
        self.placement = placement;
        self
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
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
            header: None,
            footer: None,
            charts: Vec::new(),
            groups: Vec::new(),
            filters: FilterSet::all(),
            csv: CsvOptions::default(),
            expressions: BTreeMap::new(),
            protection: None,
            template: None,
        }
    }

    /// The templates whose placeholders decide the content of a rendered document. A user
    /// template file (see [`ReportDef::template`]) may use any placeholder on top of these.
    pub fn content_templates(&self) -> impl Iterator<Item = &str> {
        let bands = self
            .header
            .iter()
            .chain(&self.footer)
            .flat_map(PageBand::parts);
        let charts = self.charts.iter().filter_map(|c| c.title.as_deref());
        std::iter::once(self.title.as_str())
            .chain(self.subtitle.as_deref())
            .chain(bands)
            .chain(charts)
    }

    /// The group levels, outermost first, from `groups` or else `group_by`.
    pub fn group_levels(&self) -> Vec<GroupDef> {
        if !self.groups.is_empty() {
            return self.groups.clone();
        }
        self.group_by.iter().map(GroupDef::new).collect()
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
        let charts = self.charts.iter().flat_map(|c| [&c.dimension, &c.measure]);
        let extra = self
            .group_by
            .iter()
            .chain(self.groups.iter().map(|g| &g.field))
            .chain(self.sort.iter().map(|s| &s.field))
            .chain(charts);
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
        // A value may hold a slash (it is replaced in the name), the pattern may not: a file
        // name names a file, and folders are the channel's.
        if crate::placeholder::literals_in(&self.file_name)?
            .iter()
            .any(|t| t.contains(['/', '\\']))
        {
            return Err(Error::invalid_config(format!(
                "report '{}' has the file name pattern \"{}\", which names folders; a file name \
                 pattern names only the file (put folders in the channel's path or subfolder)",
                self.name, self.file_name
            )));
        }
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
        if !self.group_by.is_empty() && !self.groups.is_empty() {
            return Err(Error::invalid_config(format!(
                "report '{}' has both group_by and groups; list the levels in one of them",
                self.name
            )));
        }
        for column in &self.columns {
            for style in &column.style {
                style
                    .resolve()
                    .map_err(|e| e.context(format!("column '{}'", column.field)))?;
            }
        }
        if let Some(chart) = self.charts.iter().find(|c| c.limit == Some(0)) {
            return Err(Error::invalid_config(format!(
                "the chart of '{}' by '{}' has limit = 0; use 1 or more, or leave it out to \
                 show every value",
                chart.measure, chart.dimension
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_sections_bands_styles_and_charts_from_toml() {
        let report: ReportDef = toml::from_str(
            r##"
            title = "Sales {Region}"
            formats = ["pdf"]
            file_name = "sales"
            groups = [{ field = "Region", page_break = true }, { field = "State" }]
            header = "{title}"
            footer = { center = "Confidential", right = "Page {page} of {pages}" }
            columns = [{ field = "Profit", style = [{ when = "< 0", color = "#c00000" }] }]
            charts = [{ kind = "bar", dimension = "State", measure = "Sales", limit = 5 }]
            "##,
        )
        .unwrap();
        report.validate().unwrap();
        assert_eq!(
            report.group_levels(),
            [
                GroupDef::new("Region").with_page_break(),
                GroupDef::new("State")
            ]
        );
        assert_eq!(report.header, Some(PageBand::left("{title}")));
        let footer = report.footer.as_ref().unwrap();
        assert_eq!(
            footer.parts().collect::<Vec<_>>(),
            ["Confidential", "Page {page} of {pages}"]
        );
        assert_eq!(report.charts[0].aggregate, Aggregate::Sum);
        assert_eq!(report.charts[0].placement, ChartPlacement::Before);
        assert!(
            report
                .content_placeholders()
                .unwrap()
                .contains(&"page".to_string())
        );
        let fields: Vec<String> = report.query().columns.into_iter().map(|c| c.name).collect();
        assert_eq!(fields, ["Profit", "Region", "State", "Sales"]);

        let old: ReportDef = toml::from_str(
            "title = \"t\"\nformats = [\"pdf\"]\nfile_name = \"f\"\ngroup_by = [\"State\"]",
        )
        .unwrap();
        assert_eq!(old.group_levels(), [GroupDef::new("State")]);
        assert!(old.header.is_none() && old.charts.is_empty() && old.groups.is_empty());
    }

    #[test]
    fn inconsistent_sections_styles_and_charts_are_refused() {
        let mut both = ReportDef::new("r", "t");
        both.group_by = vec!["State".into()];
        both.groups = vec![GroupDef::new("Region")];
        assert!(
            both.validate()
                .unwrap_err()
                .message()
                .contains("both group_by and groups")
        );

        let mut style = ReportDef::new("r", "t");
        style.columns = vec![ColumnDef::new("Profit").style(ConditionalStyle::new("negative"))];
        let err = style.validate().unwrap_err();
        assert!(err.message().contains("column 'Profit'"), "{err}");

        let mut chart = ReportDef::new("r", "t");
        chart.charts = vec![ChartDef::new(ChartKind::Pie, "State", "Sales").with_limit(0)];
        assert!(
            chart
                .validate()
                .unwrap_err()
                .message()
                .contains("limit = 0")
        );
    }
}
