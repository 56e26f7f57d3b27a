//! The default backend: the whole map in memory, made durable by a write-ahead log and snapshots in a directory
//! (see `disk`), the way etcd keeps its own state.
//!
//! Two threads commit. The *stager* takes every transaction waiting, checks its compares against the map plus the
//! batches still in flight, appends the batch to the log and hands it on. The *syncer* `fdatasync`s once for every
//! batch handed to it meanwhile (group commit), then applies them to the map, tells observers and watchers, and
//! answers the callers, in revision order. So the stager prepares the next batch while the disk syncs the last.
//! When the log has grown past twice the map, the stager starts a new segment and the syncer writes a snapshot of
//! the map on a thread of its own; the segments before it are deleted once the snapshot is durable.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use tokio::sync::oneshot;

use crate::disk::{self, Change, Next};
use crate::watch::Hub;
use crate::{
    Compare, Event, EventKind, KeyValue, Observer, Store, StoreError, Txn, TxnOutcome, Watcher,
};

/// Transactions committed together at most, so that one slow batch cannot grow without bound.
const MAX_BATCH: usize = 256;
/// Batches the stager may have in flight before it waits for the disk.
const IN_FLIGHT: usize = 4;
/// The log is not compacted below this size, whatever the map's size.
const MIN_COMPACT_BYTES: u64 = 64 << 20;

/// Tuning for [`WalStore::open_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Compact once the log holds more than this and more than twice the map.
    pub min_compact_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            min_compact_bytes: MIN_COMPACT_BYTES,
        }
    }
}

struct State {
    map: BTreeMap<String, KeyValue>,
    revision: u64,
    /// Roughly what a snapshot of the map takes on disk.
    bytes: u64,
}

impl State {
    fn apply(&mut self, changes: Vec<Change>) {
        for (key, value) in changes {
            let added = value.as_ref().map(entry_bytes).unwrap_or(0);
            let removed = match value {
                Some(v) => self.map.insert(key, v),
                None => self.map.remove(&key),
            };
            let removed = removed.as_ref().map(entry_bytes).unwrap_or(0);
            self.bytes = (self.bytes + added).saturating_sub(removed);
        }
    }
}

fn entry_bytes(kv: &KeyValue) -> u64 {
    (kv.key.len() + kv.value.len() + 25) as u64
}

struct Shared {
    state: RwLock<State>,
    hub: Mutex<Hub>,
    /// The last revision applied to `state`: the stager forgets its in-flight changes up to it.
    applied: AtomicU64,
    /// Set when a write or sync failed: what is on disk is unknown, so nothing more is accepted.
    failed: AtomicBool,
    /// A snapshot is being written.
    compacting: AtomicBool,
}

type Reply = oneshot::Sender<Result<TxnOutcome, StoreError>>;

/// A store kept in a directory (or in memory only, for tests).
#[derive(Clone)]
pub struct WalStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<(Txn, Reply)>,
}

/// Where the log goes; `None` in memory.
struct Files {
    dir: PathBuf,
    seq: u64,
    segment: Arc<File>,
    /// Bytes written to the log since the last snapshot.
    written: u64,
    options: Options,
    /// Held while any thread of this store may touch the directory.
    lock: Arc<File>,
}

/// What the stager hands the syncer.
enum Staged {
    Batch {
        /// The segment the batch was appended to, to be synced before the batch is applied.
        segment: Option<Arc<File>>,
        revision: u64,
        changes: Vec<Change>,
        events: Vec<Event>,
        replies: Vec<(Reply, TxnOutcome)>,
    },
    /// Snapshot the map as it is once everything before this is applied; replay then starts at `next_seq`.
    Checkpoint {
        dir: PathBuf,
        next_seq: u64,
        lock: Arc<File>,
    },
}

impl WalStore {
    /// Opens (or creates) the store in directory `dir`.
    pub fn open(dir: &Path) -> Result<WalStore, StoreError> {
        Self::open_with(dir, Options::default())
    }

    pub fn open_with(dir: &Path, options: Options) -> Result<WalStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let lock = Arc::new(disk::lock(dir)?);
        let (state, last_seq, written) = load(dir)?;
        let seq = last_seq + 1;
        let segment = new_segment(dir, seq)?;
        let files = Files {
            dir: dir.to_path_buf(),
            seq,
            segment,
            written,
            options,
            lock,
        };
        Self::start(state, Some(files))
    }

    /// A store that lives in memory only.
    pub fn in_memory() -> Result<WalStore, StoreError> {
        let state = State {
            map: BTreeMap::new(),
            revision: 0,
            bytes: 0,
        };
        Self::start(state, None)
    }

    fn start(state: State, files: Option<Files>) -> Result<WalStore, StoreError> {
        let shared = Arc::new(Shared {
            applied: AtomicU64::new(state.revision),
            state: RwLock::new(state),
            hub: Mutex::new(Hub::new()),
            failed: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
        });
        let (writer, queue) = mpsc::channel();
        let (to_syncer, staged) = mpsc::sync_channel(IN_FLIGHT);
        let for_stager = shared.clone();
        let for_syncer = shared.clone();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|_| ())
                .map_err(|e| StoreError::Storage(e.to_string()))
        };
        spawn(
            "store-syncer",
            Box::new(move || sync_loop(for_syncer, staged)),
        )?;
        spawn(
            "store-stager",
            Box::new(move || stage_loop(for_stager, queue, to_syncer, files)),
        )?;
        Ok(WalStore { shared, writer })
    }
}

/// Reads the snapshot and replays the log after it. Returns the state, the last segment number, and the log's size.
fn load(dir: &Path) -> Result<(State, u64, u64), StoreError> {
    let mut state = State {
        map: BTreeMap::new(),
        revision: 0,
        bytes: 0,
    };
    let mut first_seq = 0;
    if let Some((revision, next_seq, entries)) = disk::read_snapshot(dir)? {
        state.revision = revision;
        first_seq = next_seq;
        state.apply(
            entries
                .into_iter()
                .map(|kv| (kv.key.clone(), Some(kv)))
                .collect(),
        );
    }
    let segments: Vec<(u64, PathBuf)> = disk::segments(dir)?
        .into_iter()
        .filter(|(seq, _)| *seq >= first_seq)
        .collect();
    // The log's end is in the newest segment with anything in it (each open starts an empty one).
    let mut end = 0;
    for (i, (_, path)) in segments.iter().enumerate() {
        if std::fs::metadata(path)?.len() > 0 {
            end = i;
        }
    }
    let mut written = 0;
    let mut buf = Vec::new();
    for (i, (_, path)) in segments.iter().enumerate() {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut r = BufReader::with_capacity(1 << 20, &mut file);
        let mut valid = 0u64;
        loop {
            match disk::next_record(&mut r, &mut buf)? {
                Next::Record => {
                    let (revision, changes) = disk::decode_batch(&buf).ok_or_else(|| {
                        StoreError::Storage(format!("corrupt batch in {}", path.display()))
                    })?;
                    if revision > state.revision {
                        state.apply(changes);
                        state.revision = revision;
                    }
                    valid += 8 + buf.len() as u64;
                }
                Next::End => break,
                Next::Torn if i >= end => {
                    // The last write before a crash: never acknowledged, so cut it off.
                    tracing::warn!(segment = %path.display(), at = valid, "store log ends in a torn write; truncating");
                    drop(r);
                    file.set_len(valid)?;
                    file.sync_all()?;
                    break;
                }
                Next::Torn => {
                    return Err(StoreError::Storage(format!(
                        "corrupt record in {} at byte {valid}, before the log's end",
                        path.display()
                    )))
                }
            }
        }
        written += valid;
    }
    let last_seq = segments.last().map(|(seq, _)| *seq).unwrap_or(first_seq);
    Ok((state, last_seq, written))
}

fn new_segment(dir: &Path, seq: u64) -> Result<Arc<File>, StoreError> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(disk::segment_path(dir, seq))?;
    disk::sync_dir(dir)?;
    Ok(Arc::new(file))
}

/// A key's newest state in batches not yet applied, with the revision of the batch that wrote it.
type InFlight = HashMap<String, (u64, Option<KeyValue>)>;

/// A key's state as a transaction sees it: this batch, then the batches in flight, then the map.
fn current<'a>(
    state: &'a State,
    in_flight: &'a InFlight,
    batch: &'a HashMap<String, Option<KeyValue>>,
    key: &str,
) -> Option<&'a KeyValue> {
    if let Some(v) = batch.get(key) {
        return v.as_ref();
    }
    if let Some((_, v)) = in_flight.get(key) {
        return v.as_ref();
    }
    state.map.get(key)
}

fn keys_under(
    state: &State,
    in_flight: &InFlight,
    batch: &HashMap<String, Option<KeyValue>>,
    prefix: &str,
) -> Vec<String> {
    let mut keys: Vec<String> = state
        .map
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(in_flight.keys().filter(|k| k.starts_with(prefix)).cloned());
    keys.extend(batch.keys().filter(|k| k.starts_with(prefix)).cloned());
    keys
}

/// Checks and stages one transaction on top of what is staged so far. Returns its events, or `None` on conflict.
fn stage(
    state: &State,
    in_flight: &InFlight,
    batch: &mut HashMap<String, Option<KeyValue>>,
    revision: u64,
    txn: Txn,
) -> Option<Vec<Event>> {
    for Compare::ModRevision(key, want) in &txn.compares {
        let have = current(state, in_flight, batch, key)
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        if have != *want {
            return None;
        }
    }
    let mut deleted: Vec<String> = txn.deletes;
    for prefix in &txn.delete_prefixes {
        deleted.extend(keys_under(state, in_flight, batch, prefix));
    }
    let mut events = Vec::new();
    for key in deleted {
        if current(state, in_flight, batch, &key).is_some() {
            let kv = KeyValue {
                key: key.clone(),
                value: Arc::from(&[][..]),
                create_revision: 0,
                mod_revision: revision,
            };
            events.push(Event {
                kind: EventKind::Delete,
                kv,
            });
            batch.insert(key, None);
        }
    }
    for (key, value) in txn.puts {
        let create_revision = current(state, in_flight, batch, &key)
            .map(|kv| kv.create_revision)
            .unwrap_or(revision);
        let kv = KeyValue {
            key: key.clone(),
            value: value.into(),
            create_revision,
            mod_revision: revision,
        };
        events.push(Event {
            kind: EventKind::Put,
            kv: kv.clone(),
        });
        batch.insert(key, Some(kv));
    }
    Some(events)
}

fn stage_loop(
    shared: Arc<Shared>,
    queue: mpsc::Receiver<(Txn, Reply)>,
    to_syncer: mpsc::SyncSender<Staged>,
    mut files: Option<Files>,
) {
    let mut in_flight = InFlight::new();
    let mut revision = shared.applied.load(Ordering::Acquire);
    let mut record = Vec::new();
    let mut payload = Vec::new();
    while let Ok(first) = queue.recv() {
        let mut txns = vec![first];
        while txns.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => txns.push(next),
                Err(_) => break,
            }
        }
        if shared.failed.load(Ordering::Acquire) {
            for (_, reply) in txns {
                let _ = reply.send(Err(failed()));
            }
            continue;
        }
        let applied = shared.applied.load(Ordering::Acquire);
        in_flight.retain(|_, (rev, _)| *rev > applied);
        let mut batch = HashMap::new();
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(txns.len());
        {
            let Ok(state) = shared.state.read() else {
                return;
            };
            for (txn, reply) in txns {
                let noop =
                    txn.puts.is_empty() && txn.deletes.is_empty() && txn.delete_prefixes.is_empty();
                match stage(&state, &in_flight, &mut batch, revision + 1, txn) {
                    None => replies.push((reply, TxnOutcome::Conflict)),
                    Some(_) if noop => replies.push((reply, TxnOutcome::Committed { revision })),
                    Some(evs) => {
                        revision += 1;
                        events.extend(evs);
                        replies.push((reply, TxnOutcome::Committed { revision }));
                    }
                }
            }
        }
        let mut segment = None;
        if let (Some(f), false) = (files.as_mut(), batch.is_empty()) {
            payload.clear();
            record.clear();
            disk::encode_batch(
                revision,
                batch.iter().map(|(k, v)| (k.as_str(), v.as_ref())),
                &mut payload,
            );
            disk::frame(&payload, &mut record);
            if let Err(e) = (&*f.segment).write_all(&record) {
                tracing::error!(error = %e, "store log write failed; refusing further writes");
                shared.failed.store(true, Ordering::Release);
                for (reply, _) in replies {
                    let _ = reply.send(Err(failed()));
                }
                continue;
            }
            f.written += record.len() as u64;
            segment = Some(f.segment.clone());
        }
        let changes: Vec<Change> = batch.into_iter().collect();
        for (key, value) in &changes {
            in_flight.insert(key.clone(), (revision, value.clone()));
        }
        let staged = Staged::Batch {
            segment,
            revision,
            changes,
            events,
            replies,
        };
        if to_syncer.send(staged).is_err() {
            return;
        }
        if let Some(f) = files.as_mut() {
            if let Some(checkpoint) = maybe_rotate(&shared, f) {
                if to_syncer.send(checkpoint).is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts a new segment when the log has outgrown the map, and asks for a snapshot up to the old one's end.
fn maybe_rotate(shared: &Shared, f: &mut Files) -> Option<Staged> {
    if f.written <= f.options.min_compact_bytes {
        return None;
    }
    let map_bytes = shared.state.read().map(|s| s.bytes).unwrap_or(0);
    if f.written <= 2 * map_bytes || shared.compacting.swap(true, Ordering::AcqRel) {
        return None;
    }
    // A segment followed by a newer one is whole on disk, so that a bad record in it is known to be corruption.
    match f
        .segment
        .sync_data()
        .map_err(StoreError::from)
        .and_then(|()| new_segment(&f.dir, f.seq + 1))
    {
        Ok(segment) => {
            f.seq += 1;
            f.segment = segment;
            f.written = 0;
            Some(Staged::Checkpoint {
                dir: f.dir.clone(),
                next_seq: f.seq,
                lock: f.lock.clone(),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not start a new store log segment; compacting later");
            shared.compacting.store(false, Ordering::Release);
            None
        }
    }
}

fn failed() -> StoreError {
    StoreError::Storage("an earlier write to the store's log failed; restart to recover".into())
}

fn sync_loop(shared: Arc<Shared>, staged: mpsc::Receiver<Staged>) {
    while let Ok(first) = staged.recv() {
        let mut group = vec![first];
        while let Ok(next) = staged.try_recv() {
            group.push(next);
        }
        // One sync per segment covers every batch appended to it so far.
        let mut synced: Option<Arc<File>> = None;
        let mut sync_error = None;
        for item in &group {
            if let Staged::Batch {
                segment: Some(segment),
                ..
            } = item
            {
                if synced.as_ref().is_some_and(|s| Arc::ptr_eq(s, segment)) {
                    continue;
                }
                if let Err(e) = segment.sync_data() {
                    sync_error = Some(e);
                    break;
                }
                synced = Some(segment.clone());
            }
        }
        if sync_error.is_some() || shared.failed.load(Ordering::Acquire) {
            if let Some(e) = sync_error {
                tracing::error!(error = %e, "store log sync failed; refusing further writes");
            }
            shared.failed.store(true, Ordering::Release);
            for item in group {
                if let Staged::Batch { replies, .. } = item {
                    for (reply, _) in replies {
                        let _ = reply.send(Err(failed()));
                    }
                }
            }
            continue;
        }
        let mut answers = Vec::new();
        let mut published = Vec::new();
        {
            // Hub first, then state: a watcher registers under the hub lock and sees either both or neither.
            let Ok(mut hub) = shared.hub.lock() else {
                return;
            };
            for item in group {
                match item {
                    Staged::Batch {
                        revision,
                        changes,
                        events,
                        replies,
                        ..
                    } => {
                        if !changes.is_empty() {
                            let Ok(mut state) = shared.state.write() else {
                                return;
                            };
                            state.apply(changes);
                            state.revision = revision;
                            drop(state);
                            shared.applied.store(revision, Ordering::Release);
                            published.extend(events);
                        }
                        answers.extend(replies);
                    }
                    Staged::Checkpoint {
                        dir,
                        next_seq,
                        lock,
                    } => checkpoint(&shared, dir, next_seq, lock),
                }
            }
            if !published.is_empty() {
                hub.publish(published);
            }
        }
        for (reply, outcome) in answers {
            let _ = reply.send(Ok(outcome));
        }
    }
}

/// Copies the map (cheap: keys and shared values) and writes the snapshot on a thread of its own.
fn checkpoint(shared: &Arc<Shared>, dir: PathBuf, next_seq: u64, lock: Arc<File>) {
    let (revision, entries) = match shared.state.read() {
        Ok(s) => (s.revision, s.map.values().cloned().collect::<Vec<_>>()),
        Err(_) => return,
    };
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("store-snapshot".into())
        .spawn(move || {
            let _lock = lock;
            match snapshot_and_trim(&dir, revision, next_seq, &entries) {
                Ok(()) => {
                    tracing::info!(revision, entries = entries.len(), "store snapshot written")
                }
                Err(e) => tracing::warn!(error = %e, "store snapshot failed; the log is kept"),
            }
            shared.compacting.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        tracing::warn!("could not start the store snapshot thread");
    }
}

fn snapshot_and_trim(
    dir: &Path,
    revision: u64,
    next_seq: u64,
    entries: &[KeyValue],
) -> std::io::Result<()> {
    disk::write_snapshot(dir, revision, next_seq, entries)?;
    for (seq, path) in disk::segments(dir)? {
        if seq < next_seq {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

impl Store for WalStore {
    fn get(&self, key: &str) -> Option<KeyValue> {
        self.shared.state.read().ok()?.map.get(key).cloned()
    }

    fn range(&self, prefix: &str) -> Vec<KeyValue> {
        let Ok(state) = self.shared.state.read() else {
            return Vec::new();
        };
        state
            .map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn revision(&self) -> u64 {
        self.shared.state.read().map(|s| s.revision).unwrap_or(0)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send((txn, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn watch(&self, prefix: &str, from_revision: u64) -> Result<Watcher, StoreError> {
        let hub = self.shared.hub.lock().map_err(|_| StoreError::Closed)?;
        let current = self.revision();
        hub.watch(prefix, from_revision, current)
    }

    fn observe(&self, prefix: &str, observer: Observer) -> Vec<KeyValue> {
        // Changes are applied to the map and published under the hub's lock: holding it, the snapshot and the
        // registration see the same point.
        let Ok(mut hub) = self.shared.hub.lock() else {
            return Vec::new();
        };
        let snapshot = self.range(prefix);
        hub.observe(prefix, observer);
        snapshot
    }
}
