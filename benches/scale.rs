//! Scale benchmark: N recipients over the flights table (336,776 rows), each seeing one
//! carrier at one airport on one day (carrier × origin × month × day, the first N of 11,864
//! such slices), a PDF and an XLSX each, written to a folder. Prints one JSON line with
//! reports per second, peak memory and the number of fetches (one per distinct filter set).
//!
//!     cargo bench --bench scale -- [RECIPIENTS]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mad::source::{CsvOptions, CsvSource};
use mad::{
    Aggregate, ColumnDef, DataSource, Engine, FetchRequest, Filter, FilterSet, OutputFormat, Query,
    Recipient, ReportDef, SortKey, Task,
};

fn report() -> ReportDef {
    let mut r = ReportDef::new(
        "flights",
        "Flights of {carrier} from {origin}, {month}/{day}/2013",
    );
    r.subtitle = Some("Prepared for {recipient.name}".into());
    r.columns = vec![
        ColumnDef::new("flight"),
        ColumnDef::new("tailnum"),
        ColumnDef::new("dest"),
        ColumnDef::new("dep_delay")
            .total(Aggregate::Avg)
            .format("0.0"),
        ColumnDef::new("arr_delay")
            .total(Aggregate::Avg)
            .format("0.0"),
        ColumnDef::new("air_time").total(Aggregate::Sum),
        ColumnDef::new("distance")
            .total(Aggregate::Sum)
            .format("#,##0"),
    ];
    r.sort = vec![SortKey::asc("flight")];
    r.formats = vec![OutputFormat::Pdf, OutputFormat::Xlsx];
    r.file_name = "{recipient.id}".into();
    r
}

#[tokio::main]
async fn main() {
    let recipients: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if common::smoke() { 10 } else { 1000 });
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flights/flights.csv.gz");
    let mut options = CsvOptions::new(data);
    options.null_values = vec!["NA".into()];
    let source = Arc::new(CsvSource::new(options));
    let load = Instant::now();
    source.table().await.expect("flights load");
    let load_s = load.elapsed().as_secs_f64();

    let query = Query::fields(["carrier", "origin", "month", "day"]);
    let keys = source
        .fetch(FetchRequest::new(&query, &FilterSet::all()))
        .await
        .expect("the slices");
    let mut slices = BTreeSet::new();
    for row in 0..keys.len() {
        let text =
            |c: usize| mad::core::format::display(keys.value(row, c), None, &Default::default());
        slices.insert((
            text(0),
            text(1),
            text(2).parse::<u32>().unwrap_or(0),
            text(3).parse::<u32>().unwrap_or(0),
        ));
    }
    let people: Vec<Recipient> = slices
        .into_iter()
        .take(recipients)
        .enumerate()
        .map(|(i, (carrier, origin, month, day))| {
            Recipient::new(format!("r{i:05}"), format!("Planner {i}"))
                .with_filter(Filter::new("carrier", [carrier]))
                .with_filter(Filter::new("origin", [origin]))
                .with_filter(Filter::new("month", [month.to_string()]))
                .with_filter(Filter::new("day", [day.to_string()]))
        })
        .collect();

    let dir = common::out_dir();
    let task = Task::new("flights", source.clone())
        .with_report(report())
        .with_recipients(people)
        .with_channel(common::folder(dir.path()))
        .with_registry(&mad::registry());
    let started = Instant::now();
    let summary = Engine::default().run(&task).await.expect("the run");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.counts.failed, 0, "{}", summary.human());
    common::report(serde_json::json!({
        "bench": "scale",
        "recipients": summary.counts.recipients,
        "delivered": summary.counts.delivered,
        "fetches": summary.counts.fetches,
        "documents": summary.counts.documents,
        "seconds": seconds,
        "load_seconds": load_s,
        "reports_per_s": summary.counts.documents as f64 / seconds,
        "peak_mb": common::peak_mb(),
    }));
}
