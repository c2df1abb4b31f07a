//! Helpers shared by the XLSX test files: the Python interpreter of the test environment and
//! openpyxl, an independent reader of workbooks.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::PathBuf;
use std::process::Command;

/// The test environment's Python: `$MAD_TEST_PYTHON`, else `.venv/bin/python` at the
/// repository root. Fails the test when neither exists.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("MAD_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
    assert!(
        venv.exists(),
        "no Python test environment at {}: run scripts/setup-test-env once",
        venv.display()
    );
    venv
}

/// Runs `script` with openpyxl on the workbook at `path`; the script prints one JSON value,
/// which is returned. `book` is the loaded workbook inside the script.
pub fn openpyxl(path: &std::path::Path, script: &str) -> serde_json::Value {
    let program = format!(
        "import json, sys\n\
         try:\n    import openpyxl\n\
         except ImportError:\n    sys.exit('openpyxl is missing: run scripts/setup-test-env')\n\
         book = openpyxl.load_workbook(sys.argv[1])\n{script}\n"
    );
    let output = Command::new(python())
        .arg("-c")
        .arg(program)
        .arg(path)
        .output()
        .expect("Python starts (run scripts/setup-test-env)");
    assert!(
        output.status.success(),
        "openpyxl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "openpyxl printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
