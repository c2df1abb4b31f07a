//! How the report's sheet prints: the paper, orientation and margins of the report's page
//! setup, its header and footer with Excel's page number codes, and page breaks before the
//! groups that ask for them.

use mad_core::report::{Orientation, PageSize};
use mad_core::{Error, PageBand, Placeholders, RenderJob, Result};

use super::BACKEND;

/// Excel ignores a header or footer longer than this (in UTF-16 units).
const MAX_BAND_UNITS: usize = 255;
/// Excel keeps at most this many manual page breaks in a sheet.
pub(crate) const MAX_ROW_BREAKS: usize = 1023;
/// Excel's default distance of the header and footer from the paper's edge, in inches.
const BAND_MARGIN_INCHES: f64 = 0.3;

/// The print settings of the report's sheet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PrintSetup {
    /// Excel's paper size code (9 is A4).
    pub paper_size: u8,
    pub landscape: bool,
    /// The margin on every side, in inches.
    pub margin_inches: f64,
    /// The header and footer in Excel's codes (`&L`, `&C`, `&R`, `&P`, `&N`); empty for none.
    pub header: String,
    pub footer: String,
    /// Per group level, outermost first: whether each of its groups starts a new page.
    pub break_levels: Vec<bool>,
}

impl PrintSetup {
    /// The print settings of `job`'s report; `title` is the report's filled title.
    pub(super) fn new(job: &RenderJob<'_>, title: &str) -> Result<PrintSetup> {
        let page = &job.report.page;
        let footer = crate::pdf::report_footer(job);
        let placeholders =
            band_placeholders(job, title, [job.report.header.as_ref(), Some(&footer)])?;
        Ok(PrintSetup {
            paper_size: paper_size(page.size),
            landscape: page.orientation == Orientation::Landscape,
            margin_inches: f64::from(page.margin_mm) / 25.4,
            header: band_codes(job.report.header.as_ref(), &placeholders, "header")?,
            footer: band_codes(Some(&footer), &placeholders, "footer")?,
            break_levels: job
                .report
                .group_levels()
                .iter()
                .map(|g| g.page_break)
                .collect(),
        })
    }

    /// The distance of the header and footer from the paper's edge, in inches: Excel's
    /// default, or half the margin when the margin is narrower, so the body stays clear.
    pub(crate) fn band_margin_inches(&self) -> f64 {
        BAND_MARGIN_INCHES.min(self.margin_inches / 2.0)
    }
}

fn paper_size(size: PageSize) -> u8 {
    match size {
        PageSize::Letter => 1,
        PageSize::Legal => 5,
        PageSize::A3 => 8,
        PageSize::A4 => 9,
    }
}

/// The placeholders `bands` use, from the job's and `{title}`, `{filters}`, `{page}` and
/// `{pages}`, every value escaped for a header, and the page numbers as Excel's codes. Only
/// the names the bands hold are looked up: a burst renders many small workbooks.
fn band_placeholders<'a>(
    job: &RenderJob<'_>,
    title: &str,
    bands: impl IntoIterator<Item = Option<&'a PageBand>>,
) -> Result<Placeholders> {
    let mut placeholders = Placeholders::new();
    let parts = bands
        .into_iter()
        .flatten()
        .flat_map(|b| [&b.left, &b.center, &b.right])
        .flatten();
    for template in parts {
        for name in mad_core::placeholder::names_in(template)? {
            let value = match name {
                "title" => escape(title),
                "filters" => escape(&job.filters.to_string()),
                "page" => "&P".to_string(),
                "pages" => "&N".to_string(),
                other => match job.placeholders.get(other) {
                    Some(value) => escape(value),
                    None => continue, // named as unknown when the band is filled
                },
            };
            placeholders.set(name, value);
        }
    }
    Ok(placeholders)
}

/// An ampersand starts a code in a header, so a literal one is doubled.
fn escape(text: &str) -> String {
    text.replace('&', "&&").replace(['\n', '\r'], " ")
}

/// `band` in Excel's header codes, or an empty text without a band.
fn band_codes(band: Option<&PageBand>, placeholders: &Placeholders, which: &str) -> Result<String> {
    let Some(band) = band else {
        return Ok(String::new());
    };

    let mut codes = String::new();
    for (code, part) in [
        ("&L", &band.left),
        ("&C", &band.center),
        ("&R", &band.right),
    ] {
        let Some(template) = part else {
            continue;
        };
        let text = placeholders
            .render(&escape(template))
            .map_err(|e| e.with_backend(BACKEND).context(format!("the page {which}")))?;
        codes.push_str(code);
        codes.push_str(&text);
    }

    if codes.encode_utf16().count() > MAX_BAND_UNITS {
        return Err(Error::invalid_input(format!(
            "the page {which} is longer than the {MAX_BAND_UNITS} characters Excel prints; \
             shorten its texts (a long {{filters}} can make it so)"
        ))
        .with_backend(BACKEND));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(band: &PageBand, placeholders: &Placeholders) -> Result<String> {
        band_codes(Some(band), placeholders, "header")
    }

    #[test]
    fn sections_page_numbers_and_ampersands_become_excel_codes() {
        let placeholders = Placeholders::new()
            .with("title", escape("R&D"))
            .with("page", "&P")
            .with("pages", "&N");
        let band = PageBand::left("{title} & more")
            .with_center("Confidential")
            .with_right("Page {page} of {pages}");
        assert_eq!(
            codes(&band, &placeholders).unwrap(),
            "&LR&&D && more&CConfidential&RPage &P of &N"
        );
    }

    #[test]
    fn a_band_longer_than_excel_prints_is_an_error() {
        let band = PageBand::left("x".repeat(300));
        let err = codes(&band, &Placeholders::new()).unwrap_err();
        assert!(err.to_string().contains("255"), "{err}");
    }
}
