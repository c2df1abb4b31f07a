//! The `mad` command: runs a task from a definitions file.
//!
//!     mad run DEFINITIONS.toml TASK [--output DIR] [--run-id ID] [--run-log FILE]
//!                                   [--summary FILE] [--resend-interrupted]
//!     mad check DEFINITIONS.toml
//!
//! `check` reads the definitions and the recipients' value tables and checks every name, locale
//! and time zone in them, and the fields each task names against its source's fields, without
//! fetching report data or sending anything.
//!
//! With `--run-log`, deliveries are recorded in a SQLite file; running again with the same
//! `--run-id` resumes the run and makes no delivery twice. Exit status: 0 when every recipient
//! was delivered or skipped, 1 when one failed, 2 when the task could not run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mad::engine::InterruptedPolicy;
use mad::{Engine, EngineOptions, RunInfo, Workspace};

const USAGE: &str = "usage:
  mad run DEFINITIONS TASK [--output DIR] [--run-id ID] [--run-log FILE] [--summary FILE] [--resend-interrupted]
  mad check DEFINITIONS";

#[derive(Debug, Default)]
struct RunArgs {
    definitions: PathBuf,
    task: String,
    output: Option<PathBuf>,
    run_id: Option<String>,
    run_log: Option<PathBuf>,
    summary: Option<PathBuf>,
    resend_interrupted: bool,
    help: bool,
}

fn parse_run(args: &[String]) -> Result<RunArgs, String> {
    let mut parsed = RunArgs::default();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--output" => parsed.output = Some(value("--output")?.into()),
            "--run-id" => parsed.run_id = Some(value("--run-id")?),
            "--run-log" => parsed.run_log = Some(value("--run-log")?.into()),
            "--summary" => parsed.summary = Some(value("--summary")?.into()),
            "--resend-interrupted" => parsed.resend_interrupted = true,
            "--help" | "-h" => parsed.help = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg.clone()),
        }
    }
    if parsed.help {
        return Ok(parsed);
    }
    let [definitions, task] = positional.as_slice() else {
        return Err(match positional.get(2) {
            Some(extra) => format!("run takes DEFINITIONS and TASK, not also '{extra}'"),
            None => "run needs DEFINITIONS and TASK".into(),
        });
    };
    // Without a run log nothing of the earlier attempt is known: the same id would deliver
    // everything again instead of resuming.
    if parsed.run_log.is_none() {
        if parsed.run_id.is_some() {
            return Err(
                "--run-id resumes a run recorded in a run log; give --run-log FILE too".into(),
            );
        }
        if parsed.resend_interrupted {
            return Err(
                "--resend-interrupted needs the run log of the run (--run-log FILE)".into(),
            );
        }
    }
    parsed.definitions = definitions.into();
    parsed.task = task.clone();
    Ok(parsed)
}

async fn run(args: RunArgs) -> mad::Result<bool> {
    let mut workspace = Workspace::load(&args.definitions)?;
    if let Some(output) = &args.output {
        workspace = workspace.with_output_dir(output);
    }
    let runtime = workspace.instantiate(&mad::registry())?;
    let task = runtime.task(&args.task).await?;
    let options = EngineOptions {
        interrupted: if args.resend_interrupted {
            InterruptedPolicy::Resend
        } else {
            InterruptedPolicy::Report
        },
        ..Default::default()
    };
    let mut engine = Engine::new(options);
    // Folders for the run log and the summary are made, and the summary file opened, before
    // anything is delivered, so a mistyped or unwritable path cannot fail the command after
    // the reports went out.
    for path in [&args.run_log, &args.summary].into_iter().flatten() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                mad::Error::io(
                    format!(
                        "making the folder {} for {}",
                        parent.display(),
                        path.display()
                    ),
                    e,
                )
            })?;
        }
    }
    if let Some(path) = &args.summary {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                mad::Error::io(format!("opening the summary file {}", path.display()), e)
            })?;
    }
    if let Some(path) = &args.run_log {
        engine = engine.with_run_log(Arc::new(mad::store::SqliteRunLog::open(path)?));
    }
    let run = match &args.run_id {
        Some(id) => RunInfo::at(id.clone(), now_seconds()),
        None => RunInfo::now(),
    };
    let summary = engine.run_as(&task, run).await?;
    // The summary file first: a closed or full standard output must cost neither it nor the
    // exit code, so what is printed is printed as far as it goes.
    let saved = match &args.summary {
        Some(path) => std::fs::write(path, summary.to_json())
            .map_err(|err| mad::Error::io(path.display(), err)),
        None => Ok(()),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", summary.human());
        let _ = match &args.run_log {
            Some(_) => writeln!(
                out,
                "run id {id} (to resume it, run again with --run-id {id} and the same --run-log)",
                id = summary.run_id
            ),
            None => writeln!(out, "run id {}", summary.run_id),
        };
    }
    if let Err(err) = saved {
        // The deliveries are made: report the lost summary as a failure (exit 1), not as a
        // task that could not run (exit 2), which a scheduler might retry.
        eprintln!("mad: {err}");
        return Ok(false);
    }
    Ok(summary.counts.failed == 0)
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn check(definitions: &str) -> mad::Result<()> {
    let workspace = Workspace::load(definitions.as_ref())?;
    workspace
        .instantiate(&mad::registry())?
        .check_with_value_tables()
        .await?;
    println!(
        "{definitions}: {} sources, {} reports, {} channels, {} tasks: ok",
        workspace.sources.len(),
        workspace.reports.len(),
        workspace.channels.len(),
        workspace.tasks.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(args) => args,
        Err(bad) => {
            eprintln!(
                "mad: the argument {} is not valid UTF-8; name files and tasks in UTF-8\n{USAGE}",
                bad.to_string_lossy()
            );
            return ExitCode::from(2);
        }
    };
    let outcome = match args.first().map(String::as_str) {
        Some("run") => match parse_run(&args[1..]) {
            Ok(parsed) if parsed.help => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Ok(parsed) => run(parsed).await,
            Err(message) => {
                eprintln!("mad: {message}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("check") if args.len() == 2 => check(&args[1]).await.map(|()| true),
        Some("help" | "--help" | "-h") => {
            #[allow(clippy::print_stdout)]
            {
                println!("{USAGE}");
            }
            return ExitCode::SUCCESS;
        }
        Some(other) if !matches!(other, "run" | "check") => {
            eprintln!("mad: unknown command '{other}'\n{USAGE}");
            return ExitCode::from(2);
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("mad: {err}");
            ExitCode::from(2)
        }
    }
}
