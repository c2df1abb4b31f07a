//! The folder channel against a real file system, read back with std::fs.

mod conformance;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mad_core::{BuildContext, Channel, ErrorKind, OutputFormat, Registry};
use mad_deliver::folder::{FolderChannel, FolderOptions, IfExists};

use conformance::{ArrivalLog, Arrived, Harness};
use support::{delivery, document, pdf_bytes, recipient};

/// Every file below `dir`, as paths relative to it, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn no_temporary_files(dir: &Path) {
    let leftovers: Vec<PathBuf> = files_below(dir)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn channel(options: FolderOptions) -> FolderChannel {
    FolderChannel::new(options).unwrap()
}

fn pdf_delivery(id: &str, name: &str) -> mad_core::Delivery {
    delivery(
        recipient(id),
        vec![document(OutputFormat::Pdf, name, pdf_bytes())],
    )
}

struct FolderHarness {
    dir: tempfile::TempDir,
    channel: Arc<FolderChannel>,
    log: ArrivalLog,
}

impl Harness for FolderHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let current = files_below(self.dir.path())
            .into_iter()
            .map(|rel| {
                let arrived = Arrived {
                    name: rel.file_name().unwrap().to_string_lossy().into_owned(),
                    bytes: fs::read(self.dir.path().join(&rel)).unwrap(),
                };
                (rel.display().to_string(), arrived)
            })
            .collect();
        self.log.update(current)
    }
}

#[tokio::test]
async fn folder_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let options = FolderOptions::new(dir.path()).with_subfolder("{recipient.id}");
    let harness = FolderHarness {
        channel: Arc::new(channel(options)),
        dir,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
    no_temporary_files(harness.dir.path());
}

#[tokio::test]
async fn hostile_names_and_subfolders_stay_inside() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("out");
    fs::create_dir(&root).unwrap();
    let names = [
        "../../etc/passwd",
        "/abs/path",
        "CON.pdf",
        "a\\b",
        "ctl\u{1}\u{1b}[31m.pdf",
        &"n".repeat(300),
        "",
    ];
    let ids = ["../../escape", "/abs", "C:\\windows", "..", "ok"];
    let folder = channel(
        FolderOptions::new(&root)
            .with_subfolder("{recipient.id}/x")
            .with_if_exists(IfExists::Version),
    );

    for id in ids {
        for name in names {
            folder.deliver(&pdf_delivery(id, name)).await.unwrap();
        }
    }

    assert_eq!(
        fs::read_dir(outer.path()).unwrap().count(),
        1,
        "nothing beside the folder"
    );
    let files = files_below(&root);
    assert_eq!(files.len(), ids.len() * names.len());
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        conformance::assert_safe_name(&name, "a hostile name");
        assert_eq!(fs::read(root.join(file)).unwrap(), pdf_bytes());
    }
    no_temporary_files(&root);
}

#[test]
fn absolute_or_climbing_subfolder_patterns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for pattern in [
        "/abs/{recipient.id}",
        "../{recipient.id}",
        "a/../../b",
        "{open",
    ] {
        let err =
            FolderChannel::new(FolderOptions::new(dir.path()).with_subfolder(pattern)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{pattern}: {err}");
        assert_eq!(err.backend(), Some("folder"));
    }
}

#[tokio::test]
async fn symlinks_leading_outside_are_not_followed() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("out");
    let elsewhere = outer.path().join("elsewhere");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("link")).unwrap();
    fs::create_dir(root.join("inside")).unwrap();
    std::os::unix::fs::symlink(root.join("inside"), root.join("inner-link")).unwrap();

    let through_link = channel(FolderOptions::new(&root).with_subfolder("link/{recipient.id}"));
    let err = through_link
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("link"), "{err}");
    assert!(
        files_below(&elsewhere).is_empty(),
        "nothing written outside"
    );

    // A link that stays inside the folder is fine.
    let inner = channel(FolderOptions::new(&root).with_subfolder("inner-link"));
    inner.deliver(&pdf_delivery("ann", "r.pdf")).await.unwrap();
    assert!(root.join("inside/r.pdf").exists());

    // A link at the file's own name is replaced or refused, never written through.
    let target = elsewhere.join("victim.pdf");
    fs::write(&target, "victim").unwrap();
    std::os::unix::fs::symlink(&target, root.join("victim.pdf")).unwrap();
    let fail = channel(FolderOptions::new(&root));
    let err = fail
        .deliver(&pdf_delivery("ann", "victim.pdf"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let overwrite = channel(FolderOptions::new(&root).with_if_exists(IfExists::Overwrite));
    overwrite
        .deliver(&pdf_delivery("ann", "victim.pdf"))
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "victim");
    assert_eq!(fs::read(root.join("victim.pdf")).unwrap(), pdf_bytes());
    assert!(
        !fs::symlink_metadata(root.join("victim.pdf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn if_exists_policies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    let with = |policy| channel(FolderOptions::new(dir.path()).with_if_exists(policy));
    fs::write(&path, "old").unwrap();

    let err = with(IfExists::Fail)
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("r.pdf"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");

    let receipt = with(IfExists::Keep)
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    assert_eq!(receipt.bytes, 0, "a kept file adds no bytes");
    assert_eq!(receipt.locations.len(), 1);
    assert!(receipt.locations[0].ends_with("r.pdf"));

    let version = with(IfExists::Version);
    let second = version
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    let third = version
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    assert!(second.locations[0].ends_with("r (2).pdf"), "{second:?}");
    assert!(third.locations[0].ends_with("r (3).pdf"), "{third:?}");
    assert_eq!(fs::read(dir.path().join("r (3).pdf")).unwrap(), pdf_bytes());
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");

    let receipt = with(IfExists::Overwrite)
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), pdf_bytes());
    assert_eq!(receipt.bytes, pdf_bytes().len() as u64);
    no_temporary_files(dir.path());
}

#[tokio::test]
async fn a_refused_delivery_writes_none_of_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("r.csv"), "old").unwrap();
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "r.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "r.csv", "a,b\n"),
        ],
    );

    let err = channel(FolderOptions::new(dir.path()))
        .deliver(&d)
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(files_below(dir.path()), [PathBuf::from("r.csv")]);
}

#[tokio::test]
async fn receipt_lists_paths_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "r.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "r.csv", "a,b\n"),
        ],
    );
    let folder =
        channel(FolderOptions::new(dir.path()).with_subfolder("{run.date}/{recipient.id}"));

    let receipt = folder.deliver(&d).await.unwrap();

    assert_eq!(receipt.channel, "folder");
    assert_eq!(receipt.bytes, pdf_bytes().len() as u64 + 4);
    let real = fs::canonicalize(dir.path()).unwrap();
    let mut locations = receipt.locations.clone();
    locations.sort();
    assert_eq!(
        locations,
        [
            real.join("2026-01-31/ann/r.csv").display().to_string(),
            real.join("2026-01-31/ann/r.pdf").display().to_string(),
        ]
    );
}

#[tokio::test]
async fn missing_folder_is_not_found_unless_create() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-yet");

    let err = channel(FolderOptions::new(&missing))
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("not-yet"), "{err}");
    assert!(err.to_string().contains("create = true"), "{err}");
    assert!(
        !missing.exists(),
        "the configured folder is not created by default"
    );

    channel(FolderOptions::new(&missing).with_create(true))
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    assert!(missing.join("r.pdf").exists());
}

#[tokio::test]
async fn a_folder_removed_during_a_run_is_created_again_or_named_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");

    for subfolder in [None, Some("{recipient.id}")] {
        let mut options = FolderOptions::new(&target).with_create(true);
        options.subfolder = subfolder.map(str::to_string);
        let creating = channel(options.clone());
        creating
            .deliver(&pdf_delivery("ann", "a.pdf"))
            .await
            .unwrap();
        fs::remove_dir_all(&target).unwrap();
        let receipt = creating
            .deliver(&pdf_delivery("bob", "b.pdf"))
            .await
            .unwrap();
        let written = Path::new(&receipt.locations[0]);
        assert!(written.starts_with(fs::canonicalize(&target).unwrap()));
        assert!(written.ends_with("b.pdf"), "{written:?}");
        assert!(written.exists());

        // Without create, the second delivery names the missing folder.
        let fixed = channel(FolderOptions {
            create: false,
            ..options
        });
        fixed.deliver(&pdf_delivery("ann", "a.pdf")).await.unwrap();
        fs::remove_dir_all(&target).unwrap();
        let err = fixed
            .deliver(&pdf_delivery("bob", "b.pdf"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("create = true"), "{err}");
        assert!(!target.exists());
        fs::create_dir(&target).unwrap();
        fixed.deliver(&pdf_delivery("cid", "c.pdf")).await.unwrap();
        fs::remove_dir_all(&target).unwrap();
    }
}

/// Whether this process can write into a folder it made read-only (root can).
fn chmod_protects(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let blocked = fs::write(&probe, "x").is_err();
    let _ = fs::remove_file(&probe);
    blocked
}

#[tokio::test]
async fn unwritable_folder_gives_a_clear_error_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();

    let (target, expected) = if chmod_protects(&locked) {
        (locked.clone(), vec![ErrorKind::PermissionDenied])
    } else {
        // Running as root: a folder below a regular file cannot be written either.
        let file = dir.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        (
            file.join("sub"),
            vec![ErrorKind::NotFound, ErrorKind::PermissionDenied],
        )
    };
    let folder = channel(FolderOptions::new(&target).with_subfolder("{recipient.id}"));

    let err = folder
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert!(expected.contains(&err.kind()), "{:?}: {err}", err.kind());
    assert_eq!(err.backend(), Some("folder"));
    assert!(
        err.to_string().contains(&*target.to_string_lossy()),
        "names the folder: {err}"
    );
    assert!(files_below(&locked).is_empty(), "nothing left behind");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test]
async fn unwritable_subfolder_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("ann")).unwrap();
    fs::set_permissions(dir.path().join("ann"), fs::Permissions::from_mode(0o500)).unwrap();
    if !chmod_protects(&dir.path().join("ann")) {
        // Running as root: make "ann" a file, so the subfolder cannot be opened.
        fs::set_permissions(dir.path().join("ann"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir(dir.path().join("ann")).unwrap();
        fs::write(dir.path().join("ann"), "x").unwrap();
    }
    let folder = channel(FolderOptions::new(dir.path()).with_subfolder("{recipient.id}"));

    let err = folder
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err.kind(),
            ErrorKind::PermissionDenied | ErrorKind::NotFound
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ann"), "{err}");
    no_temporary_files(dir.path());
    let _ = fs::set_permissions(dir.path().join("ann"), fs::Permissions::from_mode(0o700));
}

#[test]
fn built_from_definitions_with_relative_path() {
    let base = tempfile::tempdir().unwrap();
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let ctx = BuildContext::new(base.path());

    let options = serde_json::json!({ "path": "reports", "if_exists": "version", "create": true });
    let built = registry.build_channel("folder", &options, &ctx).unwrap();
    assert_eq!(built.name(), "folder");
    assert!(format!("{built:?}").contains(&*base.path().join("reports").to_string_lossy()));

    let typo = serde_json::json!({ "path": "reports", "if_exist": "version" });
    let err = registry.build_channel("folder", &typo, &ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("if_exist"), "{err}");

    let bad_policy = serde_json::json!({ "path": "reports", "if_exists": "append" });
    let err = registry
        .build_channel("folder", &bad_policy, &ctx)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn temporary_files_a_killed_run_left_are_removed_by_the_next_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 60 * 60);
    let leftover = dir.path().join(".mad-0123456789abcdef.tmp");
    let aged = |path: &Path, bytes: &[u8]| {
        fs::write(path, bytes).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(hours_ago).unwrap();
    };
    aged(&leftover, b"half a report");
    // A write another run may still be making, and files that are not ours, stay.
    let recent = dir.path().join(".mad-fedcba9876543210.tmp");
    fs::write(&recent, b"being written").unwrap();
    let theirs = dir.path().join("notes.tmp");
    aged(&theirs, b"not ours");

    let folder = channel(FolderOptions::new(dir.path()));
    folder.deliver(&pdf_delivery("ann", "a.pdf")).await.unwrap();

    assert!(!leftover.exists(), "an hour-old leftover is removed");
    assert!(recent.exists(), "a recent temporary file is left alone");
    assert!(theirs.exists(), "other files are left alone");
    assert!(dir.path().join("a.pdf").exists());
}

#[tokio::test]
async fn two_recipients_never_share_a_file_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let folder = channel(FolderOptions::new(dir.path()).with_if_exists(IfExists::Overwrite));
    let message = support::second_recipient_is_refused(&folder).await;
    assert!(message.contains("{recipient.id}"), "{message}");
    let kept = fs::read_to_string(dir.path().join("Same Name.csv")).unwrap();
    assert_eq!(kept, "rows of east\n", "the first recipient's report stays");
    // Names differing only in case are one file where the file system says so.
    let upper = delivery(
        recipient("west"),
        vec![document(
            OutputFormat::Csv,
            "SAME NAME.csv",
            "rows of west\n",
        )],
    );
    let outcome = folder.deliver(&upper).await;
    if cfg!(any(windows, target_vendor = "apple")) {
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::AlreadyExists);
    } else {
        outcome.unwrap();
        assert_eq!(files_below(dir.path()).len(), 2);
        fs::remove_file(dir.path().join("SAME NAME.csv")).unwrap();
    }
    no_temporary_files(dir.path());

    // A later run replaces what earlier runs wrote, as overwrite says.
    let mut next_run = support::same_name_delivery("west");
    next_run.run_id = "run-2".into();
    folder.deliver(&next_run).await.unwrap();
    let now = fs::read_to_string(dir.path().join("Same Name.csv")).unwrap();
    assert_eq!(now, "rows of west\n");

    // With numbered versions, each recipient gets a file of its own.
    let versioned = tempfile::tempdir().unwrap();
    let folder = channel(FolderOptions::new(versioned.path()).with_if_exists(IfExists::Version));
    for id in ["east", "west"] {
        folder
            .deliver(&support::same_name_delivery(id))
            .await
            .unwrap();
    }
    assert_eq!(files_below(versioned.path()).len(), 2);
}

#[tokio::test]
async fn a_resumed_run_keeps_the_files_its_earlier_attempt_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let options = FolderOptions::new(dir.path()).with_if_exists(IfExists::Overwrite);
    let doc = support::same_name_delivery;
    // The first attempt delivered east; its process ended.
    let first = channel(options.clone());
    let receipt = first.deliver(&doc("east")).await.unwrap();

    // The resumed attempt runs in a new process: the engine tells the channel what the run
    // log holds before it delivers anything.
    let resumed = channel(options);
    resumed.delivered_earlier("run-1", "east", support::SUBJECT, &receipt);
    let err = resumed.deliver(&doc("west")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("recipient 'east'"), "{err}");
    let kept = fs::read_to_string(dir.path().join("Same Name.csv")).unwrap();
    assert_eq!(kept, "rows of east\n");
}

/// A run cut off while rendering, then resumed, through the engine.
mod cut_off_while_rendering {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::time::Duration;

    use mad_core::runlog::MemoryRunLog;
    use mad_core::source::TableSource;
    use mad_core::{
        Channel, ColumnBuilder, ColumnDef, Engine, Error, ErrorKind, Field, FieldKind, Filter,
        OutputFormat, Recipient, RenderJob, Renderer, ReportDef, Result, RunInfo, Schema, Table,
        Task, TaskChannel, Value,
    };
    use mad_deliver::folder::{FolderChannel, FolderOptions, IfExists};

    fn orders() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..2).map(|_| ColumnBuilder::default()).collect();
        for (region, sales) in [("East", 10.0), ("West", 7.0)] {
            cols[0].push(Value::text(region));
            cols[1].push(Value::Number(sales));
        }
        Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap()
    }

    /// While the gate is 0 it waits, at 1 it fails (standing for the process dying), at 2 it
    /// renders.
    #[derive(Debug)]
    struct Gated(Arc<AtomicU8>);

    impl Renderer for Gated {
        fn format(&self) -> OutputFormat {
            OutputFormat::Csv
        }

        fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
            loop {
                match self.0.load(Ordering::SeqCst) {
                    0 => std::thread::sleep(Duration::from_millis(5)),
                    1 => return Err(Error::new(ErrorKind::Render, "cut off")),
                    _ => break,
                }
            }
            Ok(format!("rows of {}\n", job.placeholders.render("{filters}")?).into_bytes())
        }
    }

    fn task(folder: FolderChannel, gate: Arc<AtomicU8>) -> Task {
        let mut r = ReportDef::new("sales", "Sales");
        r.columns = vec![ColumnDef::new("Region"), ColumnDef::new("Sales")];
        r.formats = vec![OutputFormat::Csv];
        r.file_name = "{recipient.id}".into();
        let east = |id: &str| Recipient::new(id, id).with_filter(Filter::new("Region", ["East"]));
        Task::new("t", Arc::new(TableSource::new("orders", orders())))
            .with_report(r)
            .with_recipients(vec![east("ann"), east("bob")])
            .with_channel(TaskChannel::new(Arc::new(folder)))
            .with_renderer(Arc::new(Gated(gate)))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_cut_off_while_rendering_resumes_under_every_policy() {
        for policy in [
            IfExists::Version,
            IfExists::Fail,
            IfExists::Overwrite,
            IfExists::Keep,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let options = FolderOptions::new(dir.path()).with_if_exists(policy);
            let blocking = FolderChannel::new(options.clone())
                .unwrap()
                .capabilities()
                .blocking;
            assert_eq!(blocking, policy != IfExists::Version, "{policy:?}");

            let log = Arc::new(MemoryRunLog::new());
            let run = RunInfo::at("run-k", 1_700_000_000.0);
            let gate = Arc::new(AtomicU8::new(0));
            let first = task(FolderChannel::new(options.clone()).unwrap(), gate.clone());
            let engine = Engine::default().with_run_log(log.clone());
            let cut = tokio::time::timeout(
                Duration::from_millis(300),
                engine.run_as(&first, run.clone()),
            )
            .await;
            assert!(cut.is_err(), "the run was still rendering");
            gate.store(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(super::files_below(dir.path()).is_empty(), "nothing written");

            gate.store(2, Ordering::SeqCst);
            let second = task(FolderChannel::new(options).unwrap(), gate);
            let summary = Engine::default()
                .with_run_log(log)
                .run_as(&second, run)
                .await
                .unwrap();
            assert_eq!(
                summary.counts.delivered,
                2,
                "{policy:?}: {}",
                summary.human()
            );
            assert_eq!(
                super::files_below(dir.path()).len(),
                2,
                "{policy:?}: one file each"
            );
        }
    }
}
