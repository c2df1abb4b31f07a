//! Hypercubes: built from a query or read from an app's object, fetched page by page within
//! the engine's 10,000-cell limit, and turned into a table of duals.

use mad_core::{
    ColumnBuilder, Error, ErrorKind, Field, FieldKind, NumberFormat, Query, Result, Schema, Table,
    Value,
};
use serde_json::{Value as Json, json};

use super::errors::BACKEND;
use super::session::{EngineSession, Page};

/// The most cells one data request may ask for.
pub const MAX_CELLS: usize = 10_000;

/// The rows of a page for a cube `width` columns wide: as many as fit in 10,000 cells.
pub fn page_height(width: usize) -> usize {
    (MAX_CELLS / width.max(1)).max(1)
}

/// A hypercube definition and how its columns become table columns.
#[derive(Debug, Clone, PartialEq)]
pub struct CubeSpec {
    /// The `qHyperCubeDef`.
    pub definition: Json,
    /// The names of the columns, in the cube's order (dimensions, then measures).
    pub names: Vec<String>,
    /// Which columns are measures.
    pub measures: Vec<bool>,
    /// Columns fetched but left out of the table (the row key).
    pub hidden: Vec<bool>,
}

/// Builds the hypercube for a query: fields and calculated dimensions as dimensions (sorted
/// by load order, nulls kept), expressions marked as measures as measures. `all_fields`
/// stands in for an empty query. For a query without measures, a `row_key` field becomes a
/// hidden first-sorted dimension, so detail rows keep their multiplicity and source order; a
/// query with measures aggregates and ignores it.
pub fn cube_for_query(
    query: &Query,
    all_fields: &[String],
    row_key: Option<&str>,
) -> Result<CubeSpec> {
    let columns: Vec<(String, Option<String>, bool)> = if query.columns.is_empty() {
        all_fields
            .iter()
            .map(|f| (f.clone(), None, false))
            .collect()
    } else {
        query
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.expr.clone(), c.measure))
            .collect()
    };
    if columns.is_empty() {
        return Err(Error::invalid_config("the query asks for no columns").with_backend(BACKEND));
    }

    let mut dimensions = Vec::new();
    let mut measures = Vec::new();
    let mut dim_names = Vec::new();
    let mut measure_names = Vec::new();
    for (name, expr, measure) in &columns {
        if *measure {
            let expr = expr.as_deref().ok_or_else(|| {
                Error::invalid_config(format!(
                    "the measure column '{name}' has no expression; give it one such as \
                     Sum([{name}])"
                ))
                .with_backend(BACKEND)
            })?;
            measures.push(json!({
                "qDef": {"qDef": expr, "qLabel": name},
                "qSortBy": {"qSortByLoadOrder": 1}
            }));
            measure_names.push(name.clone());
        } else {
            let definition = match expr {
                Some(e) if e.trim_start().starts_with('=') => e.clone(),
                Some(e) => format!("={e}"),
                None => name.clone(),
            };
            dimensions.push(dimension(&definition, name));
            dim_names.push(name.clone());
        }
    }
    let visible = dim_names.len();
    let mut hidden = vec![false; visible];
    let mut sort_order: Vec<usize> = (0..visible).collect();
    let key = row_key.filter(|k| measures.is_empty() && !dim_names.iter().any(|d| d == k));
    if let Some(key) = key {
        dimensions.push(dimension(key, key));
        dim_names.push(key.to_string());
        hidden.push(true);
        sort_order.insert(0, visible);
    }
    let width = dimensions.len() + measures.len();
    sort_order.extend(dimensions.len()..width);
    hidden.extend(std::iter::repeat_n(false, measures.len()));

    let mut names = dim_names;
    names.extend(measure_names);
    let mut is_measure = vec![false; dimensions.len()];
    is_measure.extend(std::iter::repeat_n(true, measures.len()));
    let definition = json!({
        "qDimensions": dimensions,
        "qMeasures": measures,
        "qInterColumnSortOrder": sort_order,
        "qSuppressZero": false,
        "qSuppressMissing": false,
        "qMode": "S",
        "qInitialDataFetch": [{"qLeft": 0, "qTop": 0, "qWidth": width, "qHeight": page_height(width)}]
    });
    Ok(CubeSpec {
        definition,
        names,
        measures: is_measure,
        hidden,
    })
}

fn dimension(definition: &str, label: &str) -> Json {
    json!({
        "qDef": {
            "qFieldDefs": [definition],
            "qFieldLabels": [label],
            "qSortCriterias": [{"qSortByLoadOrder": 1}]
        },
        "qNullSuppression": false
    })
}

/// Fetches a session hypercube for `spec`, creating the session object on first use.
pub async fn fetch_query_cube(session: &mut EngineSession, spec: &CubeSpec) -> Result<Table> {
    let key = spec.definition.to_string();
    let handle = match session.cubes.get(&key) {
        Some(&handle) => handle,
        None => {
            let properties =
                json!({"qInfo": {"qType": "mad-report-data"}, "qHyperCubeDef": spec.definition});
            let handle = session.create_session_object(properties).await?;
            session.cubes.insert(key, handle);
            handle
        }
    };
    let layout = session.get_layout(handle).await?;
    let cube = &layout["qHyperCube"];
    check_cube(cube, "the report's hypercube")?;
    let mut table = TableBuilder::new(cube, &spec.names, &spec.measures, &spec.hidden)?;
    fetch_rows(session, handle, cube, &mut table).await?;
    table.finish()
}

/// Fetches the hypercube of an object stored in the app (a chart or table, with its master
/// items), keeping the columns `query` names (all of them for an empty query).
pub async fn fetch_object_cube(
    session: &EngineSession,
    object: &str,
    query: &Query,
) -> Result<Table> {
    let handle = session.get_object(object).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("the app has no object '{object}'; check the object option"),
        )
        .with_backend(BACKEND)
    })?;
    let layout = session.get_layout(handle).await?;
    let cube = &layout["qHyperCube"];
    if cube.is_null() {
        return Err(Error::invalid_config(format!(
            "the object '{object}' has no hypercube (it is not a chart or table)"
        ))
        .with_backend(BACKEND));
    }
    let what = format!("the object '{object}'");
    check_cube(cube, &what)?;
    if let Some(mode) = cube["qMode"]
        .as_str()
        .filter(|m| !matches!(*m, "S" | "DATA_MODE_STRAIGHT"))
    {
        return Err(Error::unsupported(
            BACKEND,
            format!("{what}: hypercube mode {mode} (only straight tables are read)"),
        ));
    }
    let (names, measures) = object_columns(cube);
    if let Some(missing) = query.columns.iter().find(|c| !names.contains(&c.name)) {
        return Err(Error::invalid_config(format!(
            "{what} has no column '{}' (columns: {})",
            missing.name,
            names.join(", ")
        ))
        .with_backend(BACKEND));
    }
    let hidden: Vec<bool> = names
        .iter()
        .map(|n| !query.columns.is_empty() && !query.columns.iter().any(|c| c.name == *n))
        .collect();
    let mut builder = TableBuilder::new(cube, &names, &measures, &hidden)?;
    fetch_rows(session, handle, cube, &mut builder).await?;
    let table = builder.finish()?;
    if query.columns.is_empty() {
        return Ok(table);
    }
    let order: Vec<&str> = query.columns.iter().map(|c| c.name.as_str()).collect();
    table.project(&order)
}

fn object_columns(cube: &Json) -> (Vec<String>, Vec<bool>) {
    let title = |info: &Json| info["qFallbackTitle"].as_str().unwrap_or("").to_string();
    let dims = cube["qDimensionInfo"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let meas = cube["qMeasureInfo"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = dims.iter().map(title).collect();
    names.extend(meas.iter().map(title));
    let mut measures = vec![false; dims.len()];
    measures.extend(std::iter::repeat_n(true, meas.len()));
    (names, measures)
}

fn check_cube(cube: &Json, what: &str) -> Result<()> {
    let error = &cube["qError"];
    if error.is_null() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "the engine cannot compute {what}: error {} {}; check the dimensions and measures",
            error["qErrorCode"],
            error["qContext"].as_str().unwrap_or("")
        ),
    )
    .with_backend(BACKEND))
}

/// Every row of a cube, page by page: each page as tall as fits in 10,000 cells, until the
/// engine's row count is reached. Any shortfall is an error, never a partial table.
async fn fetch_rows(
    session: &EngineSession,
    handle: i64,
    cube: &Json,
    table: &mut TableBuilder,
) -> Result<()> {
    let width = cube["qSize"]["qcx"].as_u64().unwrap_or(0) as usize;
    let total = cube["qSize"]["qcy"].as_u64().unwrap_or(0) as usize;
    if width == 0 {
        return Ok(());
    }
    check_width(width)?;
    let height = page_height(width);
    if let Some(first) = cube["qDataPages"].as_array().and_then(|p| p.first())
        && first["qArea"]["qTop"] == 0
        && first["qArea"]["qLeft"] == 0
        && first["qArea"]["qWidth"].as_u64() == Some(width as u64)
    {
        table.add(first);
    }
    while table.rows < total {
        let page = Page {
            top: table.rows,
            left: 0,
            width,
            height: height.min(total - table.rows),
        };
        let data = session.get_hypercube_data(handle, page).await?;
        if data["qArea"]["qHeight"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        let before = table.rows;
        table.add(&data);
        if table.rows == before {
            return Err(empty_page("hypercube", before, total));
        }
    }
    if table.rows != total {
        return Err(Error::new(
            ErrorKind::Transient,
            format!(
                "the engine returned {} of the hypercube's {total} rows (its data changed while \
                 paging)",
                table.rows
            ),
        )
        .with_backend(BACKEND));
    }
    Ok(())
}

/// Pages split a cube by rows only, so a row must fit in one page: at most 10,000 columns.
fn check_width(width: usize) -> Result<()> {
    if width <= MAX_CELLS {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "a hypercube of {width} columns: the engine sends at most {MAX_CELLS} cells a page \
             and pages are split by rows, so a report can have at most {MAX_CELLS} columns"
        ),
    )
    .with_backend(BACKEND))
}

/// A data page that claims rows but holds none: asking again would get the same answer.
pub(crate) fn empty_page(what: &str, from: usize, total: usize) -> Error {
    Error::new(
        ErrorKind::DataSource,
        format!(
            "the engine answered the {what} page from row {from} (of {total}) with an area but \
             no cells; nothing was fetched"
        ),
    )
    .with_backend(BACKEND)
}

/// A number as the engine writes it: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn engine_number(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "Infinity" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A cell (`NxCell`) as a value: null, a text, or a dual of number and text. With
/// `plain_numbers`, a number is kept without its text (a measure the engine formatted
/// automatically, so the report's own format applies).
pub fn cell_value(cell: &Json, plain_numbers: bool) -> Value {
    if cell["qIsNull"] == true || cell["qElemNumber"] == -2 {
        return Value::Null;
    }
    let text = cell["qText"].as_str();
    match (engine_number(&cell["qNum"]), text) {
        (Some(n), _) if plain_numbers => Value::Number(n),
        (Some(n), Some(t)) => Value::dual(n, t),
        (Some(n), None) => Value::Number(n),
        (None, Some(t)) => Value::text(t),
        (None, None) => Value::Null,
    }
}

/// A column's number format (`FieldAttributes`) in the project's terms; `None` when the
/// engine formats it automatically.
pub fn number_format(attributes: &Json) -> Option<NumberFormat> {
    let kind = attributes["qType"].as_str().unwrap_or("U");
    let code = attributes["qFmt"].as_str().unwrap_or("");
    if matches!(kind, "U" | "UNKNOWN") || code.is_empty() {
        return None;
    }
    let first = |key: &str| attributes[key].as_str().and_then(|s| s.chars().next());
    Some(NumberFormat {
        code: code.to_string(),
        decimal: first("qDec"),
        thousands: first("qThou"),
    })
}

/// A dimension's kind, from the field's tags (`$date`, `$timestamp`, `$integer`, ...).
fn dimension_kind(info: &Json) -> FieldKind {
    let tags: Vec<&str> = info["qTags"]
        .as_array()
        .map(|t| t.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let has = |tag: &str| tags.contains(&tag);
    match info["qNumFormat"]["qType"].as_str().unwrap_or("U") {
        _ if has("$date") => FieldKind::Date,
        _ if has("$timestamp") => FieldKind::Timestamp,
        _ if has("$numeric") && has("$text") => FieldKind::Mixed,
        _ if has("$integer") => FieldKind::Integer,
        _ if has("$numeric") => FieldKind::Number,
        "D" => FieldKind::Date,
        "TS" | "T" => FieldKind::Timestamp,
        _ => FieldKind::Text,
    }
}

/// A measure's kind, from its number format and, for texts, its values.
fn measure_kind(info: &Json, numbers: usize, texts: usize) -> FieldKind {
    match info["qNumFormat"]["qType"].as_str().unwrap_or("U") {
        _ if numbers == 0 && texts > 0 => FieldKind::Text,
        _ if numbers > 0 && texts > 0 => FieldKind::Mixed,
        "D" => FieldKind::Date,
        "TS" | "T" => FieldKind::Timestamp,
        "I" => FieldKind::Integer,
        _ => FieldKind::Number,
    }
}

/// One table column being filled from the cube's pages.
struct ColumnPlan {
    index: usize,
    field: Field,
    measure: bool,
    plain_numbers: bool,
    info: Json,
    builder: ColumnBuilder,
    numbers: usize,
    texts: usize,
}

/// The engine's description of column `index`: a dimension's from `qDimensionInfo`, a
/// measure's from `qMeasureInfo` after the dimensions. An engine that split the columns
/// otherwise than they were asked is a `DataSource` error, not a wrong column.
fn column_info(index: usize, measure: bool, dims: &[Json], meas: &[Json]) -> Result<Json> {
    let info = if measure {
        index.checked_sub(dims.len()).and_then(|i| meas.get(i))
    } else {
        dims.get(index)
    };
    info.cloned().ok_or_else(|| {
        let (asked, kind) = if measure {
            ("a measure", "dimensions")
        } else {
            ("a dimension", "measures")
        };
        Error::new(
            ErrorKind::DataSource,
            format!(
                "the engine's hypercube has {} dimensions and {} measures, so column {} asked \
                 as {asked} is among its {kind}; nothing was read",
                dims.len(),
                meas.len(),
                index + 1
            ),
        )
        .with_backend(BACKEND)
    })
}

/// Fills the table's columns page by page, so the pages' JSON is dropped as it is read.
struct TableBuilder {
    columns: Vec<ColumnPlan>,
    rows: usize,
}

impl TableBuilder {
    fn new(cube: &Json, names: &[String], measures: &[bool], hidden: &[bool]) -> Result<Self> {
        let dims = cube["qDimensionInfo"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let meas = cube["qMeasureInfo"].as_array().cloned().unwrap_or_default();
        if dims.len() + meas.len() != names.len() {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the engine's hypercube has {} columns where {} were asked",
                    dims.len() + meas.len(),
                    names.len()
                ),
            )
            .with_backend(BACKEND));
        }
        let rows = cube["qSize"]["qcy"].as_u64().unwrap_or(0) as usize;
        let mut columns = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate().filter(|(i, _)| !hidden[*i]) {
            let measure = measures[index];
            let info = column_info(index, measure, &dims, &meas)?;
            let mut field = Field::new(name.clone(), FieldKind::Text);
            field.format = number_format(&info["qNumFormat"]);
            columns.push(ColumnPlan {
                index,
                field,
                measure,
                plain_numbers: measure && info["qIsAutoFormat"] != false,
                info,
                builder: ColumnBuilder::with_capacity(rows),
                numbers: 0,
                texts: 0,
            });
        }
        Ok(TableBuilder { columns, rows: 0 })
    }

    fn add(&mut self, page: &Json) {
        let Some(matrix) = page["qMatrix"].as_array() else {
            return;
        };
        for row in matrix {
            for column in &mut self.columns {
                let value = cell_value(&row[column.index], column.plain_numbers);
                match &value {
                    Value::Text(_) => column.texts += 1,
                    Value::Number(_) | Value::Dual(..) => column.numbers += 1,
                    Value::Null => {}
                }
                column.builder.push(value);
            }
        }
        self.rows += matrix.len();
    }

    fn finish(self) -> Result<Table> {
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut columns = Vec::with_capacity(self.columns.len());
        for mut plan in self.columns {
            plan.field.kind = if plan.measure {
                measure_kind(&plan.info, plan.numbers, plan.texts)
            } else {
                dimension_kind(&plan.info)
            };
            fields.push(plan.field);
            columns.push(plan.builder.finish());
        }
        Table::new(Schema::new(fields), columns).map_err(|e| e.with_backend(BACKEND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::QueryColumn;

    #[test]
    fn a_cube_split_otherwise_than_asked_is_an_error() {
        let cube = json!({
            "qSize": {"qcx": 2, "qcy": 1},
            "qDimensionInfo": [{"qFallbackTitle": "Region"}, {"qFallbackTitle": "Sales"}],
            "qMeasureInfo": []
        });
        let names = ["Region".to_string(), "Sales".to_string()];
        let err = TableBuilder::new(&cube, &names, &[false, true], &[false, false])
            .err()
            .expect("an error, not a panic");
        assert_eq!(err.kind(), ErrorKind::DataSource);
        assert!(
            err.to_string().contains("2 dimensions and 0 measures"),
            "{err}"
        );

        let cube = json!({
            "qSize": {"qcx": 2, "qcy": 1},
            "qDimensionInfo": [],
            "qMeasureInfo": [{"qFallbackTitle": "Region"}, {"qFallbackTitle": "Sales"}]
        });
        let err = TableBuilder::new(&cube, &names, &[false, true], &[false, false])
            .err()
            .expect("an error, not a panic");
        assert_eq!(err.kind(), ErrorKind::DataSource);
    }

    #[test]
    fn pages_stay_within_ten_thousand_cells() {
        assert!(check_width(MAX_CELLS).is_ok());
        let err = check_width(MAX_CELLS + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("at most 10000 columns"), "{err}");
        for width in [1, 2, 3, 7, 30, 101, 10_000, 20_000] {
            let h = page_height(width);
            assert!(width * h <= MAX_CELLS || h == 1, "{width}");
            assert!(width * (h + 1) > MAX_CELLS, "{width}");
        }
    }

    #[test]
    fn queries_become_cubes() {
        let detail = Query::fields(["Region", "Sales"]);
        let spec = cube_for_query(&detail, &[], Some("Row ID")).unwrap();
        assert_eq!(spec.names, ["Region", "Sales", "Row ID"]);
        assert_eq!(spec.hidden, [false, false, true]);
        assert_eq!(spec.definition["qInterColumnSortOrder"], json!([2, 0, 1]));
        let totals = Query {
            columns: vec![
                QueryColumn::field("Region"),
                QueryColumn {
                    name: "Sales".into(),
                    expr: Some("Sum([Sales])".into()),
                    measure: true,
                },
            ],
        };
        let spec = cube_for_query(&totals, &[], Some("Row ID")).unwrap();
        assert_eq!(
            spec.names,
            ["Region", "Sales"],
            "measures aggregate: no row key"
        );
        assert_eq!(
            spec.definition["qMeasures"][0]["qDef"]["qDef"],
            "Sum([Sales])"
        );
        let bad = Query {
            columns: vec![QueryColumn {
                name: "x".into(),
                expr: None,
                measure: true,
            }],
        };
        assert_eq!(
            cube_for_query(&bad, &[], None).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn cells_keep_duals_and_nulls() {
        let dual = json!({"qText": "2024-01-02", "qNum": 45293, "qElemNumber": 3, "qState": "O"});
        assert_eq!(cell_value(&dual, false), Value::dual(45293.0, "2024-01-02"));
        let text = json!({"qText": "East", "qNum": "NaN", "qElemNumber": 0, "qState": "O"});
        assert_eq!(cell_value(&text, false), Value::text("East"));
        let null =
            json!({"qText": "-", "qNum": "NaN", "qElemNumber": -2, "qState": "O", "qIsNull": true});
        assert_eq!(cell_value(&null, false), Value::Null);
        let measure = json!({"qText": "2,147", "qNum": 2146.74, "qElemNumber": 0, "qState": "L"});
        assert_eq!(cell_value(&measure, true), Value::Number(2146.74));
    }

    #[test]
    fn number_formats_carry_separators() {
        let attrs = json!({"qType": "F", "qnDec": 2, "qUseThou": 1, "qFmt": "#.##0,00", "qDec": ",", "qThou": "."});
        let format = number_format(&attrs).unwrap();
        assert_eq!(format.code, "#.##0,00");
        assert_eq!(format.decimal, Some(','));
        assert_eq!(format.thousands, Some('.'));
        assert!(number_format(&json!({"qType": "U", "qnDec": 10})).is_none());
    }
}
