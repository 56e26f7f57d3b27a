use gantry_store::{Compare, EventKind, Store, StoreError, Txn, TxnOutcome, WalStore};

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-store-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn put_get_range_and_revisions() {
    let s = WalStore::in_memory().unwrap();
    assert_eq!(s.revision(), 0);
    let out = s
        .txn(
            Txn::new()
                .put("/a/1", b"x".to_vec())
                .put("/a/2", b"y".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::Committed { revision: 1 });
    s.txn(Txn::new().put("/b/1", b"z".to_vec())).await.unwrap();
    let a = s.range("/a/");
    assert_eq!(a.len(), 2);
    assert_eq!(&*a[0].value, b"x");
    assert_eq!(a[0].mod_revision, 1);
    assert_eq!(s.get("/b/1").unwrap().mod_revision, 2);
    assert_eq!(s.revision(), 2);
}

#[tokio::test]
async fn compare_and_swap_conflicts_write_nothing() {
    let s = WalStore::in_memory().unwrap();
    s.txn(
        Txn::new()
            .compare(Compare::absent("/k"))
            .put("/k", b"1".to_vec()),
    )
    .await
    .unwrap();
    let kv = s.get("/k").unwrap();
    // A second create of the same key conflicts.
    let out = s
        .txn(
            Txn::new()
                .compare(Compare::absent("/k"))
                .put("/k", b"2".to_vec())
                .put("/other", vec![]),
        )
        .await
        .unwrap();
    assert_eq!(out, TxnOutcome::Conflict);
    assert!(s.get("/other").is_none());
    // An update guarded by the revision read succeeds once, then conflicts.
    assert!(s
        .txn(
            Txn::new()
                .compare(Compare::unchanged(&kv))
                .put("/k", b"3".to_vec())
        )
        .await
        .unwrap()
        .is_committed());
    assert!(!s
        .txn(
            Txn::new()
                .compare(Compare::unchanged(&kv))
                .put("/k", b"4".to_vec())
        )
        .await
        .unwrap()
        .is_committed());
    assert_eq!(&*s.get("/k").unwrap().value, b"3");
    assert_eq!(s.get("/k").unwrap().create_revision, kv.create_revision);
}

#[tokio::test]
async fn delete_prefix_removes_everything_under_it() {
    let s = WalStore::in_memory().unwrap();
    s.txn(
        Txn::new()
            .put("/x/1", vec![])
            .put("/x/2", vec![])
            .put("/y", vec![]),
    )
    .await
    .unwrap();
    s.txn(Txn::new().delete_prefix("/x/")).await.unwrap();
    assert!(s.range("/x/").is_empty());
    assert!(s.get("/y").is_some());
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tmpdir("reopen");
    let path = dir.join("state");
    {
        let s = WalStore::open(&path).unwrap();
        s.txn(Txn::new().put("/a", b"1".to_vec())).await.unwrap();
        s.txn(Txn::new().put("/b", b"2".to_vec()).delete("/a"))
            .await
            .unwrap();
    }
    // The writer thread holds the file until its queue closes; give it a moment.
    let mut reopened = None;
    for _ in 0..50 {
        match WalStore::open(&path) {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let s = reopened.expect("reopen");
    assert!(s.get("/a").is_none());
    assert_eq!(&*s.get("/b").unwrap().value, b"2");
    assert_eq!(s.revision(), 2);
}

#[tokio::test]
async fn watch_replays_from_a_revision_then_follows() {
    let s = WalStore::in_memory().unwrap();
    s.txn(Txn::new().put("/t/1", b"a".to_vec())).await.unwrap();
    s.txn(Txn::new().put("/u/1", b"b".to_vec())).await.unwrap();
    s.txn(
        Txn::new()
            .put("/t/2", b"c".to_vec())
            .put("/t/3", b"d".to_vec()),
    )
    .await
    .unwrap();
    let mut w = s.watch("/t/", 1).unwrap();
    let e = w.next().await.unwrap();
    assert_eq!((e.kv.key.as_str(), e.kv.mod_revision), ("/t/2", 3));
    let e = w.next().await.unwrap();
    assert_eq!((e.kv.key.as_str(), e.kv.mod_revision), ("/t/3", 3));
    s.txn(Txn::new().delete("/t/1")).await.unwrap();
    let e = w.next().await.unwrap();
    assert_eq!((e.kind, e.kv.key.as_str()), (EventKind::Delete, "/t/1"));
}

#[tokio::test]
async fn concurrent_transactions_all_commit_with_distinct_revisions() {
    let s = WalStore::in_memory().unwrap();
    let mut handles = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.txn(Txn::new().put(format!("/c/{i}"), vec![])).await
        }));
    }
    let mut revs = Vec::new();
    for h in handles {
        match h.await.unwrap().unwrap() {
            TxnOutcome::Committed { revision } => revs.push(revision),
            TxnOutcome::Conflict => panic!("no compares, no conflict"),
        }
    }
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), 200);
    assert_eq!(s.range("/c/").len(), 200);
}

#[tokio::test]
async fn watching_a_forgotten_revision_says_compacted() {
    let s = WalStore::in_memory().unwrap();
    for i in 0..1200 {
        s.txn(Txn::new().put(format!("/k/{i}"), vec![]))
            .await
            .unwrap();
    }
    assert!(matches!(s.watch("/k/", 1), Err(StoreError::Compacted(1))));
    assert!(s.watch("/k/", s.revision()).is_ok());
}

#[tokio::test]
async fn observers_see_every_change_after_their_snapshot_before_the_txn_returns() {
    use std::sync::{Arc, Mutex};
    let s = WalStore::in_memory().unwrap();
    s.txn(Txn::new().put("/o/before", b"0".to_vec()))
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<(String, EventKind, u64)>>> = Arc::default();
    let sink = seen.clone();
    let snapshot = s.observe(
        "/o/",
        Arc::new(move |events| {
            for e in events {
                sink.lock()
                    .unwrap()
                    .push((e.kv.key.clone(), e.kind, e.kv.mod_revision))
            }
        }),
    );
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].key, "/o/before");
    s.txn(
        Txn::new()
            .put("/o/a", b"1".to_vec())
            .put("/other", b"x".to_vec()),
    )
    .await
    .unwrap();
    // Already applied when the txn returns: no waiting.
    assert_eq!(seen.lock().unwrap().len(), 1);
    s.txn(Txn::new().delete("/o/a")).await.unwrap();
    s.txn(
        Txn::new()
            .compare(Compare::absent("/o/before"))
            .put("/o/no", b"1".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("/o/a".to_string(), EventKind::Put, 2),
            ("/o/a".to_string(), EventKind::Delete, 3),
        ]
    );
}
