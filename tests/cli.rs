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
}
