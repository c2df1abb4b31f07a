//! The hub index keeps entries across reopening and answers by recipient and by expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mad_store::{HubEntry, HubIndex};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn entry(id: &str, recipient: &str, created: u64, expires: u64) -> HubEntry {
    HubEntry {
        id: id.into(),
        recipient: recipient.into(),
        report: "Umsatz".into(),
        run_id: "r1".into(),
        file_name: format!("Umsatz {recipient} – Zürich.pdf"),
        media_type: "application/pdf".into(),
        size: 42,
        sha256: "ab".repeat(32),
        created: at(created),
        expires: at(expires),
    }
}

#[tokio::test]
async fn entries_survive_reopening_and_are_listed_by_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    {
        let index = HubIndex::open(&path).unwrap();
        index.insert(&entry("a1", "ann", 100, 200)).await.unwrap();
        index.insert(&entry("a2", "ann", 150, 250)).await.unwrap();
        index.insert(&entry("b1", "bob", 100, 200)).await.unwrap();
    }
    let index = HubIndex::open(&path).unwrap();

    let ann: Vec<String> = index
        .list("ann", at(120))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ann, ["a2", "a1"], "newest first");
    assert_eq!(index.list("ann", at(200)).await.unwrap().len(), 1);
    assert_eq!(
        index.get("b1").await.unwrap(),
        Some(entry("b1", "bob", 100, 200))
    );
    assert_eq!(index.get("zz").await.unwrap(), None);
}

#[tokio::test]
async fn expired_entries_are_found_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let index = HubIndex::open(dir.path().join("hub.sqlite")).unwrap();
    for (id, expires) in [("x1", 200), ("x2", 300), ("x3", 400)] {
        index.insert(&entry(id, "ann", 100, expires)).await.unwrap();
    }

    let expired = index.expired(at(300), 10).await.unwrap();
    assert_eq!(
        expired.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["x1", "x2"]
    );
    assert_eq!(index.expired(at(300), 1).await.unwrap().len(), 1);
    assert!(index.remove("x1").await.unwrap());
    assert!(!index.remove("x1").await.unwrap());
    let ids = index.ids().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains("x2") && ids.contains("x3"));
}

#[tokio::test]
async fn inserting_an_id_again_replaces_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let index = HubIndex::open(dir.path().join("hub.sqlite")).unwrap();
    index.insert(&entry("a1", "ann", 100, 200)).await.unwrap();
    let mut newer = entry("a1", "ann", 150, 250);
    newer.size = 7;
    index.insert(&newer).await.unwrap();

    assert_eq!(index.get("a1").await.unwrap(), Some(newer));
    assert_eq!(index.ids().await.unwrap().len(), 1);
}
