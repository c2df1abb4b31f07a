//! What a render adds to the process's memory, beyond the table it renders.
//!
//! The baseline is the resident memory once the table is loaded; the peak high-water mark is
//! reset there (`/proc/self/clear_refs`), so the loading's own peak does not count. A render
//! may hold its output (the finished file) plus a bounded working set, so the bound is the
//! output's size plus [`WORKING_SET_MB`].

#![allow(dead_code)]

/// The memory a streaming render may use besides its output, in MB.
pub const WORKING_SET_MB: f64 = 30.0;

/// One line of `/proc/self/status` in MB, such as `VmRSS` or `VmHWM`.
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// Memory before a render: resident memory now, with the peak reset to it.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub resident_mb: f64,
    /// Whether the kernel let the peak be reset; without it the loading's peak counts too,
    /// which can only overstate the growth.
    pub peak_reset: bool,
}

impl Baseline {
    pub fn now() -> Baseline {
        let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Baseline {
            resident_mb: status_mb("VmRSS"),
            peak_reset,
        }
    }

    /// The peak above the baseline since it was taken, in MB.
    pub fn growth_mb(&self) -> f64 {
        status_mb("VmHWM") - self.resident_mb
    }
}

/// The peak of the whole process so far, in MB.
pub fn peak_mb() -> f64 {
    status_mb("VmHWM")
}

/// Prints and checks the growth of one render that produced `output_bytes`.
pub fn check_growth(what: &str, baseline: &Baseline, output_bytes: usize) -> f64 {
    let growth = baseline.growth_mb();
    let output_mb = output_bytes as f64 / 1e6;
    let bound = output_mb + WORKING_SET_MB;
    println!(
        "{what}: memory grew {growth:.0} MB above the loaded table ({:.0} MB resident{}), \
         bound {bound:.0} MB (output {output_mb:.1} MB + {WORKING_SET_MB:.0} MB): {}",
        baseline.resident_mb,
        if baseline.peak_reset {
            ""
        } else {
            ", peak not reset"
        },
        if growth < bound { "kept" } else { "EXCEEDED" }
    );
    assert!(
        growth < bound,
        "{what}: memory grew {growth:.0} MB, over {bound:.0} MB (output {output_mb:.1} MB + \
         {WORKING_SET_MB:.0} MB)"
    );
    growth
}
