//! The `mad` command's usage and argument errors.

use std::process::Command;

fn mad(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mad"))
        .args(args)
        .output()
        .expect("mad starts")
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["--help", "-h", "help"] {
        let out = mad(&[flag]);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("mad run DEFINITIONS TASK"), "{flag}: {text}");
    }
}

#[test]
fn wrong_arguments_are_a_usage_error() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["run"],
        &["run", "defs.toml"],
        &["run", "a", "b", "--bogus"],
    ] {
        let out = mad(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("usage:"), "{args:?}: {text}");
    }
    let out = mad(&["frobnicate"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("unknown command 'frobnicate'"), "{text}");
}

#[test]
fn run_help_and_extra_words() {
    let out = mad(&["run", "--help"]);
    assert!(out.status.success(), "{:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mad run DEFINITIONS TASK"));
    let out = mad(&["run", "defs.toml", "regional", "extra"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not also 'extra'"), "{text}");
}

#[test]
fn a_summary_file_that_cannot_be_written_stops_the_run_before_it_delivers() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/regional_sales/workspace.toml"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a file"), "not a folder").unwrap();
    let summary = dir.path().join("a file/summary.json");
    let output = dir.path().join("out");
    let out = mad(&[
        "run",
        example,
        "regional",
        "--output",
        output.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "the run could not start");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("for ") && text.contains("summary.json"),
        "{text}"
    );
    assert!(!output.exists(), "nothing was delivered");
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_crash() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_mad"))
        .arg("check")
        .arg(std::ffi::OsStr::from_bytes(b"defs-\xff.toml"))
        .output()
        .expect("mad starts");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not valid UTF-8"), "{text}");
}

#[test]
fn a_run_id_or_resend_without_a_run_log_is_refused_before_anything_runs() {
    // Without the log nothing of an earlier attempt is known, so the same id would deliver
    // everything again: refused before the definitions are even read.
    for (args, needle) in [
        (
            &["run", "missing.toml", "t", "--run-id", "r1"][..],
            "--run-id",
        ),
        (
            &["run", "missing.toml", "t", "--resend-interrupted"],
            "--resend-interrupted",
        ),
    ] {
        let out = mad(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains(needle) && text.contains("--run-log"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("missing.toml"), "{args:?}: {text}");
    }
}

#[test]
fn check_accepts_the_example_and_names_what_a_task_gets_wrong() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/regional_sales/workspace.toml"
    );
    let out = mad(&["check", example]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));

    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("defs.toml");
    let text = std::fs::read_to_string(example).unwrap().replacen(
        "channels = [",
        "channels = [\"fax\", ",
        1,
    );
    std::fs::write(&defs, text).unwrap();
    let out = mad(&["check", defs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("no channel named 'fax'"), "{text}");

    // A misspelled column of a report, with the example's files found where they are.
    let folder = std::path::Path::new(example).parent().unwrap();
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("\"../data/", &format!("\"{}/../data/", folder.display()))
        .replace(
            "\"managers.csv\"",
            &format!("\"{}/managers.csv\"", folder.display()),
        )
        .replacen("{ field = \"City\" }", "{ field = \"Cty\" }", 1);
    std::fs::write(&defs, text).unwrap();
    let out = mad(&["check", defs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("task 'regional': report 'regional' names the field 'Cty', which source 'orders' does not have"),
        "{text}"
    );
}

#[test]
fn check_reads_value_tables_and_checks_tasks_as_a_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let orders = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/superstore/superstore.csv"
    );
    std::fs::write(
        dir.path().join("people.csv"),
        "id,Region,zone\nann,East,Europe/Berlin\nbo,West,Europe/Berlln\n",
    )
    .unwrap();
    let check = |table: &str, columns: &str, channels: &str, extra: &str| {
        let defs = dir.path().join("defs.toml");
        std::fs::write(
            &defs,
            format!(
                "[sources.orders]\nkind = \"csv\"\npath = {orders:?}\n\
                 [sources.people]\nkind = \"csv\"\npath = \"{table}\"\n\n\
                 [reports.r]\ntitle = \"r\"\nformats = [\"csv\"]\nfile_name = \"r\"\n\
                 columns = [{{ field = \"Sales\" }}]\n\n\
                 [channels.out]\nkind = \"folder\"\npath = \"out\"\n\n\
                 [[tasks]]\nname = \"t\"\nsource = \"orders\"\nreports = [\"r\"]\n\
                 channels = {channels}\nvalue_tables = [{{ source = \"people\", {columns} }}]\n\
                 {extra}"
            ),
        )
        .unwrap();
        let out = mad(&["check", defs.to_str().unwrap()]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let region = "filter_columns = [\"Region\"]";
    std::fs::write(
        dir.path().join("territories.csv"),
        "id,Territory\nann,North-East\n",
    )
    .unwrap();

    let (code, text) = check("people.csv", region, "[\"out\"]", "");
    assert_eq!(code, Some(0), "{text}");
    for (table, columns, channels, extra, expected) in [
        ("nobody.csv", region, "[\"out\"]", "", "nobody.csv"),
        (
            "people.csv",
            "filter_columns = [\"Regoin\"]",
            "[\"out\"]",
            "",
            "Regoin",
        ),
        (
            "people.csv",
            "filter_columns = [\"Region\"], time_zone_column = \"zone\"",
            "[\"out\"]",
            "",
            "recipient 'bo': 'Europe/Berlln' is not a known time zone",
        ),
        ("people.csv", region, "[]", "", "has no channels"),
        (
            "people.csv",
            region,
            "[\"out\"]",
            "[[tasks]]\nname = \"t\"\nsource = \"orders\"\nreports = [\"r\"]\nchannels = [\"out\"]\n",
            "two tasks are named 't'",
        ),
        (
            "people.csv",
            region,
            "[\"out\"]",
            "burst = \"Stat\"\n",
            "its burst names the field 'Stat', which source 'orders' does not have",
        ),
        (
            "people.csv",
            region,
            "[\"out\"]",
            "filters = [{ field = \"Segmnt\", values = [\"Consumer\"] }]\n",
            "its filter names the field 'Segmnt'",
        ),
        (
            "territories.csv",
            "filter_columns = [\"Territory\"]",
            "[\"out\"]",
            "",
            "the filter of recipient 'ann' names the field 'Territory'",
        ),
    ] {
        let (code, text) = check(table, columns, channels, extra);
        assert_eq!(code, Some(2), "{expected}: {text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

#[test]
fn a_closed_standard_output_loses_neither_the_summary_file_nor_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/regional_sales/workspace.toml"
    );
    let summary = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mad"))
        .args(["run", workspace, "states", "--output"])
        .arg(dir.path().join("out"))
        .arg("--summary")
        .arg(&summary)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mad starts");
    // Nobody reads what it prints: writing it fails with a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&summary).expect("the summary file is written");
    assert!(json.contains("\"task\": \"states\""), "{json}");
}
