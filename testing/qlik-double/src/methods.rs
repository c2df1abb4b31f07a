//! The engine methods: dispatch by the handle's class and the method name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mad_core::{Table, Value};
use serde_json::{Map, Value as Json, json};

use crate::app::{App, Variable};
use crate::data::{self, Cube, DocState, NxPage, search_matches};
use crate::expr::{general_number, value_text};
use crate::rpc::{ObjectInterface, Reply, RpcError, codes, null_object};
use crate::session::{GLOBAL, HandleKind, Session};

const PRIVILEGES: [&str; 4] = ["read", "update", "delete", "exportdata"];

/// What the methods need from the engine around the session.
pub(crate) struct Engine<'a> {
    pub apps: &'a BTreeMap<String, Arc<App>>,
    pub version: &'a str,
    pub missing_objects_as_errors: bool,
    pub reload_time: &'a str,
    pub unique_id: &'a dyn Fn() -> String,
}

/// Positional parameters, already checked against the schema.
pub(crate) struct Params<'a>(pub &'a [Option<Json>]);

impl Params<'_> {
    fn get(&self, i: usize) -> Option<&Json> {
        self.0.get(i).and_then(Option::as_ref)
    }

    fn str(&self, i: usize) -> &str {
        self.get(i).and_then(Json::as_str).unwrap_or("")
    }

    fn bool(&self, i: usize) -> bool {
        self.get(i).and_then(Json::as_bool).unwrap_or(false)
    }

    fn pages(&self, i: usize) -> Result<Vec<NxPage>, RpcError> {
        let pages = self.get(i).cloned().unwrap_or(Json::Array(Vec::new()));
        serde_json::from_value(pages)
            .map_err(|e| RpcError::new(codes::JSON_RPC_INVALID_PARAMETERS, e.to_string()))
    }
}

fn not_implemented(class: &str, method: &str) -> RpcError {
    RpcError::new(
        codes::GENERIC_NOT_IMPLEMENTED,
        format!("{class}.{method} is not implemented by the test double"),
    )
}

/// Runs one request on the session.
pub(crate) fn call(
    engine: &Engine<'_>,
    session: &mut Session,
    handle: i32,
    kind: Option<&HandleKind>,
    method: &str,
    params: &Params<'_>,
) -> Result<Reply, RpcError> {
    match kind {
        None if handle == GLOBAL => global(engine, session, method, params),
        None => Err(RpcError::new(
            codes::JSON_RPC_INVALID_PARAMETERS,
            "Invalid handle",
        )),
        Some(HandleKind::Doc) => doc(engine, session, handle, method, params),
        Some(HandleKind::Field(col)) => field(session, *col, method, params),
        Some(HandleKind::Object(id)) => object(session, handle, &id.clone(), method, params),
        Some(HandleKind::Variable(id)) => variable(session, handle, &id.clone(), method, params),
        Some(HandleKind::Measure(id)) => measure(session, handle, &id.clone(), method),
        Some(HandleKind::Dimension(id)) => dimension(session, handle, &id.clone(), method),
    }
}

fn doc_state(session: &Session) -> Result<&DocState, RpcError> {
    session
        .doc
        .as_ref()
        .ok_or_else(|| RpcError::new(codes::APP_INVALID, "No active document"))
}

fn doc_state_mut(session: &mut Session) -> Result<&mut DocState, RpcError> {
    session
        .doc
        .as_mut()
        .ok_or_else(|| RpcError::new(codes::APP_INVALID, "No active document"))
}

fn doc_interface(session: &mut Session, with_id: bool) -> Json {
    let handle = session.open_handle(HandleKind::Doc);
    let id = session.doc.as_ref().map(|d| d.app.id.clone());
    ObjectInterface {
        q_type: "Doc",
        q_handle: handle,
        q_generic_type: None,
        q_generic_id: id.filter(|_| with_id),
    }
    .to_json()
}

// ---------------------------------------------------------------------------------------------
// Global

fn global(
    engine: &Engine<'_>,
    session: &mut Session,
    method: &str,
    p: &Params<'_>,
) -> Result<Reply, RpcError> {
    match method {
        "OpenDoc" => open_doc(engine, session, p.str(0)),
        "GetActiveDoc" => {
            doc_state(session)?;
            Ok(Reply::new(json!({"qReturn": doc_interface(session, true)})))
        }
        "CreateSessionApp" => {
            if let Some(doc) = &session.doc {
                return Err(RpcError::new(codes::APP_ALREADY_OPEN, doc.app.id.clone()));
            }
            let id = format!("SessionApp_{}", (engine.unique_id)());
            let app = Arc::new(App::session(&id));
            let base = app.table.clone();
            session.doc = Some(DocState::new(app, base));
            let doc = doc_interface(session, false);
            let handle = session.doc_handle().unwrap_or(1);
            Ok(Reply::new(json!({"qReturn": doc, "qSessionAppId": id})).changed(vec![handle]))
        }
        "EngineVersion" => Ok(Reply::new(
            json!({"qVersion": {"qComponentVersion": engine.version}}),
        )),
        "ProductVersion" | "QvVersion" => Ok(Reply::new(json!({"qReturn": engine.version}))),
        "QTProduct" => Ok(Reply::new(json!({"qReturn": "Qlik Sense"}))),
        "OSName" => Ok(Reply::new(json!({"qReturn": "linux"}))),
        "IsDesktopMode" | "IsPersonalMode" => Ok(Reply::new(json!({"qReturn": false}))),
        "GetAuthenticatedUser" => Ok(Reply::new(json!({"qReturn": session.user.to_string()}))),
        "GetUniqueID" => Ok(Reply::new(json!({"qUniqueID": (engine.unique_id)()}))),
        "GetDocList" => {
            let list: Vec<Json> = engine
                .apps
                .values()
                .map(|app| {
                    json!({
                        "qDocName": app.title, "qConnectedUsers": 0, "qFileTime": 0,
                        "qFileSize": 0, "qDocId": app.id,
                        "qMeta": {"privileges": PRIVILEGES},
                        "qLastReloadTime": engine.reload_time, "qTitle": app.title,
                        "qThumbnail": {}, "qHasSectionAccess": app.section_access.is_some()
                    })
                })
                .collect();
            Ok(Reply::new(json!({"qDocList": list})))
        }
        "CancelRequest" | "AbortRequest" | "AbortAll" => Ok(Reply::new(json!({}))),
        _ => Err(not_implemented("Global", method)),
    }
}

fn open_doc(engine: &Engine<'_>, session: &mut Session, name: &str) -> Result<Reply, RpcError> {
    if let Some(doc) = &session.doc {
        return Err(RpcError::new(codes::APP_ALREADY_OPEN, doc.app.id.clone()));
    }
    let app = engine
        .apps
        .get(name)
        .or_else(|| engine.apps.values().find(|a| a.title == name))
        .ok_or_else(|| RpcError::new(codes::APP_NOT_FOUND, name))?
        .clone();
    let base = match &app.section_access {
        None => app.table.clone(),
        Some(access) => {
            let allowed = access
                .values_for(&session.user.qualified(), &session.user.id)
                .ok_or_else(|| RpcError::new(codes::GENERIC_ACCESS_DENIED, name))?;
            reduce(&app.table, &access.field, allowed)
        }
    };
    session.doc = Some(DocState::new(app, base));
    let doc = doc_interface(session, true);
    let handle = session.doc_handle().unwrap_or(1);
    Ok(Reply::new(json!({"qReturn": doc})).changed(vec![handle]))
}

/// The rows of `table` whose `field` holds one of `allowed`; nothing when the field is missing.
fn reduce(table: &Table, field: &str, allowed: &[String]) -> Table {
    match table.column_index(field) {
        Some(col) => table.filter_rows(|r| allowed.iter().any(|v| table.value(r, col).matches(v))),
        None => table.filter_rows(|_| false),
    }
}

// ---------------------------------------------------------------------------------------------
// Doc

fn doc(
    engine: &Engine<'_>,
    session: &mut Session,
    handle: i32,
    method: &str,
    p: &Params<'_>,
) -> Result<Reply, RpcError> {
    doc_state(session)?;
    match method {
        "GetAppLayout" => {
            session.validate(handle);
            let doc = doc_state(session)?;
            Ok(Reply::new(json!({"qLayout": app_layout(engine, doc)})))
        }
        "GetLocaleInfo" => Ok(Reply::new(
            json!({"qReturn": locale_info(doc_state(session)?)}),
        )),
        "GetField" => {
            check_state(p.str(1))?;
            let Some(col) = doc_state(session)?.column(p.str(0)) else {
                return missing(engine, p.str(0));
            };
            let h = session.open_handle(HandleKind::Field(col));
            Ok(Reply::new(
                json!({"qReturn": interface("Field", h, None, None)}),
            ))
        }
        "GetFieldDescription" => {
            let doc = doc_state(session)?;
            let Some(col) = doc.column(p.str(0)) else {
                return missing(engine, p.str(0));
            };
            Ok(Reply::new(json!({"qReturn": field_description(doc, col)})))
        }
        "GetTablesAndKeys" => Ok(Reply::new(tables_and_keys(doc_state(session)?))),
        "GetAllInfos" => Ok(Reply::new(json!({"qInfos": all_infos(session)}))),
        "CreateSessionObject" => create_session_object(engine, session, p.get(0)),
        "DestroySessionObject" => {
            let id = p.str(0).to_string();
            let existed = session.objects.remove(&id).is_some();
            session.cubes.remove(&id);
            let closed = session.close_handles(&HandleKind::Object(id));
            let mut reply = Reply::new(json!({"qSuccess": existed}));
            reply.close = closed;
            Ok(reply)
        }
        "GetObject" => {
            let id = p.str(0);
            let app = doc_state(session)?.app.clone();
            if !session.objects.contains_key(id) {
                let Some(stored) = app.objects.get(id) else {
                    return missing(engine, id);
                };
                session.objects.insert(id.to_string(), stored.clone());
            }
            Ok(Reply::new(
                json!({"qReturn": object_interface(session, id)}),
            ))
        }
        "GetMeasure" | "GetDimension" => {
            let id = p.str(0);
            let app = &doc_state(session)?.app;
            let (exists, kind) = if method == "GetMeasure" {
                (
                    app.measures.contains_key(id),
                    HandleKind::Measure(id.to_string()),
                )
            } else {
                (
                    app.dimensions.contains_key(id),
                    HandleKind::Dimension(id.to_string()),
                )
            };
            if !exists {
                return missing(engine, id);
            }
            let class = kind.class();
            let generic = if method == "GetMeasure" {
                "measure"
            } else {
                "dimension"
            };
            let h = session.open_handle(kind);
            Ok(Reply::new(
                json!({"qReturn": interface(class, h, Some(generic), Some(id))}),
            ))
        }
        "ClearAll" => {
            check_state(p.str(1))?;
            doc_state_mut(session)?.clear_all(p.bool(0));
            session.record("Doc.ClearAll", "", Vec::new());
            let changed = session.invalidate();
            Ok(Reply::new(json!({})).changed(changed))
        }
        "Evaluate" => {
            let text = match doc_state(session)?.evaluate(p.str(0)) {
                Ok(v) => value_text(&v),
                Err(message) => format!("Error: {message}"),
            };
            Ok(Reply::new(json!({"qReturn": text})))
        }
        "EvaluateEx" => {
            let value = match doc_state(session)?.evaluate(p.str(0)) {
                Ok(Value::Null) => json!({"qText": "-", "qIsNumeric": false, "qNumber": "NaN"}),
                Ok(v) => match v.as_number() {
                    Some(n) => {
                        json!({"qText": value_text(&v), "qIsNumeric": true, "qNumber": data::num_json(Some(n))})
                    }
                    None => json!({"qText": value_text(&v), "qIsNumeric": false, "qNumber": "NaN"}),
                },
                Err(message) => {
                    json!({"qText": format!("Error: {message}"), "qIsNumeric": false, "qNumber": "NaN"})
                }
            };
            Ok(Reply::new(json!({"qValue": value})))
        }
        "GetVariableByName" | "GetVariableById" => {
            let key = p.str(0);
            let by_name = method == "GetVariableByName";
            let found = doc_state(session)?
                .variables
                .iter()
                .find(|v| if by_name { v.name == key } else { v.id == key })
                .map(|v| v.id.clone());
            let Some(id) = found else {
                return missing(engine, key);
            };
            let h = session.open_handle(HandleKind::Variable(id.clone()));
            Ok(Reply::new(
                json!({"qReturn": interface("GenericVariable", h, Some("variable"), Some(&id))}),
            ))
        }
        "CreateSessionVariable" => {
            let prop = p.get(0).cloned().unwrap_or(Json::Null);
            let name = prop["qName"].as_str().unwrap_or("").to_string();
            if name.is_empty() {
                return Err(RpcError::new(18000, "qName"));
            }
            let doc = doc_state_mut(session)?;
            if doc.variables.iter().any(|v| v.name == name) {
                return Err(RpcError::new(18001, name));
            }
            let id = prop["qInfo"]["qId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| (engine.unique_id)());
            doc.variables.push(Variable {
                id: id.clone(),
                name,
                definition: prop["qDefinition"].as_str().unwrap_or("").to_string(),
                session: true,
            });
            let h = session.open_handle(HandleKind::Variable(id.clone()));
            Ok(Reply::new(
                json!({"qReturn": interface("GenericVariable", h, Some("variable"), Some(&id))}),
            ))
        }
        "DestroySessionVariable" => {
            let id = p.str(0).to_string();
            let doc = doc_state_mut(session)?;
            let before = doc.variables.len();
            doc.variables.retain(|v| !(v.session && v.id == id));
            let removed = doc.variables.len() < before;
            let closed = if removed {
                session.close_handles(&HandleKind::Variable(id))
            } else {
                Vec::new()
            };
            let mut reply = Reply::new(json!({"qSuccess": removed}));
            reply.close = closed;
            Ok(reply)
        }
        "AbortModal" => Ok(Reply::new(json!({}))),
        _ => Err(not_implemented("Doc", method)),
    }
}

/// The answer for an object, field or variable that does not exist: by default the null
/// reference the engine returns (`qType` and `qHandle` null), or error 2 when configured.
fn missing(engine: &Engine<'_>, id: &str) -> Result<Reply, RpcError> {
    if engine.missing_objects_as_errors {
        return Err(RpcError::new(codes::GENERIC_NOT_FOUND, id));
    }
    Ok(Reply::new(json!({"qReturn": null_object()})))
}

fn check_state(state: &str) -> Result<(), RpcError> {
    if state.is_empty() || state == "$" {
        return Ok(());
    }
    Err(RpcError::new(
        codes::GENERIC_NOT_IMPLEMENTED,
        format!("alternate state {state}: the test double has only the default state"),
    ))
}

fn interface(
    class: &'static str,
    handle: i32,
    generic_type: Option<&str>,
    id: Option<&str>,
) -> Json {
    ObjectInterface {
        q_type: class,
        q_handle: handle,
        q_generic_type: generic_type.map(str::to_string),
        q_generic_id: id.map(str::to_string),
    }
    .to_json()
}

fn object_interface(session: &mut Session, id: &str) -> Json {
    let generic_type = session.objects[id]["qInfo"]["qType"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let h = session.open_handle(HandleKind::Object(id.to_string()));
    interface("GenericObject", h, Some(&generic_type), Some(id))
}

fn create_session_object(
    engine: &Engine<'_>,
    session: &mut Session,
    prop: Option<&Json>,
) -> Result<Reply, RpcError> {
    let mut prop = prop.cloned().unwrap_or_else(|| json!({}));
    if !prop.is_object() {
        return Err(RpcError::new(codes::JSON_RPC_INVALID_PARAMETERS, "qProp"));
    }
    let given = prop["qInfo"]["qId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let id = given.unwrap_or_else(|| (engine.unique_id)());
    if session.objects.contains_key(&id) {
        return Err(RpcError::new(codes::GENERIC_ALREADY_EXISTS, id));
    }
    let kind = prop["qInfo"]["qType"].as_str().unwrap_or("").to_string();
    prop["qInfo"] = json!({"qId": id, "qType": kind});
    session.objects.insert(id.clone(), prop);
    Ok(Reply::new(
        json!({"qReturn": object_interface(session, &id)}),
    ))
}

fn all_infos(session: &Session) -> Vec<Json> {
    let Some(doc) = &session.doc else {
        return Vec::new();
    };
    let mut infos: BTreeMap<String, String> = doc
        .app
        .objects
        .iter()
        .map(|(id, p)| {
            (
                id.clone(),
                p["qInfo"]["qType"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (id, p) in &session.objects {
        infos.insert(
            id.clone(),
            p["qInfo"]["qType"].as_str().unwrap_or("").to_string(),
        );
    }
    let mut out: Vec<Json> = infos
        .into_iter()
        .map(|(id, t)| json!({"qId": id, "qType": t}))
        .collect();
    out.extend(
        doc.app
            .measures
            .keys()
            .map(|id| json!({"qId": id, "qType": "measure"})),
    );
    out.extend(
        doc.app
            .dimensions
            .keys()
            .map(|id| json!({"qId": id, "qType": "dimension"})),
    );
    out.extend(
        doc.variables
            .iter()
            .map(|v| json!({"qId": v.id, "qType": "variable"})),
    );
    out
}

fn app_layout(engine: &Engine<'_>, doc: &DocState) -> Json {
    json!({
        "qTitle": doc.app.title,
        "qFileName": doc.app.id,
        "qLastReloadTime": engine.reload_time,
        "qHasScript": true,
        "qStateNames": [],
        "qMeta": {"privileges": PRIVILEGES},
        "qLocaleInfo": locale_info(doc),
        "qHasData": !doc.app.session_app,
        "qIsSessionApp": doc.app.session_app,
        "qThumbnail": {},
        "qUnsupportedFeatures": [],
        "qUsage": "ANALYTICS"
    })
}

fn locale_info(doc: &DocState) -> Json {
    let locale = &doc.app.locale;
    let short = |names: &[&str]| {
        names
            .iter()
            .map(|n| n.chars().take(3).collect::<String>())
            .collect::<Vec<_>>()
    };
    json!({
        "qDecimalSep": locale.decimal.to_string(),
        "qThousandSep": locale.thousands.to_string(),
        "qListSep": ",",
        "qMoneyDecimalSep": locale.decimal.to_string(),
        "qMoneyThousandSep": locale.thousands.to_string(),
        "qCurrentYear": 2026,
        "qMoneyFmt": "$#,##0.00;-$#,##0.00",
        "qTimeFmt": "h:mm:ss TT",
        "qDateFmt": locale.date_code,
        "qTimestampFmt": format!("{} h:mm:ss[.fff] TT", locale.date_code),
        "qCalendarStrings": {
            "qDayNames": short(&locale.day_names),
            "qMonthNames": short(&locale.month_names),
            "qLongDayNames": locale.day_names,
            "qLongMonthNames": locale.month_names
        },
        "qFirstWeekDay": 6,
        "qBrokenWeeks": true,
        "qReferenceDay": 0,
        "qFirstMonthOfYear": 1,
        "qCollation": locale.tag
    })
}

fn field_description(doc: &DocState, col: usize) -> Json {
    json!({
        "qInternalNumber": col,
        "qName": doc.field_name(col),
        "qSrcTables": [doc.app.table_name],
        "qCardinal": doc.cardinal(col),
        "qTotalCount": doc.base.len(),
        "qIsNumeric": doc.is_numeric(col),
        "qTags": doc.field_tags(col)
    })
}

fn tables_and_keys(doc: &DocState) -> Json {
    let rows = doc.base.len();
    let fields: Vec<Json> = (0..doc.base.fields().len())
        .map(|col| {
            let non_null = doc.base.column_values(col).filter(|v| !v.is_null()).count();
            let cardinal = doc.cardinal(col);
            json!({
                "qName": doc.field_name(col),
                "qOriginalFields": [],
                "qPresent": true,
                "qHasNull": non_null < rows,
                "qHasDuplicates": cardinal < rows,
                "qInformationDensity": if rows == 0 { 0.0 } else { non_null as f64 / rows as f64 },
                "qnNonNulls": non_null,
                "qnRows": rows,
                "qSubsetRatio": 1,
                "qnTotalDistinctValues": cardinal,
                "qnPresentDistinctValues": cardinal,
                "qKeyType": "NOT_KEY",
                "qTags": doc.field_tags(col),
                "qDerivedFields": [],
                "qReadableName": doc.field_name(col)
            })
        })
        .collect();
    json!({
        "qtr": [{
            "qName": doc.app.table_name,
            "qNoOfRows": rows,
            "qFields": fields,
            "qPos": {"qx": 0, "qy": 0},
            "qTableTags": [],
            "qProfilingData": {}
        }],
        "qk": []
    })
}

// ---------------------------------------------------------------------------------------------
// Field

fn field(
    session: &mut Session,
    col: usize,
    method: &str,
    p: &Params<'_>,
) -> Result<Reply, RpcError> {
    let doc = doc_state_mut(session)?;
    let (ok, select) = match method {
        "GetCardinal" => return Ok(Reply::new(json!({"qReturn": doc.cardinal(col)}))),
        "GetAndMode" => return Ok(Reply::new(json!({"qReturn": false}))),
        "GetNxProperties" => return Ok(Reply::new(json!({"qProperties": {}}))),
        "SelectValues" => {
            let wanted: Vec<Json> = p
                .get(0)
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            let symbols = doc.matching(col, |v| wanted.iter().any(|w| field_value_matches(w, v)));
            (doc.select(col, symbols, p.bool(1), p.bool(2)), true)
        }
        "Select" | "ToggleSelect" => {
            let pattern = p.str(0).to_string();
            let symbols = doc.matching(col, |v| search_matches(&pattern, v));
            (
                doc.select(col, symbols, method == "ToggleSelect", p.bool(1)),
                true,
            )
        }
        "LowLevelSelect" => {
            let wanted: BTreeSet<u32> = p
                .get(0)
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as u32)
                        .collect()
                })
                .unwrap_or_default();
            let symbols = doc
                .matching(col, |_| true)
                .intersection(&wanted)
                .copied()
                .collect();
            (doc.select(col, symbols, p.bool(1), p.bool(2)), true)
        }
        "SelectAll" | "SelectPossible" => {
            let possible: BTreeSet<u32> = doc
                .field_states(col, true)
                .into_iter()
                .filter(|(_, s)| matches!(*s, "O" | "S" | "A" | "L"))
                .map(|(sym, _)| sym)
                .collect();
            (doc.select(col, possible, false, p.bool(0)), true)
        }
        "Clear" => (doc.clear(col), true),
        "ClearAllButThis" => {
            let keep = doc.selections_of(col);
            doc.clear_all(false);
            if let Some(set) = keep {
                doc.select(col, set, false, true);
            }
            (true, true)
        }
        "Lock" => (doc.set_locked(col, true), true),
        "Unlock" => (doc.set_locked(col, false), true),
        _ => return Err(not_implemented("Field", method)),
    };
    let name = doc.field_name(col).to_string();
    let selected = doc.selected_in(col);
    if select {
        session.record(&format!("Field.{method}"), &name, selected);
    }
    let changed = if ok { session.invalidate() } else { Vec::new() };
    Ok(Reply::new(json!({"qReturn": ok})).changed(changed))
}

/// A `FieldValue` matches on the number when `qIsNumeric`, else on the text.
fn field_value_matches(wanted: &Json, value: &Value) -> bool {
    if wanted["qIsNumeric"].as_bool().unwrap_or(false) {
        let number = wanted["qNumber"].as_f64();
        return number.is_some() && value.as_number() == number;
    }
    let text = wanted["qText"].as_str().unwrap_or("");
    match value {
        Value::Null => false,
        other => value_text(other) == text,
    }
}

// ---------------------------------------------------------------------------------------------
// GenericObject

fn object(
    session: &mut Session,
    handle: i32,
    id: &str,
    method: &str,
    p: &Params<'_>,
) -> Result<Reply, RpcError> {
    let props = session
        .objects
        .get(id)
        .cloned()
        .ok_or_else(|| RpcError::new(codes::GENERIC_NOT_FOUND, id))?;
    match method {
        "GetLayout" => {
            let layout = object_layout(session, id, &props)?;
            session.validate(handle);
            Ok(Reply::new(json!({"qLayout": layout})))
        }
        "GetProperties" => Ok(Reply::new(json!({"qProp": props}))),
        "GetEffectiveProperties" => Ok(Reply::new(json!({"qProp": props}))),
        "GetInfo" => Ok(Reply::new(json!({"qInfo": props["qInfo"]}))),
        "SetProperties" => {
            let mut next = p.get(0).cloned().unwrap_or_else(|| json!({}));
            next["qInfo"] = props["qInfo"].clone();
            session.objects.insert(id.to_string(), next);
            session.cubes.remove(id);
            let changed = session.invalidate_one(handle);
            Ok(Reply::new(json!({})).changed(changed))
        }
        "GetHyperCubeData" => {
            if p.str(0) != "/qHyperCubeDef" || props.get("qHyperCubeDef").is_none() {
                return Err(RpcError::new(codes::GENERIC_INVALID_PATH, p.str(0)));
            }
            let cube = cube(session, id, &props["qHyperCubeDef"])?;
            let pages = data::pages(&cube.rows, cube.width, cube.dimensions, &p.pages(1)?)?;
            Ok(Reply::new(json!({"qDataPages": pages})))
        }
        "GetListObjectData" => {
            if p.str(0) != "/qListObjectDef" || props.get("qListObjectDef").is_none() {
                return Err(RpcError::new(codes::GENERIC_INVALID_PATH, p.str(0)));
            }
            let list = doc_state(session)?.list_object(&props["qListObjectDef"])?;
            let pages = data::pages(&list.rows, 1, 1, &p.pages(1)?)?;
            Ok(Reply::new(json!({"qDataPages": pages})))
        }
        "SelectListObjectValues" => {
            if p.str(0) != "/qListObjectDef" {
                return Err(RpcError::new(codes::GENERIC_INVALID_PATH, p.str(0)));
            }
            let field = first_field(&props["qListObjectDef"]);
            select_elements(
                session,
                &field,
                p.get(1),
                p.bool(2),
                p.bool(3),
                "GenericObject.SelectListObjectValues",
            )
        }
        "SelectHyperCubeValues" => {
            if p.str(0) != "/qHyperCubeDef" {
                return Err(RpcError::new(codes::GENERIC_INVALID_PATH, p.str(0)));
            }
            let dim_no = p.get(1).and_then(Json::as_u64).unwrap_or(0) as usize;
            let field = first_field(&props["qHyperCubeDef"]["qDimensions"][dim_no]);
            select_elements(
                session,
                &field,
                p.get(2),
                p.bool(3),
                false,
                "GenericObject.SelectHyperCubeValues",
            )
        }
        _ => Err(not_implemented("GenericObject", method)),
    }
}

fn first_field(def: &Json) -> String {
    def["qDef"]["qFieldDefs"][0]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn select_elements(
    session: &mut Session,
    field: &str,
    values: Option<&Json>,
    toggle: bool,
    soft_lock: bool,
    method: &str,
) -> Result<Reply, RpcError> {
    let doc = doc_state_mut(session)?;
    let col = doc
        .column(field)
        .ok_or_else(|| RpcError::new(codes::GENERIC_NOT_FOUND, field))?;
    let wanted: BTreeSet<u32> = values
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_u64)
                .map(|v| v as u32)
                .collect()
        })
        .unwrap_or_default();
    let symbols = doc
        .matching(col, |_| true)
        .intersection(&wanted)
        .copied()
        .collect();
    let ok = doc.select(col, symbols, toggle, soft_lock);
    let name = doc.field_name(col).to_string();
    let selected = doc.selected_in(col);
    session.record(method, &name, selected);
    let changed = if ok { session.invalidate() } else { Vec::new() };
    Ok(Reply::new(json!({"qSuccess": ok})).changed(changed))
}

/// The object's hypercube, computed once per selection state.
fn cube(session: &mut Session, id: &str, def: &Json) -> Result<Arc<Cube>, RpcError> {
    let doc = doc_state(session)?;
    if let Some((generation, cube)) = session.cubes.get(id)
        && *generation == doc.generation
    {
        return Ok(cube.clone());
    }
    let generation = doc.generation;
    let cube = Arc::new(doc.hypercube(def)?);
    session
        .cubes
        .insert(id.to_string(), (generation, cube.clone()));
    Ok(cube)
}

/// A generic object's layout: its properties with each `q…Def` replaced by the computed
/// structure, string and value expressions evaluated, and the `qMeta` the engine adds.
fn object_layout(session: &mut Session, id: &str, props: &Json) -> Result<Json, RpcError> {
    let mut layout = Map::new();
    let mut meta = json!({"privileges": PRIVILEGES});
    for (key, value) in props.as_object().into_iter().flatten() {
        match key.as_str() {
            "qInfo" => {
                layout.insert(key.clone(), value.clone());
            }
            "qMetaDef" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    meta[k] = v.clone();
                }
            }
            "qHyperCubeDef" => {
                let cube = hypercube_layout(session, id, value)?;
                layout.insert("qHyperCube".into(), cube);
            }
            "qListObjectDef" => {
                let list = list_object_layout(doc_state(session)?, value);
                layout.insert("qListObject".into(), list);
            }
            "qSelectionObjectDef" => {
                let selections = doc_state(session)?.selection_object();
                layout.insert("qSelectionObject".into(), selections);
            }
            k if k.starts_with('q') => {}
            _ => {
                let evaluated = evaluate_expressions(doc_state(session)?, value);
                layout.insert(key.clone(), evaluated);
            }
        }
    }
    layout.insert("qMeta".into(), meta);
    layout.insert("qSelectionInfo".into(), json!({}));
    Ok(Json::Object(layout))
}

fn custom_members(def: &Json, into: &mut Map<String, Json>) {
    for (k, v) in def.as_object().into_iter().flatten() {
        if !k.starts_with('q') {
            into.insert(k.clone(), v.clone());
        }
    }
}

fn hypercube_layout(session: &mut Session, id: &str, def: &Json) -> Result<Json, RpcError> {
    let mut out = Map::new();
    let cube = match cube(session, id, def) {
        Ok(cube) => cube,
        Err(error) => {
            out.insert("qSize".into(), json!({"qcx": 0, "qcy": 0}));
            out.insert("qDimensionInfo".into(), json!([]));
            out.insert("qMeasureInfo".into(), json!([]));
            out.insert("qDataPages".into(), json!([]));
            out.insert(
                "qError".into(),
                json!({"qErrorCode": error.code, "qContext": error.parameter.unwrap_or_default()}),
            );
            custom_members(def, &mut out);
            return Ok(Json::Object(out));
        }
    };
    let initial: Vec<NxPage> =
        serde_json::from_value(def["qInitialDataFetch"].clone()).unwrap_or_default();
    let pages = match data::pages(&cube.rows, cube.width, cube.dimensions, &initial) {
        Ok(pages) => pages,
        Err(error) => {
            out.insert("qError".into(), json!({"qErrorCode": error.code}));
            json!([])
        }
    };
    out.insert(
        "qSize".into(),
        json!({"qcx": cube.width, "qcy": cube.rows.len()}),
    );
    out.insert(
        "qDimensionInfo".into(),
        Json::Array(cube.dimension_info.clone()),
    );
    out.insert(
        "qMeasureInfo".into(),
        Json::Array(cube.measure_info.clone()),
    );
    out.insert("qEffectiveInterColumnSortOrder".into(), json!(cube.order));
    out.insert(
        "qGrandTotalRow".into(),
        serde_json::to_value(&cube.grand_total).unwrap_or_default(),
    );
    out.insert("qDataPages".into(), pages);
    out.insert("qPivotDataPages".into(), json!([]));
    out.insert("qStackedDataPages".into(), json!([]));
    out.insert("qMode".into(), json!("S"));
    out.insert("qNoOfLeftDims".into(), json!(-1));
    out.insert("qTreeNodesOnDim".into(), json!([]));
    out.insert("qColumnOrder".into(), json!([]));
    custom_members(def, &mut out);
    Ok(Json::Object(out))
}

fn list_object_layout(doc: &DocState, def: &Json) -> Json {
    let mut out = Map::new();
    match doc.list_object(def) {
        Ok(list) => {
            let initial: Vec<NxPage> =
                serde_json::from_value(def["qInitialDataFetch"].clone()).unwrap_or_default();
            let pages = data::pages(&list.rows, 1, 1, &initial).unwrap_or_else(|e| {
                out.insert("qError".into(), json!({"qErrorCode": e.code}));
                json!([])
            });
            out.insert("qSize".into(), json!({"qcx": 1, "qcy": list.rows.len()}));
            out.insert("qDimensionInfo".into(), list.dimension_info);
            out.insert("qExpressions".into(), json!([]));
            out.insert("qDataPages".into(), pages);
        }
        Err(error) => {
            out.insert("qSize".into(), json!({"qcx": 0, "qcy": 0}));
            out.insert("qDataPages".into(), json!([]));
            out.insert(
                "qError".into(),
                json!({"qErrorCode": error.code, "qContext": error.parameter.unwrap_or_default()}),
            );
        }
    }
    custom_members(def, &mut out);
    Json::Object(out)
}

/// Evaluates `{"qStringExpression": …}` and `{"qValueExpression": …}` members of custom
/// properties into a text and a number, as layouts show them.
fn evaluate_expressions(doc: &DocState, value: &Json) -> Json {
    match value {
        Json::Object(members) => {
            let expression = |key: &str| match members.get(key) {
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Object(o)) => o.get("qExpr").and_then(Json::as_str).map(str::to_string),
                _ => None,
            };
            if let Some(text) = expression("qStringExpression") {
                let result = doc.evaluate(&text).map(|v| value_text(&v));
                return Json::String(result.unwrap_or_else(|e| format!("Error: {e}")));
            }
            if let Some(text) = expression("qValueExpression") {
                let number = doc.evaluate(&text).ok().and_then(|v| v.as_number());
                return serde_json::to_value(data::Num(number.unwrap_or(f64::NAN)))
                    .unwrap_or_default();
            }
            Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), evaluate_expressions(doc, v)))
                    .collect(),
            )
        }
        Json::Array(items) => {
            Json::Array(items.iter().map(|v| evaluate_expressions(doc, v)).collect())
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// GenericVariable, GenericMeasure, GenericDimension

fn variable(
    session: &mut Session,
    handle: i32,
    id: &str,
    method: &str,
    p: &Params<'_>,
) -> Result<Reply, RpcError> {
    let doc = doc_state_mut(session)?;
    let index = doc
        .variables
        .iter()
        .position(|v| v.id == id)
        .ok_or_else(|| RpcError::new(codes::GENERIC_NOT_FOUND, id))?;
    let info = json!({"qId": id, "qType": "variable"});
    match method {
        "GetLayout" => {
            let definition = doc.variables[index].definition.clone();
            let (text, number) = variable_value(doc, &definition);
            let mut layout =
                json!({"qInfo": info, "qMeta": {"privileges": PRIVILEGES}, "qText": text});
            if let Some(n) = number {
                layout["qNum"] = data::num_json(Some(n));
            }
            session.validate(handle);
            Ok(Reply::new(json!({"qLayout": layout})))
        }
        "GetProperties" => {
            let v = &doc.variables[index];
            Ok(Reply::new(
                json!({"qProp": {"qInfo": info, "qMetaDef": {}, "qName": v.name, "qComment": "", "qDefinition": v.definition}}),
            ))
        }
        "GetInfo" => Ok(Reply::new(json!({"qInfo": info}))),
        "SetStringValue" | "SetNumValue" | "SetDualValue" => {
            let definition = match method {
                "SetStringValue" => p.str(0).to_string(),
                "SetNumValue" => p
                    .get(0)
                    .and_then(Json::as_f64)
                    .map(general_number)
                    .unwrap_or_default(),
                _ => p.str(0).to_string(),
            };
            doc.variables[index].definition = definition;
            doc.generation += 1;
            let changed = session.invalidate();
            Ok(Reply::new(json!({})).changed(changed))
        }
        _ => Err(not_implemented("GenericVariable", method)),
    }
}

/// A variable's text and number: an `=` definition is evaluated, else the text itself.
fn variable_value(doc: &DocState, definition: &str) -> (String, Option<f64>) {
    if definition.trim_start().starts_with('=') {
        return match doc.evaluate(definition) {
            Ok(v) => (value_text(&v), v.as_number()),
            Err(e) => (format!("Error: {e}"), None),
        };
    }
    (
        definition.to_string(),
        definition.trim().parse::<f64>().ok(),
    )
}

fn measure(session: &mut Session, handle: i32, id: &str, method: &str) -> Result<Reply, RpcError> {
    let app = doc_state(session)?.app.clone();
    let m = app
        .measures
        .get(id)
        .ok_or_else(|| RpcError::new(codes::GENERIC_NOT_FOUND, id))?;
    let info = json!({"qId": id, "qType": "measure"});
    let def = json!({"qLabel": m.label, "qDef": m.expression, "qGrouping": "N", "qExpressions": [], "qActiveExpression": 0});
    match method {
        "GetLayout" => {
            session.validate(handle);
            Ok(Reply::new(
                json!({"qLayout": {"qInfo": info, "qMeasure": def, "qMeta": {"privileges": PRIVILEGES}}}),
            ))
        }
        "GetProperties" => Ok(Reply::new(
            json!({"qProp": {"qInfo": info, "qMeasure": def, "qMetaDef": {"title": m.label}}}),
        )),
        "GetMeasure" => Ok(Reply::new(json!({"qMeasure": def}))),
        "GetInfo" => Ok(Reply::new(json!({"qInfo": info}))),
        _ => Err(not_implemented("GenericMeasure", method)),
    }
}

fn dimension(
    session: &mut Session,
    handle: i32,
    id: &str,
    method: &str,
) -> Result<Reply, RpcError> {
    let doc = doc_state(session)?;
    let app = doc.app.clone();
    let d = app
        .dimensions
        .get(id)
        .ok_or_else(|| RpcError::new(codes::GENERIC_NOT_FOUND, id))?;
    let info = json!({"qId": id, "qType": "dimension"});
    let def = json!({"qGrouping": "N", "qFieldDefs": [d.field], "qFieldLabels": [d.label]});
    match method {
        "GetLayout" => {
            let dim_infos: Vec<Json> = doc
                .column(&d.field)
                .map(|col| json!({"qApprMaxGlyphCount": 0, "qCardinal": doc.cardinal(col), "qTags": doc.field_tags(col)}))
                .into_iter()
                .collect();
            session.validate(handle);
            Ok(Reply::new(
                json!({"qLayout": {"qInfo": info, "qMeta": {"privileges": PRIVILEGES}, "qDim": def, "qDimInfos": dim_infos}}),
            ))
        }
        "GetProperties" => Ok(Reply::new(
            json!({"qProp": {"qInfo": info, "qDim": def, "qMetaDef": {"title": d.label}}}),
        )),
        "GetDimension" => Ok(Reply::new(json!({"qDim": def}))),
        "GetInfo" => Ok(Reply::new(json!({"qInfo": info}))),
        _ => Err(not_implemented("GenericDimension", method)),
    }
}
