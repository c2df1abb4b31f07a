//! The main job: regional sales reports for each regional manager, and a burst by State, on
//! the Superstore orders. Needs no server: e-mails go to an outbox folder as `.eml` files.
//!
//!     cargo run --release --example regional_sales [OUTPUT_FOLDER]
//!
//! Outputs (default folder `out/regional_sales`): `reports/` (PDF, XLSX and CSV per manager),
//! `outbox/` (one e-mail per manager: HTML summary as body, PDF attached), `states/` (PDF and
//! XLSX per State) and `summary-<task>.json` per task.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mad::{Engine, Workspace};

#[tokio::main]
async fn main() -> ExitCode {
    let output = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("out/regional_sales"), PathBuf::from);
    match run(&output).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("regional_sales: {failed} recipient(s) failed");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("regional_sales: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs both tasks; returns how many recipients failed.
async fn run(output: &Path) -> mad::Result<usize> {
    let definitions =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/regional_sales/workspace.toml");
    std::fs::create_dir_all(output).map_err(|e| mad::Error::io(output.display(), e))?;
    let runtime = Workspace::load(&definitions)?
        .with_output_dir(output)
        .instantiate(&mad::registry())?;
    let engine = Engine::default();

    let mut failed = 0;
    for name in ["regional", "states"] {
        let task = runtime.task(name).await?;
        let summary = engine.run(&task).await?;
        failed += summary.counts.failed;
        print!("{}", summary.human());
        let json = output.join(format!("summary-{name}.json"));
        std::fs::write(&json, summary.to_json()).map_err(|e| mad::Error::io(json.display(), e))?;
    }
    println!("outputs in {}", output.display());
    Ok(failed)
}
