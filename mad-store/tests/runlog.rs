//! The SQLite run log survives reopening and answers what earlier attempts left.

use mad_core::runlog::{DeliveryKey, PriorAttempt, RunLog};
use mad_core::summary::Failure;
use mad_core::{ErrorKind, Receipt, RunInfo};
use mad_store::SqliteRunLog;

fn key(recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run_id: "r1".into(),
        recipient: recipient.into(),
        report: "sales".into(),
        channel: "folder".into(),
    }
}

#[tokio::test]
async fn outcomes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.sqlite");
    let receipt = Receipt {
        channel: "folder".into(),
        locations: vec!["/out/a.pdf".into()],
        bytes: 42,
    };
    {
        let log = SqliteRunLog::open(&path).unwrap();
        let run = RunInfo::at("r1", 1_700_000_000.0);
        assert_eq!(log.start_run(&run, "t").await.unwrap(), run);
        assert_eq!(log.begin(&key("ann")).await.unwrap(), PriorAttempt::None);
        log.finish(&key("ann"), &Ok(receipt.clone())).await.unwrap();
        assert_eq!(log.begin(&key("bob")).await.unwrap(), PriorAttempt::None);
        let failure = Failure {
            kind: ErrorKind::Transient,
            code: 13,
            message: "connection reset".into(),
            report: None,
            channel: None,
        };
        log.begin(&key("cy")).await.unwrap();
        log.finish(&key("cy"), &Err(failure)).await.unwrap();
    }
    let log = SqliteRunLog::open(&path).unwrap();
    let later = RunInfo::at("r1", 1_800_000_000.0);
    assert_eq!(
        log.start_run(&later, "t").await.unwrap().date,
        "2023-11-14",
        "the first start is kept"
    );
    assert_eq!(
        log.delivered("r1").await.unwrap(),
        [(key("ann"), receipt.clone())],
        "only what was delivered is listed"
    );
    assert!(log.delivered("r2").await.unwrap().is_empty());
    assert_eq!(
        log.begin(&key("ann")).await.unwrap(),
        PriorAttempt::Delivered(receipt)
    );
    assert_eq!(
        log.begin(&key("bob")).await.unwrap(),
        PriorAttempt::Interrupted
    );
    assert!(
        matches!(log.begin(&key("cy")).await.unwrap(), PriorAttempt::Failed(f) if f.kind == ErrorKind::Transient)
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.sqlite");
    std::fs::write(
        &path,
        b"this is not a database, just text that is long enough",
    )
    .unwrap();
    let err = SqliteRunLog::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("runs.sqlite"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_sharing_one_file_wait_for_each_other_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.sqlite");
    // Two handles are two connections, as two processes running at once would have.
    let logs: Vec<SqliteRunLog> = (0..4).map(|_| SqliteRunLog::open(&path).unwrap()).collect();
    let receipt = Receipt {
        channel: "folder".into(),
        locations: vec!["/out/a.pdf".into()],
        bytes: 1,
    };
    let mut tasks = Vec::new();
    for (n, log) in logs.into_iter().enumerate() {
        let receipt = receipt.clone();
        tasks.push(tokio::spawn(async move {
            let run = RunInfo::at(format!("run-{n}"), 1_700_000_000.0);
            log.start_run(&run, "t").await?;
            for i in 0..100 {
                let key = DeliveryKey {
                    run_id: run.id.clone(),
                    recipient: format!("r{i}"),
                    report: "sales".into(),
                    channel: "folder".into(),
                };
                log.begin(&key).await?;
                log.finish(&key, &Ok(receipt.clone())).await?;
            }
            Ok::<(), mad_core::Error>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let log = SqliteRunLog::open(&path).unwrap();
    for n in 0..4 {
        let key = DeliveryKey {
            run_id: format!("run-{n}"),
            recipient: "r99".into(),
            report: "sales".into(),
            channel: "folder".into(),
        };
        assert!(matches!(
            log.begin(&key).await.unwrap(),
            PriorAttempt::Delivered(_)
        ));
    }
}

#[tokio::test]
async fn a_run_id_of_one_task_is_refused_for_another_in_both_logs() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteRunLog::open(dir.path().join("runs.sqlite")).unwrap();
    let memory = mad_core::runlog::MemoryRunLog::new();
    let logs: [&dyn RunLog; 2] = [&sqlite, &memory];
    for log in logs {
        let run = RunInfo::at("2026-12-05", 1_700_000_000.0);
        log.start_run(&run, "consumer").await.unwrap();
        log.begin(&key("ann")).await.unwrap();
        let err = log.start_run(&run, "corporate").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(
            text.contains("'consumer'") && text.contains("'corporate'"),
            "{text}"
        );
        assert!(text.contains("2026-12-05-corporate"), "{text}");
        // The run's own task still resumes it.
        assert_eq!(log.start_run(&run, "consumer").await.unwrap(), run);
    }
}
