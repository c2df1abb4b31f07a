//! Filter sets applied as field selections, and checked: after selecting, every filtered
//! field must hold exactly the values asked for, or nothing is fetched.

use std::collections::BTreeSet;

use mad_core::filter::FieldFilter;
use mad_core::{Error, ErrorKind, FilterSet, Result, Value};
use serde_json::{Value as Json, json};

use super::cube::{MAX_CELLS, cell_value, empty_page};
use super::errors::BACKEND;
use super::session::{EngineSession, Page};

/// One value of a field as a list object shows it.
#[derive(Debug, Clone)]
struct ListValue {
    element: i64,
    value: Value,
    state: String,
}

impl ListValue {
    fn is_selected(&self) -> bool {
        matches!(self.state.as_str(), "S" | "XS" | "L" | "XL")
    }
}

/// Clears the session's selections, then selects what `filters` allow and verifies it.
///
/// - A required filter on a field the app lacks is `InvalidConfig` naming the field; an
///   optional one is skipped.
/// - A value the field does not hold (for this user) is `EmptyFilter` naming it, so the
///   recipient is skipped rather than served anything else.
/// - "Only" filters select with `Field.SelectValues` (each value as text, and as a number
///   when it reads as one); "except" filters select every other value of the field.
/// - Afterwards each filtered field's selected values must be exactly the wanted ones
///   (selected, or selected but excluded by another field); anything else is an error.
pub async fn apply_filters(
    session: &mut EngineSession,
    filters: &FilterSet,
    fields: &[String],
) -> Result<()> {
    session.clear_all().await?;
    let mut applied = Vec::new();
    for (field, rule) in filters.rules() {
        if !fields.iter().any(|f| f == field) {
            if rule.optional {
                continue;
            }
            return Err(Error::invalid_config(format!(
                "filter on field '{field}', which the app does not have (fields: {})",
                fields.join(", ")
            ))
            .with_backend(BACKEND));
        }
        if rule.filter.is_empty() {
            return Err(empty(format!(
                "the filters on '{field}' have no value in common"
            )));
        }
        let list = list_object(session, field).await?;
        let values = list_values(session, list).await?;
        let wanted = wanted_elements(field, &rule.filter, &values)?;
        select(session, field, &rule.filter, list, &wanted).await?;
        applied.push((field, list, wanted));
    }
    for (field, list, wanted) in applied {
        let selected: BTreeSet<i64> = list_values(session, list)
            .await?
            .iter()
            .filter(|v| v.is_selected())
            .map(|v| v.element)
            .collect();
        if selected != wanted {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the engine did not keep the selection on '{field}' ({} values asked, {} \
                     selected; the field may be locked); nothing was fetched",
                    wanted.len(),
                    selected.len()
                ),
            )
            .with_backend(BACKEND));
        }
    }
    Ok(())
}

fn empty(message: String) -> Error {
    Error::new(ErrorKind::EmptyFilter, message).with_backend(BACKEND)
}

/// The element numbers a filter allows, refusing values the field does not hold.
fn wanted_elements(
    field: &str,
    filter: &FieldFilter,
    values: &[ListValue],
) -> Result<BTreeSet<i64>> {
    match filter {
        FieldFilter::Only(asked) => {
            let missing: Vec<String> = asked
                .iter()
                .filter(|w| !values.iter().any(|v| v.value.matches(w)))
                .map(|w| format!("'{w}'"))
                .collect();
            if !missing.is_empty() {
                return Err(empty(format!(
                    "field '{field}' has no value {}",
                    missing.join(", ")
                )));
            }
            Ok(values
                .iter()
                .filter(|v| asked.iter().any(|w| v.value.matches(w)))
                .map(|v| v.element)
                .collect())
        }
        FieldFilter::Except(excluded) => {
            let kept: BTreeSet<i64> = values
                .iter()
                .filter(|v| !v.value.is_null() && !excluded.iter().any(|w| v.value.matches(w)))
                .map(|v| v.element)
                .collect();
            if kept.is_empty() {
                return Err(empty(format!(
                    "the filter on '{field}' excludes every value"
                )));
            }
            Ok(kept)
        }
        FieldFilter::OnlyBut(asked, excluded) => {
            let asked = wanted_elements(field, &FieldFilter::Only(asked.clone()), values)?;
            let kept: BTreeSet<i64> = values
                .iter()
                .filter(|v| asked.contains(&v.element))
                .filter(|v| !excluded.iter().any(|w| v.value.matches(w)))
                .map(|v| v.element)
                .collect();
            if kept.is_empty() {
                return Err(empty(format!(
                    "the filters on '{field}' have no value in common"
                )));
            }
            Ok(kept)
        }
    }
}

async fn select(
    session: &EngineSession,
    field: &str,
    filter: &FieldFilter,
    list: i64,
    wanted: &BTreeSet<i64>,
) -> Result<()> {
    let selected = match filter {
        FieldFilter::Only(asked) => {
            let handle = session.get_field(field).await?.ok_or_else(|| {
                Error::invalid_config(format!("the app has no field '{field}'"))
                    .with_backend(BACKEND)
            })?;
            let values: Vec<Json> = asked.iter().flat_map(|v| field_values(v)).collect();
            session.select_values(handle, &values).await?
        }
        FieldFilter::Except(_) | FieldFilter::OnlyBut(..) => {
            let elements: Vec<i64> = wanted.iter().copied().collect();
            session.select_list_object_values(list, &elements).await?
        }
    };
    if !selected {
        tracing::debug!(
            backend = BACKEND,
            field,
            "the engine reported the selection as not made"
        );
    }
    Ok(())
}

/// A filter value as `FieldValue`s: its text, and its number when it reads as one (the
/// engine matches numeric field values on the number, texts on the text).
fn field_values(value: &str) -> Vec<Json> {
    let mut out = vec![json!({"qText": value, "qIsNumeric": false})];
    if let Some(n) = value.trim().parse::<f64>().ok().filter(|n| n.is_finite()) {
        out.push(json!({"qText": value, "qIsNumeric": true, "qNumber": n}));
    }
    out
}

/// The session's list object over `field`, created on first use.
async fn list_object(session: &mut EngineSession, field: &str) -> Result<i64> {
    if let Some(&handle) = session.list_objects.get(field) {
        return Ok(handle);
    }
    let properties = json!({
        "qInfo": {"qType": "mad-filter"},
        "qListObjectDef": {
            "qDef": {"qFieldDefs": [field], "qSortCriterias": [{"qSortByLoadOrder": 1}]},
            "qShowAlternatives": true,
            "qInitialDataFetch": [{"qLeft": 0, "qTop": 0, "qWidth": 1, "qHeight": MAX_CELLS}]
        }
    });
    let handle = session.create_session_object(properties).await?;
    session.list_objects.insert(field.to_string(), handle);
    Ok(handle)
}

/// Every value of a list object with its element number and state.
async fn list_values(session: &EngineSession, list: i64) -> Result<Vec<ListValue>> {
    let layout = session.get_layout(list).await?;
    let total = layout["qListObject"]["qSize"]["qcy"].as_u64().unwrap_or(0) as usize;
    let mut values = Vec::with_capacity(total);
    if let Some(first) = layout["qListObject"]["qDataPages"]
        .as_array()
        .and_then(|p| p.first())
        && first["qArea"]["qTop"] == 0
    {
        read_list_page(first, &mut values);
    }
    while values.len() < total {
        let page = Page {
            top: values.len(),
            left: 0,
            width: 1,
            height: MAX_CELLS.min(total - values.len()),
        };
        let data = session.get_list_object_data(list, page).await?;
        if data["qArea"]["qHeight"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        let before = values.len();
        read_list_page(&data, &mut values);
        if values.len() == before {
            return Err(empty_page("field value list", before, total));
        }
    }
    if values.len() != total {
        return Err(Error::new(
            ErrorKind::Transient,
            format!(
                "the engine listed {} of the field's {total} values",
                values.len()
            ),
        )
        .with_backend(BACKEND));
    }
    Ok(values)
}

fn read_list_page(page: &Json, values: &mut Vec<ListValue>) {
    for row in page["qMatrix"].as_array().into_iter().flatten() {
        let cell = &row[0];
        values.push(ListValue {
            element: cell["qElemNumber"].as_i64().unwrap_or(-1),
            value: cell_value(cell, false),
            state: cell["qState"].as_str().unwrap_or("").to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<ListValue> {
        [("East", 0), ("West", 1), ("South", 2)]
            .into_iter()
            .map(|(t, e)| ListValue {
                element: e,
                value: Value::text(t),
                state: "O".into(),
            })
            .collect()
    }

    #[test]
    fn only_and_except_pick_elements() {
        let only = FieldFilter::Only(["West".to_string()].into());
        assert_eq!(
            wanted_elements("Region", &only, &list()).unwrap(),
            BTreeSet::from([1])
        );
        let except = FieldFilter::Except(["West".to_string()].into());
        assert_eq!(
            wanted_elements("Region", &except, &list()).unwrap(),
            BTreeSet::from([0, 2])
        );
    }

    #[test]
    fn absent_values_are_named() {
        let only = FieldFilter::Only(["West".to_string(), "Atlantis".to_string()].into());
        let err = wanted_elements("Region", &only, &list()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EmptyFilter);
        assert!(err.to_string().contains("'Atlantis'"), "{err}");
    }

    #[test]
    fn numbers_are_sent_as_numbers_too() {
        assert_eq!(field_values("East").len(), 1);
        let both = field_values("2024");
        assert_eq!(both[1]["qNumber"], 2024.0);
    }
}
