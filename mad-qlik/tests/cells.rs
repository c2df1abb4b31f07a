//! Cells through the `qlik` source and the engine double: duals keep their text, columns keep
//! their number format, nulls stay null, and aggregations equal values computed from the same
//! data without the engine.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use common::*;
use mad_core::format::date_to_serial;
use mad_core::{
    ColumnBuilder, Field, FieldKind, FilterSet, NumberFormat, Query, QueryColumn, Schema, Table,
    Value,
};
use mad_qlik::engine::QlikAuth;
use mad_qlik_double::{App, QlikDouble};

const STOCKHOLM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/qvd/stockholm_temp/stockholm_temp.qvd"
);

const STOCKHOLM_CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/qvd/stockholm_temp/stockholm_temp.csv.gz"
);

fn money() -> NumberFormat {
    NumberFormat {
        code: "#,##0.00".into(),
        decimal: Some('.'),
        thousands: Some(','),
    }
}

fn euro() -> NumberFormat {
    NumberFormat {
        code: "#.##0,00".into(),
        decimal: Some(','),
        thousands: Some('.'),
    }
}

/// One row of the ledger: row id, region, order date, amount, price in euro, code.
type LedgerRow = (
    u32,
    Option<&'static str>,
    Option<(i64, u32, u32)>,
    Option<f64>,
    f64,
    Value,
);

fn ledger_rows() -> Vec<LedgerRow> {
    vec![
        (
            1,
            Some("East"),
            Some((2024, 1, 2)),
            Some(1234.5),
            1.5,
            Value::dual(7.0, "007"),
        ),
        (
            2,
            Some("East"),
            Some((2024, 3, 31)),
            Some(-7.0),
            2500.0,
            Value::text("0033B2"),
        ),
        (3, None, None, None, 10.0, Value::dual(237_841.0, "237841")),
        (
            4,
            Some("West"),
            Some((2023, 12, 24)),
            Some(0.25),
            99.99,
            Value::dual(7.0, "007"),
        ),
        (5, Some("West"), None, Some(1_000_000.0), 0.5, Value::Null),
        (
            6,
            Some("East"),
            Some((2024, 1, 2)),
            None,
            3.25,
            Value::text("0033B2"),
        ),
    ]
}

/// A table with every kind of cell the engine has: duals whose text is not the number's
/// (dates, "007"), numbers with a format, numbers with comma decimals, texts and nulls.
fn ledger() -> Table {
    let schema = Schema::new(vec![
        Field::new("Row", FieldKind::Integer),
        Field::new("Region", FieldKind::Text),
        Field::new("Order Date", FieldKind::Date).with_format(NumberFormat::new("YYYY-MM-DD")),
        Field::new("Amount", FieldKind::Number).with_format(money()),
        Field::new("Price", FieldKind::Number).with_format(euro()),
        Field::new("Code", FieldKind::Mixed),
    ]);
    let mut builders: Vec<ColumnBuilder> = (0..6).map(|_| ColumnBuilder::default()).collect();
    for (row, region, date, amount, price, code) in ledger_rows() {
        builders[0].push(Value::Number(f64::from(row)));
        builders[1].push(region.map_or(Value::Null, Value::text));
        builders[2].push(date.map_or(Value::Null, |(y, m, d)| {
            Value::dual(date_to_serial(y, m, d), format!("{y:04}-{m:02}-{d:02}"))
        }));
        builders[3].push(amount.map_or(Value::Null, Value::Number));
        builders[4].push(Value::Number(price));
        builders[5].push(code);
    }
    let columns = builders.into_iter().map(ColumnBuilder::finish).collect();
    Table::new(schema, columns).unwrap()
}

async fn ledger_engine() -> Engine {
    Engine::start(QlikDouble::builder().app(App::new("ledger", ledger()))).await
}

#[tokio::test]
async fn duals_formats_and_nulls_come_back_as_the_app_holds_them() {
    let engine = ledger_engine().await;
    let mut options = engine.options("ledger", QlikAuth::None);
    options.row_key = Some("Row".into());
    let source = engine.source(options);
    let query = Query::fields(["Region", "Order Date", "Amount", "Price", "Code"]);

    let rows = fetch(&source, &query, &FilterSet::all()).await.unwrap();
    assert_eq!(rows.len(), ledger_rows().len());

    let fields = rows.fields();
    assert_eq!(fields[0].kind, FieldKind::Text);
    assert_eq!(fields[0].format, None);
    assert_eq!(fields[1].kind, FieldKind::Date);
    assert_eq!(
        fields[1].format.as_ref().map(|f| f.code.as_str()),
        Some("YYYY-MM-DD")
    );
    assert_eq!(fields[2].kind, FieldKind::Number);
    assert_eq!(fields[2].format, Some(money()));
    assert_eq!(fields[3].format, Some(euro()), "comma decimals are kept");
    assert_eq!(fields[4].kind, FieldKind::Mixed);

    for (r, (_, region, date, amount, price, code)) in ledger_rows().into_iter().enumerate() {
        let want_region = region.map_or(Value::Null, Value::text);
        assert_eq!(rows.value(r, 0), &want_region, "row {r} region");
        let want_date = date.map_or(Value::Null, |(y, m, d)| {
            Value::dual(date_to_serial(y, m, d), format!("{y:04}-{m:02}-{d:02}"))
        });
        assert_eq!(rows.value(r, 1), &want_date, "row {r} date");
        assert_eq!(rows.value(r, 4), &code, "row {r} code");
        assert_eq!(rows.value(r, 2).as_number(), amount, "row {r} amount");
        assert_eq!(rows.value(r, 3).as_number(), Some(price), "row {r} price");
    }
    assert_eq!(rows.value(0, 2), &Value::dual(1234.5, "1,234.50"));
    assert_eq!(rows.value(1, 2), &Value::dual(-7.0, "-7.00"));
    assert_eq!(rows.value(4, 2), &Value::dual(1_000_000.0, "1,000,000.00"));
    assert_eq!(rows.value(1, 3), &Value::dual(2500.0, "2.500,00"));
    assert_eq!(rows.value(0, 3), &Value::dual(1.5, "1,50"));
    assert!(rows.value(2, 2).is_null() && rows.value(5, 2).is_null());
    engine.assert_no_violations();
}

#[tokio::test]
async fn nulls_stay_nulls_when_grouped_and_selected() {
    let engine = ledger_engine().await;
    let source = engine.source(engine.options("ledger", QlikAuth::None));
    let query = Query {
        columns: vec![
            QueryColumn::field("Region"),
            measure("Rows", "Count([Row])"),
            measure("Amounts", "Count([Amount])"),
        ],
    };

    let groups = fetch(&source, &query, &FilterSet::all()).await.unwrap();
    let by_region: BTreeMap<String, (f64, f64)> = (0..groups.len())
        .map(|r| {
            let region = match groups.value(r, 0) {
                Value::Null => "<null>".to_string(),
                v => v.as_text().unwrap().to_string(),
            };
            let count = |c| groups.value(r, c).as_number().unwrap();
            (region, (count(1), count(2)))
        })
        .collect();
    let expected = BTreeMap::from([
        ("<null>".to_string(), (1.0, 0.0)),
        ("East".to_string(), (3.0, 2.0)),
        ("West".to_string(), (2.0, 2.0)),
    ]);
    assert_eq!(by_region, expected, "the null region is its own group");
    engine.assert_no_violations();
}

#[tokio::test]
async fn min_max_avg_and_count_distinct_equal_the_ledger() {
    let engine = ledger_engine().await;
    let source = engine.source(engine.options("ledger", QlikAuth::None));
    let query = Query {
        columns: vec![
            QueryColumn::field("Region"),
            measure("Lowest", "Min([Amount])"),
            measure("Highest", "Max([Amount])"),
            measure("Mean", "Avg([Amount])"),
            measure("Codes", "Count(DISTINCT [Code])"),
            measure("First order", "Min([Order Date])"),
        ],
    };

    let groups = fetch(&source, &query, &FilterSet::all()).await.unwrap();
    for r in 0..groups.len() {
        let region = groups.value(r, 0).as_text().map(str::to_string);
        let rows: Vec<LedgerRow> = ledger_rows()
            .into_iter()
            .filter(|row| row.1.map(str::to_string) == region)
            .collect();
        let amounts: Vec<f64> = rows.iter().filter_map(|row| row.3).collect();
        let lowest = amounts.iter().copied().reduce(f64::min);
        let highest = amounts.iter().copied().reduce(f64::max);
        let mean =
            (!amounts.is_empty()).then(|| amounts.iter().sum::<f64>() / amounts.len() as f64);
        let codes: BTreeSet<String> = rows
            .iter()
            .filter(|row| !row.5.is_null())
            .map(|row| format!("{:?}", row.5))
            .collect();
        let first = rows
            .iter()
            .filter_map(|row| row.2.map(|(y, m, d)| date_to_serial(y, m, d)))
            .reduce(f64::min);

        let got = |c| groups.value(r, c).as_number();
        assert_eq!(got(1), lowest, "{region:?} min");
        assert_eq!(got(2), highest, "{region:?} max");
        assert_eq!(got(3), mean, "{region:?} avg");
        assert_eq!(
            got(4),
            Some(codes.len() as f64),
            "{region:?} count distinct"
        );
        assert_eq!(got(5), first, "{region:?} first order");
    }
    assert_eq!(groups.len(), 3, "East, West and the null region");
    engine.assert_no_violations();
}

/// Per site of the Stockholm file's CSV: lowest and highest raw temperature, mean of the
/// homogenised one, distinct days and rows.
#[derive(Debug, Default, Clone, PartialEq)]
struct SiteStats {
    lowest: f64,
    highest: f64,
    mean: f64,
    days: usize,
    rows: usize,
}

/// A site's raw and homogenised temperatures and its days, as the CSV lists them.
type SiteReadings = (Vec<f64>, Vec<f64>, BTreeSet<String>);

fn stockholm_stats_from_csv() -> BTreeMap<i64, SiteStats> {
    let mut csv = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(STOCKHOLM_CSV).unwrap())
        .read_to_string(&mut csv)
        .unwrap();
    let mut sites: BTreeMap<i64, SiteReadings> = BTreeMap::new();
    for line in csv.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        let site = sites.entry(cells[4].parse().unwrap()).or_default();
        site.0.push(cells[1].parse().unwrap());
        site.1.push(cells[2].parse().unwrap());
        site.2.insert(cells[0].to_string());
    }
    sites
        .into_iter()
        .map(|(site, (raw, homo, days))| {
            let stats = SiteStats {
                lowest: raw.iter().copied().reduce(f64::min).unwrap(),
                highest: raw.iter().copied().reduce(f64::max).unwrap(),
                mean: homo.iter().sum::<f64>() / homo.len() as f64,
                days: days.len(),
                rows: raw.len(),
            };
            (site, stats)
        })
        .collect()
}

#[tokio::test]
async fn aggregations_of_a_real_qvd_equal_its_csv() {
    let app = App::from_file("stockholm", STOCKHOLM).expect("the double loads the QVD");
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let source = engine.source(engine.options("stockholm", QlikAuth::None));
    let query = Query {
        columns: vec![
            QueryColumn::field("site"),
            measure("lowest", "Min([raw])"),
            measure("highest", "Max([raw])"),
            measure("mean", "Avg([homo])"),
            measure("days", "Count(DISTINCT [date])"),
            measure("rows", "Count([raw])"),
        ],
    };

    let groups = fetch(&source, &query, &FilterSet::all()).await.unwrap();
    let got: BTreeMap<i64, SiteStats> = (0..groups.len())
        .map(|r| {
            let number = |c| groups.value(r, c).as_number().unwrap();
            let stats = SiteStats {
                lowest: number(1),
                highest: number(2),
                mean: number(3),
                days: number(4) as usize,
                rows: number(5) as usize,
            };
            (number(0) as i64, stats)
        })
        .collect();
    let want = stockholm_stats_from_csv();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (site, want) in &want {
        let got = &got[site];
        assert_eq!(
            (got.lowest, got.highest),
            (want.lowest, want.highest),
            "site {site}"
        );
        assert!(
            close_enough(got.mean, want.mean),
            "site {site}: {got:?} vs {want:?}"
        );
        assert_eq!((got.days, got.rows), (want.days, want.rows), "site {site}");
    }
    engine.assert_no_violations();
}

#[tokio::test]
async fn dates_of_a_real_qvd_are_duals_with_their_text() {
    let app = App::from_file("stockholm", STOCKHOLM).expect("the double loads the QVD");
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let source = engine.source(engine.options("stockholm", QlikAuth::None));
    let filters = mad_core::FilterSet::from_filters([mad_core::Filter::new(
        "date",
        ["1756-01-01", "1900-06-15"],
    )]);
    let query = Query::fields(["date", "raw", "site"]);

    let rows = fetch(&source, &query, &filters).await.unwrap();
    assert_eq!(rows.fields()[0].kind, FieldKind::Date);
    let dates: Vec<&Value> = rows.column_values(0).collect();
    assert_eq!(
        dates,
        [
            &Value::dual(date_to_serial(1756, 1, 1), "1756-01-01"),
            &Value::dual(date_to_serial(1900, 6, 15), "1900-06-15"),
        ]
    );
    assert!(rows.column_values(1).all(|v| matches!(v, Value::Dual(..))));
    engine.assert_no_violations();
}
