//! Apps: a table of data plus the objects, master items and variables the engine serves.

use std::collections::BTreeMap;
use std::path::Path;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{Error, Locale, Result, Table};
use serde_json::Value as Json;

use crate::BACKEND;

/// One app the double serves: a single table (Qlik's data model reduced to one table) and
/// the objects, master measures and dimensions, and variables stored in it.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) table_name: String,
    pub(crate) table: Table,
    pub(crate) locale: Locale,
    pub(crate) objects: BTreeMap<String, Json>,
    pub(crate) measures: BTreeMap<String, MasterMeasure>,
    pub(crate) dimensions: BTreeMap<String, MasterDimension>,
    pub(crate) variables: Vec<Variable>,
    pub(crate) section_access: Option<SectionAccess>,
    pub(crate) locked_selections: Vec<(String, Vec<String>)>,
    pub(crate) session_app: bool,
}

impl App {
    /// An app with the id `id` (what clients pass to `OpenDoc` and put in the URL).
    pub fn new(id: impl Into<String>, table: Table) -> Self {
        let id = id.into();
        App {
            title: id.clone(),
            table_name: "Data".into(),
            id,
            table,
            locale: Locale::new("en-US"),
            objects: BTreeMap::new(),
            measures: BTreeMap::new(),
            dimensions: BTreeMap::new(),
            variables: Vec::new(),
            section_access: None,
            locked_selections: Vec::new(),
            session_app: false,
        }
    }

    /// An app whose table is read from a file (see [`load_table`]).
    pub fn from_file(id: impl Into<String>, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let table = load_table(path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("Data");
        Ok(App::new(id, table).with_table_name(stem))
    }

    pub(crate) fn session(id: &str) -> Self {
        let table = Table::empty(mad_core::Schema::new(Vec::new()));
        let mut app = App::new(id, table);
        app.session_app = true;
        app
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The name of the app's single table, as `GetTablesAndKeys` reports it.
    pub fn with_table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// The separators used to show numbers (the app's `DecimalSep`/`ThousandSep`).
    pub fn with_locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// A stored object (a sheet's chart or table) that `GetObject(id)` opens. `properties`
    /// are its generic properties: `qInfo`, and definitions such as `qHyperCubeDef`.
    pub fn with_object(mut self, id: impl Into<String>, properties: Json) -> Self {
        let id = id.into();
        let mut properties = properties;
        if let Some(info) = properties.get_mut("qInfo").and_then(Json::as_object_mut) {
            info.insert("qId".into(), Json::String(id.clone()));
        }
        self.objects.insert(id, properties);
        self
    }

    /// A master measure that hypercubes reference with `qLibraryId`.
    pub fn with_measure(
        mut self,
        id: impl Into<String>,
        label: impl Into<String>,
        expression: impl Into<String>,
    ) -> Self {
        let measure = MasterMeasure {
            label: label.into(),
            expression: expression.into(),
        };
        self.measures.insert(id.into(), measure);
        self
    }

    /// A master dimension over one field.
    pub fn with_dimension(
        mut self,
        id: impl Into<String>,
        label: impl Into<String>,
        field: impl Into<String>,
    ) -> Self {
        let dimension = MasterDimension {
            label: label.into(),
            field: field.into(),
        };
        self.dimensions.insert(id.into(), dimension);
        self
    }

    /// A variable; a definition starting with `=` is an expression evaluated on demand.
    pub fn with_variable(mut self, name: impl Into<String>, definition: impl Into<String>) -> Self {
        let name = name.into();
        self.variables.push(Variable {
            id: format!("var-{name}"),
            name,
            definition: definition.into(),
            session: false,
        });
        self
    }

    /// Section access: each user sees only the rows whose `field` holds one of their values.
    /// Users the map does not name are refused the app, as the engine refuses them.
    pub fn with_section_access(mut self, access: SectionAccess) -> Self {
        self.section_access = Some(access);
        self
    }

    /// Every session opens the app with `values` (as texts) selected in `field` and the
    /// field locked, as an app saved with a locked selection: `ClearAll(false)` keeps it and
    /// selections in the field are refused (`qReturn: false`) until it is unlocked.
    pub fn with_locked_selection<I, S>(mut self, field: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.locked_selections.push((field.into(), values));
        self
    }
}

/// A measure stored in the app's library.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterMeasure {
    pub label: String,
    pub expression: String,
}

/// A dimension stored in the app's library.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterDimension {
    pub label: String,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variable {
    pub id: String,
    pub name: String,
    pub definition: String,
    pub session: bool,
}

/// Which values of one field each user may see (the reduction of Qlik's section access).
#[derive(Debug, Clone, PartialEq)]
pub struct SectionAccess {
    pub(crate) field: String,
    pub(crate) users: BTreeMap<String, Vec<String>>,
}

impl SectionAccess {
    /// Access reduced on `field`. User names are compared without regard to case, either
    /// bare (`alice`) or with their directory (`CORP\alice`).
    pub fn new(field: impl Into<String>) -> Self {
        SectionAccess {
            field: field.into(),
            users: BTreeMap::new(),
        }
    }

    pub fn allow<I, S>(mut self, user: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.users.insert(user.into().to_uppercase(), values);
        self
    }

    pub(crate) fn values_for(&self, qualified: &str, bare: &str) -> Option<&[String]> {
        self.users
            .get(&qualified.to_uppercase())
            .or_else(|| self.users.get(&bare.to_uppercase()))
            .map(Vec::as_slice)
    }
}

/// Reads an app's table from a file: CSV files with the project's CSV reader (types inferred),
/// QVD files with the project's QVD reader (types and number formats as Qlik stored them).
pub fn load_table(path: &Path) -> Result<Table> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "csv" | "txt" => read_csv(&CsvOptions::new(path)),
        "qvd" => mad_qlik::qvd::read_qvd(path),
        _ => Err(Error::invalid_input(format!(
            "{} is neither a CSV nor a QVD file; the double loads apps from .csv and .qvd files",
            path.display()
        ))
        .with_backend(BACKEND)),
    }
}
