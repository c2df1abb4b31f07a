//! The regional sales report of the example workspace, as a manager receives it, rendered to
//! PDF and to page images with poppler's `pdftoppm -png -r 60` so that a person can look at
//! them: with `MAD_VISUAL_DIR` set, the PDFs and images are copied into that folder. The test
//! itself checks what a machine can: the files are valid, every page image has the page's
//! size in pixels, and no word leaves the page's margins.

use std::path::{Path, PathBuf};
use std::process::Command;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    ChartDef, ChartKind, ChartPlacement, ConditionalStyle, Filter, FilterSet, GroupDef, Locale,
    PageBand, Placeholders, RenderJob, Renderer, ReportDef, Workspace,
};
use mad_render::PdfRenderer;

const WORKSPACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/regional_sales/workspace.toml"
);
const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("-v").output().is_ok();
    assert!(
        found,
        "`{name}` is missing: run scripts/setup-test-env to install poppler-utils and qpdf"
    );
    Command::new(name)
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the tool starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the tool prints UTF-8")
}

/// The example's regional report, as defined in its workspace.
fn regional() -> ReportDef {
    let workspace = Workspace::load(Path::new(WORKSPACE)).expect("the example workspace loads");
    workspace.reports["regional"].clone()
}

/// The same report with what this crate adds: a section per State on its own page, header
/// and footer lines, negative profits in red and two charts.
fn regional_with_extras() -> ReportDef {
    let mut report = regional();
    report.group_by.clear();
    report.groups = vec![GroupDef::new("State").with_page_break()];
    report.header = Some(PageBand::left("{title}").with_right("{recipient.name}"));
    report.footer = Some(
        PageBand::left("{filters}")
            .with_center("Confidential")
            .with_right("Page {page} of {pages}"),
    );
    let red = ConditionalStyle::new("< 0").with_color("#c00000");
    for column in report.columns.iter_mut().filter(|c| c.field == "Profit") {
        column.style.push(red.clone());
    }
    report.charts = vec![
        ChartDef::new(ChartKind::Bar, "State", "Sales").with_title("Sales by State"),
        ChartDef::new(ChartKind::Pie, "Category", "Profit")
            .with_title("Profit by category")
            .with_placement(ChartPlacement::After),
    ];
    report
}

/// Renders `report` for the West region's manager (Portuguese, Brazil) and returns the PDF and
/// its page images.
fn render_pages(report: &ReportDef, dir: &Path, name: &str) -> (PathBuf, Vec<PathBuf>) {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let mut options = CsvOptions::new(SUPERSTORE);
    options.fields.insert(
        "Postal Code".into(),
        mad_core::source::FieldOverride::Kind(mad_core::FieldKind::Text),
    );
    let orders = read_csv(&options).expect("the orders load");
    let table = filters.apply(&orders).expect("the filter applies");
    let placeholders = Placeholders::new()
        .with("Region", "West")
        .with("recipient.name", "João São Paulo")
        .with("run.date", "2026-12-04");
    let job = RenderJob {
        report,
        table: &table,
        placeholders: &placeholders,
        locale: &Locale::new("pt-BR"),
        filters: &filters,
        deterministic: true,
        created_at: 0,
    };
    let pdf = PdfRenderer::new().render(&job).expect("the report renders");
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, &pdf).expect("the PDF is written");
    run(tool("pdftoppm")
        .args(["-png", "-r", "60"])
        .arg(&path)
        .arg(dir.join(name)));
    let mut images: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the folder lists")
        .map(|e| e.expect("an entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png")
                && p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}-")))
        })
        .collect();
    images.sort();
    (path, images)
}

fn check(report: &ReportDef, name: &str) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (pdf, images) = render_pages(report, dir.path(), name);
    let out = run(tool("qpdf").arg("--check").arg(&pdf));
    assert!(out.contains("No syntax or stream encoding errors"), "{out}");
    let pages: usize = run(tool("pdfinfo").arg(&pdf))
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a page count");
    assert_eq!(images.len(), pages);
    for image in &images {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(image).expect("the image opens"),
        ));
        let info = decoder.read_info().expect("a PNG");
        let (w, h) = (info.info().width, info.info().height);
        let (short, long) = (w.min(h), w.max(h));
        assert!(
            (495..=497).contains(&short) && (701..=703).contains(&long),
            "A4 at 60 dpi: {w} x {h}"
        );
        let landscape = report.page.orientation == mad_core::report::Orientation::Landscape;
        assert_eq!(
            w > h,
            landscape,
            "the page follows the report's orientation"
        );
    }
    let bbox = run(tool("pdftotext").arg("-bbox").arg(&pdf).arg("-"));
    let margin = 15.0 * 72.0 / 25.4 - 0.5;
    let page_width = report.page.points().0;
    for line in bbox.lines().filter(|l| l.trim_start().starts_with("<word")) {
        let attr = |key: &str| -> f32 {
            let start = line.find(&format!("{key}=\"")).expect(key) + key.len() + 2;
            line[start..start + line[start..].find('"').expect("a quote")]
                .parse()
                .expect("a number")
        };
        assert!(
            attr("xMin") >= margin && attr("xMax") <= page_width - margin,
            "{line}"
        );
    }
    if let Some(keep) = std::env::var_os("MAD_VISUAL_DIR") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("the visual folder");
        for file in images.iter().chain([&pdf]) {
            let name = file.file_name().expect("a file name");
            std::fs::copy(file, keep.join(name)).expect("the file is copied");
        }
    }
}

#[test]
fn the_example_regional_report_renders_cleanly() {
    check(&regional(), "regional");
}

#[test]
fn the_regional_report_with_sections_charts_and_styles_renders_cleanly() {
    check(&regional_with_extras(), "regional-extras");
}
