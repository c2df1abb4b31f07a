//! The published engine protocol (an OpenRPC document) and request validation against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use mad_core::{Error, ErrorKind, Result};
use serde_json::Value as Json;

use crate::BACKEND;

/// Where the workspace keeps the engine's OpenRPC document.
pub const DEFAULT_SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/qlik/engine-rpc/engine-rpc.json"
);

/// Deepest nesting the parameter check follows (the schema has recursive types).
const MAX_DEPTH: usize = 24;

/// The methods, parameter lists, types and error messages of the engine protocol.
#[derive(Debug)]
pub struct ProtocolSchema {
    version: String,
    methods: HashMap<String, Vec<ParamSpec>>,
    types: serde_json::Map<String, Json>,
    errors: HashMap<i32, String>,
}

#[derive(Debug)]
struct ParamSpec {
    name: String,
    required: bool,
    schema: Json,
}

impl ProtocolSchema {
    /// Reads an OpenRPC document such as the engine's `engine-rpc.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::io(format!("reading the engine schema {}", path.display()), e)
                .with_backend(BACKEND)
        })?;
        let doc: Json = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid_input(format!(
                "the engine schema {} is not JSON: {e}",
                path.display()
            ))
            .with_backend(BACKEND)
        })?;
        Self::from_document(&doc).map_err(|e| e.context(path.display()))
    }

    /// The workspace's copy of the engine schema, read once per process.
    pub fn bundled() -> Result<Arc<Self>> {
        static BUNDLED: OnceLock<std::result::Result<Arc<ProtocolSchema>, String>> =
            OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                Self::load(&PathBuf::from(DEFAULT_SCHEMA_PATH))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|message| Error::new(ErrorKind::NotFound, message).with_backend(BACKEND))
    }

    fn from_document(doc: &Json) -> Result<Self> {
        let bad = |what: &str| {
            Error::invalid_input(format!("the engine schema has no {what}")).with_backend(BACKEND)
        };
        let methods = doc["methods"].as_array().ok_or_else(|| bad("methods"))?;
        let methods = methods
            .iter()
            .filter_map(|m| Some((m["name"].as_str()?.to_string(), params_of(m))))
            .collect();
        let types = doc["components"]["schemas"]
            .as_object()
            .ok_or_else(|| bad("components.schemas"))?
            .clone();
        let errors = doc["components"]["errors"]
            .as_object()
            .ok_or_else(|| bad("components.errors"))?
            .values()
            .filter_map(|e| {
                let code = i32::try_from(e["code"].as_i64()?).ok()?;
                Some((code, e["message"].as_str()?.to_string()))
            })
            .collect();
        Ok(ProtocolSchema {
            version: doc["info"]["version"].as_str().unwrap_or("").to_string(),
            methods,
            types,
            errors,
        })
    }

    /// The engine release the schema describes, such as `12.2528.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether `Class.Method` exists.
    pub fn has_method(&self, class: &str, method: &str) -> bool {
        self.methods.contains_key(&format!("{class}.{method}"))
    }

    /// The engine's message for an error code, or "Unknown error".
    pub fn error_message(&self, code: i32) -> &str {
        self.errors
            .get(&code)
            .map(String::as_str)
            .unwrap_or("Unknown error")
    }

    /// Checks a request's `params` (positional array, named object or absent) against the
    /// method's parameter list and turns them into positional values (`None` when omitted).
    pub fn check_params(
        &self,
        class: &str,
        method: &str,
        params: Option<&Json>,
    ) -> std::result::Result<Vec<Option<Json>>, String> {
        let Some(specs) = self.methods.get(&format!("{class}.{method}")) else {
            return Err(format!("{class}.{method} is not in the protocol"));
        };
        let given = positional(specs, params)?;
        for (spec, value) in specs.iter().zip(&given) {
            match value {
                None if spec.required => {
                    return Err(format!("the required parameter {} is missing", spec.name));
                }
                None => {}
                Some(value) => self.check_value(&spec.schema, value, &spec.name, 0)?,
            }
        }
        Ok(given)
    }

    fn check_value(
        &self,
        schema: &Json,
        value: &Json,
        path: &str,
        depth: usize,
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let resolved = self.resolve(schema);
        if let Some(choices) = resolved["oneOf"].as_array() {
            return check_enum(choices, value, path);
        }
        let wrong = |expected: &str| Err(format!("{path} must be {expected}, not {value}"));
        match resolved["type"].as_str() {
            Some("string") if !value.is_string() => wrong("a string"),
            Some("boolean") if !value.is_boolean() => wrong("a boolean"),
            Some("integer") if !(value.is_i64() || value.is_u64()) => wrong("an integer"),
            Some("number") if !is_number(value) => wrong("a number"),
            Some("array") => {
                let Some(items) = value.as_array() else {
                    return wrong("an array");
                };
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.check_value(&resolved["items"], item, &item_path, depth + 1)?;
                }
                Ok(())
            }
            Some("object") => {
                let Some(members) = value.as_object() else {
                    return wrong("an object");
                };
                let Some(known) = resolved["properties"].as_object() else {
                    return Ok(());
                };
                let extensible = self.type_name(schema).is_some_and(allows_custom_members);
                for (key, member) in members {
                    let member_path = format!("{path}.{key}");
                    if let Some(member_schema) = known.get(key) {
                        self.check_value(member_schema, member, &member_path, depth + 1)?;
                    } else if extensible {
                        self.check_custom(key, member, &member_path, depth + 1)?;
                    } else {
                        return Err(format!(
                            "{member_path} is not a member of {}",
                            self.describe(schema)
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A member the client added to a properties object. The engine reads the definitions it
    /// knows by name (`qHyperCubeDef`, `qStringExpression`, ...) wherever they appear in such a
    /// member; everything else in it is the client's own data.
    fn check_custom(
        &self,
        key: &str,
        value: &Json,
        path: &str,
        depth: usize,
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let expression = matches!(key, "qStringExpression" | "qValueExpression");
        if expression && value.is_string() {
            // The engine also takes an expression's short form, the bare string.
            return Ok(());
        }
        if let Some(def) = self.dynamic_type(key) {
            return self.check_value(def, value, path, depth);
        }
        match value {
            Json::Object(members) => members
                .iter()
                .try_for_each(|(k, v)| self.check_custom(k, v, &format!("{path}.{k}"), depth + 1)),
            Json::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| {
                self.check_custom("", v, &format!("{path}[{i}]"), depth + 1)
            }),
            _ => Ok(()),
        }
    }

    /// The type of a member the engine recognises by its name inside custom properties: the
    /// named members of `GenericObjectProperties` and any `q…Def` type (`qHyperCubeDef` is a
    /// `HyperCubeDef`).
    fn dynamic_type(&self, key: &str) -> Option<&Json> {
        let named = self.types.get("GenericObjectProperties")?["additionalProperties"]["anyOf"]
            .as_array()
            .and_then(|members| members.iter().find(|m| m["name"] == key))
            .map(|m| &m["schema"]);
        named.or_else(|| {
            let name = key.strip_prefix('q').filter(|n| n.ends_with("Def"))?;
            self.types.get(name)
        })
    }

    /// The name of the type `schema` refers to, when it is a reference.
    fn type_name<'a>(&self, schema: &'a Json) -> Option<&'a str> {
        schema["$ref"]
            .as_str()?
            .strip_prefix("#/components/schemas/")
    }

    fn describe(&self, schema: &Json) -> String {
        match self.type_name(schema) {
            Some(name) => name.to_string(),
            None => "its structure".to_string(),
        }
    }

    /// Follows `$ref` to the named type; a schema without one is returned as it is.
    fn resolve<'a>(&'a self, schema: &'a Json) -> &'a Json {
        let mut current = schema;
        for _ in 0..8 {
            let Some(name) = current["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                break;
            };
            match self.types.get(name) {
                Some(target) => current = target,
                None => break,
            }
        }
        current
    }
}

/// The properties objects that take members of the client's own besides the schema's, at
/// their top level only.
fn allows_custom_members(type_name: &str) -> bool {
    matches!(
        type_name,
        "GenericObjectProperties"
            | "GenericDimensionProperties"
            | "GenericMeasureProperties"
            | "GenericVariableProperties"
            | "GenericBookmarkProperties"
            | "NxAppProperties"
    )
}

fn params_of(method: &Json) -> Vec<ParamSpec> {
    let Some(params) = method["params"].as_array() else {
        return Vec::new();
    };
    params
        .iter()
        .map(|p| ParamSpec {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            required: p["required"].as_bool().unwrap_or(false),
            schema: p["schema"].clone(),
        })
        .collect()
}

/// Puts positional or named parameters in the method's order. An explicit `null` counts as
/// omitted, which only matters for required parameters.
fn positional(
    specs: &[ParamSpec],
    params: Option<&Json>,
) -> std::result::Result<Vec<Option<Json>>, String> {
    let present = |v: &Json| (!v.is_null()).then(|| v.clone());
    match params {
        None => Ok(vec![None; specs.len()]),
        Some(Json::Array(values)) => {
            if values.len() > specs.len() {
                return Err(format!(
                    "{} parameters given, the method takes {}",
                    values.len(),
                    specs.len()
                ));
            }
            let mut given: Vec<Option<Json>> = values.iter().map(present).collect();
            given.resize(specs.len(), None);
            Ok(given)
        }
        Some(Json::Object(named)) => {
            if let Some(unknown) = named.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
                return Err(format!("the method has no parameter named {unknown}"));
            }
            Ok(specs
                .iter()
                .map(|s| named.get(&s.name).and_then(present))
                .collect())
        }
        Some(other) => Err(format!("params must be an array or an object, not {other}")),
    }
}

/// Enumerations accept the short title (`S`), the long name (`DATA_MODE_STRAIGHT`) and the
/// integer constant.
fn check_enum(choices: &[Json], value: &Json, path: &str) -> std::result::Result<(), String> {
    let accepted = choices.iter().any(|c| match value {
        Json::String(s) => c["title"].as_str() == Some(s) || c["description"].as_str() == Some(s),
        Json::Number(n) => {
            c["x-qlik-const"].as_i64().is_some() && c["x-qlik-const"].as_i64() == n.as_i64()
        }
        _ => false,
    });
    if accepted {
        return Ok(());
    }
    let titles: Vec<&str> = choices.iter().filter_map(|c| c["title"].as_str()).collect();
    Err(format!(
        "{path} must be one of {}, not {value}",
        titles.join(", ")
    ))
}

/// Numbers may also travel as the strings the engine uses for special values.
fn is_number(value: &Json) -> bool {
    value.is_number()
        || matches!(
            value.as_str(),
            Some("NaN" | "Infinity" | "+Infinity" | "-Infinity")
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<ProtocolSchema> {
        ProtocolSchema::bundled().expect("the workspace schema")
    }

    #[test]
    fn positional_and_named_params_agree() {
        let s = schema();
        let a = s
            .check_params("Global", "OpenDoc", Some(&json!(["x", "", "", "", false])))
            .unwrap();
        let b = s
            .check_params(
                "Global",
                "OpenDoc",
                Some(&json!({"qDocName": "x", "qNoData": false})),
            )
            .unwrap();
        assert_eq!(a[0], b[0]);
        assert_eq!(a[4], b[4]);
        assert_eq!(s.error_message(7009), "Calculation pages too large");
    }

    #[test]
    fn violations_are_named() {
        let s = schema();
        let err = s
            .check_params("Global", "OpenDoc", Some(&json!([])))
            .unwrap_err();
        assert!(err.contains("qDocName"), "{err}");
        let err = s
            .check_params("Doc", "GetField", Some(&json!({"qName": "x"})))
            .unwrap_err();
        assert!(err.contains("qName"), "{err}");
        let pages = json!(["/qHyperCubeDef", [{"qTop": "0", "qHeight": 10}]]);
        let err = s
            .check_params("GenericObject", "GetHyperCubeData", Some(&pages))
            .unwrap_err();
        assert!(err.contains("qPages[0].qTop"), "{err}");
    }

    #[test]
    fn enums_accept_every_spelling() {
        let s = schema();
        for mode in [json!("S"), json!("DATA_MODE_STRAIGHT"), json!(0)] {
            let prop = json!([{"qInfo": {"qType": "t"}, "qHyperCubeDef": {"qMode": mode}}]);
            s.check_params("Doc", "CreateSessionObject", Some(&prop))
                .unwrap();
        }
        let prop = json!([{"qInfo": {"qType": "t"}, "qHyperCubeDef": {"qMode": "Q"}}]);
        assert!(
            s.check_params("Doc", "CreateSessionObject", Some(&prop))
                .is_err()
        );
    }

    fn create(properties: Json) -> std::result::Result<Vec<Option<Json>>, String> {
        schema().check_params("Doc", "CreateSessionObject", Some(&json!([properties])))
    }

    #[test]
    fn misspelled_members_of_known_structures_are_violations() {
        let dimension = |sort: Json| {
            json!({
                "qInfo": {"qType": "t"},
                "qHyperCubeDef": {"qDimensions": [{"qDef": {
                    "qFieldDefs": ["Region"],
                    "qSortCriterias": [sort]
                }}]}
            })
        };
        create(dimension(json!({"qSortByLoadOrder": 1}))).unwrap();
        let err = create(dimension(json!({"qSortByLoadOrdr": 1}))).unwrap_err();
        assert!(err.contains("qSortByLoadOrdr"), "{err}");
        assert!(err.contains("SortCriteria"), "{err}");

        let err = create(json!({"qInfo": {"qType": "t", "qTitle": "x"}})).unwrap_err();
        assert!(err.contains("qInfo.qTitle"), "{err}");
        let err =
            create(json!({"qInfo": {"qType": "t"}, "qHyperCubeDef": {"qMod": "S"}})).unwrap_err();
        assert!(err.contains("qHyperCubeDef.qMod"), "{err}");
    }

    #[test]
    fn custom_members_only_at_the_top_of_properties() {
        let custom = json!({
            "qInfo": {"qType": "t"},
            "title": "Sales",
            "settings": {"color": "red", "qHyperCubeDef": {"qMode": "S"}},
            "qStringExpression": {"qExpr": "=1"},
            "subtitle": {"qStringExpression": "='x'"}
        });
        create(custom).unwrap();
        let nested = json!({
            "qInfo": {"qType": "t"},
            "settings": {"chart": {"qHyperCubeDef": {"qMode": "Q"}}}
        });
        let err = create(nested).unwrap_err();
        assert!(err.contains("settings.chart.qHyperCubeDef.qMode"), "{err}");
        let inside = json!({"qInfo": {"qType": "t"}, "qHyperCubeDef": {"title": "Sales"}});
        let err = create(inside).unwrap_err();
        assert!(err.contains("qHyperCubeDef.title"), "{err}");
    }
}
