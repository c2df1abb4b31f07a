//! Zip bundles: documents packed into one archive, each entry deflated and encrypted with
//! WinZip AES-256 (AE-2).
//!
//! Zip encryption covers the entries' contents only; their names, sizes and dates stay readable.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use mad_core::{Error, ErrorKind, Result, Secret};
use zip::write::FileOptions;
use zip::{AesMode, CompressionMethod, DateTime, ZipWriter};

use super::{BACKEND, crypto_failure};

/// The archive holding `entries` (file name, bytes), every entry encrypted with `password`.
///
/// The archive is written as a stream, so every entry gets a data descriptor and keeps the AE-2
/// format, which stores no checksum of the plain contents (AE-1 does, which tells something
/// about small files to anyone without the password).
pub(super) fn zip(entries: &[(&str, Cow<'_, [u8]>)], password: &Secret) -> Result<Vec<u8>> {
    if entries.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "there are no documents to bundle; render at least one format",
        )
        .with_backend(BACKEND));
    }

    let size = entries.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut writer = ZipWriter::new_stream(Vec::with_capacity(size + 1024));
    let mut names = HashSet::new();
    let now = now();
    for (name, bytes) in entries {
        let name = entry_name(name);
        if !names.insert(name.clone()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "two documents would be named '{name}' in the bundle; give the report \
                     distinct formats or file names"
                ),
            )
            .with_backend(BACKEND));
        }
        let options = FileOptions::<()>::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(now)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX))
            .with_aes_encryption(AesMode::Aes256, password.expose());
        writer.start_file(name, options).map_err(failed)?;
        writer.write_all(bytes).map_err(|e| failed(e.into()))?;
    }
    Ok(writer.finish().map_err(failed)?.into_inner())
}

/// A flat, safe entry name: path separators, drive colons and control characters become `_`,
/// so no unzip tool writes outside the folder it extracts to.
fn entry_name(file_name: &str) -> String {
    let name: String = file_name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    match name.trim() {
        "" | "." | ".." => format!("document{name}"),
        _ => name,
    }
}

/// The current time in UTC, as zip stores it (from 1980 to 2107).
fn now() -> DateTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_date(seconds / 86_400);
    let time = seconds % 86_400;
    let hour = (time / 3600) as u8;
    let minute = (time / 60 % 60) as u8;
    let second = (time % 60) as u8;
    u16::try_from(year)
        .ok()
        .and_then(|year| DateTime::from_date_and_time(year, month, day, hour, minute, second).ok())
        .unwrap_or_default()
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
fn civil_date(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u8;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u8;
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn failed(e: zip::result::ZipError) -> Error {
    crypto_failure("writing the zip bundle").with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(20_454), (2026, 1, 1));
    }

    #[test]
    fn entry_names_stay_in_the_folder() {
        assert_eq!(entry_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(entry_name("C:\\report.pdf"), "C__report.pdf");
        assert_eq!(entry_name(".."), "document..");
        assert_eq!(entry_name("Sales 2026.pdf"), "Sales 2026.pdf");
    }
}
