//! Parsing speed of the QVD reader on the largest sample files.
//!
//! Run with `cargo bench -p mad-qlik --bench qvd`; it prints rows per second per file.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

const FILES: [&str; 3] = [
    "lego/parts.qvd",
    "lego/sets.qvd",
    "stockholm_temp/stockholm_temp.qvd",
];

fn main() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/qvd");
    for file in FILES {
        let bytes = std::fs::read(format!("{data}/{file}")).expect("the sample file is readable");
        let rows = mad_qlik::qvd::parse_qvd(&bytes)
            .expect("the sample parses")
            .len();

        let mut runs = 0u32;
        let start = Instant::now();
        while runs < 3 || start.elapsed() < Duration::from_secs(2) {
            std::hint::black_box(mad_qlik::qvd::parse_qvd(std::hint::black_box(&bytes)).ok());
            runs += 1;
        }
        let per_run = start.elapsed() / runs;

        let rows_per_second = rows as f64 / per_run.as_secs_f64();
        let megabytes = bytes.len() as f64 / 1e6;
        println!(
            "{file}: {rows} rows, {megabytes:.1} MB, {per_run:.2?} per parse, \
             {rows_per_second:.0} rows/s ({runs} runs)"
        );
    }
}
