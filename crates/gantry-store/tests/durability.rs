//! The store on disk: compaction, torn and corrupt logs, one process per directory, and `kill -9` while writing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gantry_store::{Options, Store, StoreError, Txn, WalStore};

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-durability-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_log() -> Options {
    Options {
        min_compact_bytes: 16 << 10,
    }
}

/// Reopens `dir`, waiting for the previous store's threads to let go of it.
async fn reopen(dir: &Path) -> WalStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match WalStore::open_with(dir, small_log()) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("reopen: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    out.sort();
    out
}

fn dump(s: &WalStore) -> Vec<(String, Vec<u8>, u64, u64)> {
    s.range("/")
        .into_iter()
        .map(|kv| {
            (
                kv.key,
                kv.value.to_vec(),
                kv.create_revision,
                kv.mod_revision,
            )
        })
        .collect()
}

#[tokio::test]
async fn compaction_writes_a_snapshot_trims_the_log_and_reopens_the_same() {
    let dir = tmpdir("compact");
    let before;
    {
        let s = WalStore::open_with(&dir, small_log()).unwrap();
        // Overwrites and deletes make the log outgrow the map many times over.
        for i in 0..600u32 {
            let value = vec![b'x'; 200 + (i % 7) as usize];
            let mut txn = Txn::new().put(format!("/k/{}", i % 40), value);
            if i % 5 == 0 {
                txn = txn.delete(format!("/k/{}", (i + 1) % 40));
            }
            s.txn(txn).await.unwrap();
        }
        s.txn(Txn::new().delete_prefix("/k/1")).await.unwrap();
        before = (dump(&s), s.revision());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("snapshot").exists() || dir.join("snapshot.tmp").exists() {
            assert!(Instant::now() < deadline, "no snapshot written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let s = reopen(&dir).await;
    assert_eq!((dump(&s), s.revision()), before);
    // What is left of the log is much smaller than 600 records of 200 bytes.
    let log: u64 = files(&dir, "wal-")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(log < 100_000, "log not trimmed: {log} bytes");
    // And the store goes on from there.
    s.txn(Txn::new().put("/after", b"1".to_vec()))
        .await
        .unwrap();
    assert_eq!(s.get("/after").unwrap().mod_revision, before.1 + 1);
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off_and_everything_before_it_kept() {
    let dir = tmpdir("torn");
    {
        let s = WalStore::open(&dir).unwrap();
        s.txn(Txn::new().put("/a", b"1".to_vec())).await.unwrap();
        s.txn(Txn::new().put("/b", b"2".to_vec())).await.unwrap();
    }
    let s = reopen(&dir).await;
    drop(s);
    // A crash in the middle of an append: a header that promises more than follows. It is in the newest segment
    // that has anything in it (each open starts an empty one, which the next open must cope with too).
    let segment = files(&dir, "wal-")
        .into_iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'p', b'a'])
        .unwrap();
    drop(f);
    // The torn record is in a segment followed by empty ones: still the log's end.
    let s = reopen(&dir).await;
    assert_eq!(&*s.get("/a").unwrap().value, b"1");
    assert_eq!(s.revision(), 2);
    s.txn(Txn::new().put("/c", b"3".to_vec())).await.unwrap();
    drop(s);
    let s = reopen(&dir).await;
    assert_eq!(s.range("/").len(), 3);
    assert_eq!(s.revision(), 3);
}

#[tokio::test]
async fn a_corrupt_record_before_the_end_refuses_to_open() {
    let dir = tmpdir("corrupt");
    {
        let s = WalStore::open(&dir).unwrap();
        s.txn(Txn::new().put("/a", b"1".to_vec())).await.unwrap();
    }
    {
        let s = reopen(&dir).await;
        s.txn(Txn::new().put("/b", b"2".to_vec())).await.unwrap();
    }
    let first = files(&dir, "wal-").remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    match WalStore::open(&dir) {
        Err(StoreError::Storage(msg)) => assert!(msg.contains("corrupt"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a store whose log is corrupt in the middle"),
    }
}

#[tokio::test]
async fn one_store_per_directory() {
    let dir = tmpdir("lock");
    let _s = WalStore::open(&dir).unwrap();
    match WalStore::open(&dir) {
        Err(StoreError::Storage(msg)) => assert!(msg.contains("in use"), "{msg}"),
        _ => panic!("a second store opened the same directory"),
    }
}

const CHILD_DIR: &str = "GANTRY_STORE_CRASH_DIR";

/// Not a test of its own: the writer process `kill_9_loses_no_acknowledged_write` starts and kills.
#[tokio::test]
#[ignore = "run as a child process by kill_9_loses_no_acknowledged_write"]
async fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let s = WalStore::open_with(Path::new(&dir), small_log()).unwrap();
    let mut out = std::io::stdout();
    let base = s.range("/crash/").len() as u64;
    for i in 0u64.. {
        // Several writers at once, so that batches group; a value large enough that snapshots keep happening.
        let mut handles = Vec::new();
        for j in 0..8 {
            let s = s.clone();
            let key = format!("/crash/{}", base + i * 8 + j);
            handles.push(tokio::spawn(async move {
                s.txn(Txn::new().put(key.clone(), vec![b'v'; 512]))
                    .await
                    .map(|_| key)
            }));
        }
        for h in handles {
            let key = h.await.unwrap().unwrap();
            writeln!(out, "{key}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tmpdir("kill9");
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_writer_child", "--ignored", "--nocapture"])
            .env(CHILD_DIR, &dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut acknowledged = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while acknowledged.len() < 400 + round * 137 {
            let line = lines.next().expect("child ended early").unwrap();
            if line.starts_with("/crash/") {
                acknowledged.push(line);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let s = reopen(&dir).await;
        for key in &acknowledged {
            assert!(
                s.get(key).is_some(),
                "round {round}: {key} was acknowledged and is gone"
            );
        }
        let all = s.range("/crash/");
        assert!(all.iter().all(|kv| kv.value.len() == 512));
        assert_eq!(s.revision() as usize, all.len(), "one revision per write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_swap_counts_exactly_while_batches_are_in_flight() {
    // Read-modify-write loops on one key: each increment must see the one before it even while that one is still
    // being synced, or two would both succeed from the same value.
    let dir = tmpdir("cas");
    let s = WalStore::open(&dir).unwrap();
    s.txn(Txn::new().put("/n", b"0".to_vec())).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..16 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..25 {
                loop {
                    let kv = s.get("/n").unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    let txn = Txn::new()
                        .compare(gantry_store::Compare::unchanged(&kv))
                        .put("/n", (n + 1).to_string().into_bytes())
                        .put(format!("/w/{w}/{i}"), vec![]);
                    if s.txn(txn).await.unwrap().is_committed() {
                        break;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(&*s.get("/n").unwrap().value, b"400");
    assert_eq!(s.range("/w/").len(), 400);
}
