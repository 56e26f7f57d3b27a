//! The default backend: a redb file, mirrored in memory for reads. One writer thread takes transactions from a
//! queue and commits every transaction waiting at that moment in one durable redb commit (group commit), then
//! publishes the changes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, RwLock};

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::watch::Hub;
use crate::{
    Compare, Event, EventKind, KeyValue, Observer, Store, StoreError, Txn, TxnOutcome, Watcher,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
/// Transactions committed together at most, so that one slow batch cannot grow without bound.
const MAX_BATCH: usize = 256;

struct State {
    map: BTreeMap<String, KeyValue>,
    revision: u64,
}

struct Shared {
    state: RwLock<State>,
    hub: Mutex<Hub>,
}

type Reply = oneshot::Sender<Result<TxnOutcome, StoreError>>;

/// A store kept in a redb file (or in memory, for tests).
#[derive(Clone)]
pub struct RedbStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<(Txn, Reply)>,
}

impl RedbStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Self::start(Database::create(path)?)
    }

    /// A store that lives in memory only.
    pub fn in_memory() -> Result<RedbStore, StoreError> {
        Self::start(
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?,
        )
    }

    fn start(db: Database) -> Result<RedbStore, StoreError> {
        let state = load(&db)?;
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            hub: Mutex::new(Hub::new()),
        });
        let (writer, queue) = mpsc::channel();
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(db, for_writer, queue))
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        Ok(RedbStore { shared, writer })
    }
}

fn load(db: &Database) -> Result<State, StoreError> {
    let w = db.begin_write()?;
    {
        w.open_table(KV)?;
        w.open_table(META)?;
    }
    w.commit()?;
    let r = db.begin_read()?;
    let kv = r.open_table(KV)?;
    let meta = r.open_table(META)?;
    let revision = meta.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
    let mut map = BTreeMap::new();
    for entry in kv.iter()? {
        let (k, v) = entry?;
        let kv = decode(k.value(), v.value())
            .ok_or_else(|| StoreError::Storage(format!("corrupt value at {}", k.value())))?;
        map.insert(kv.key.clone(), kv);
    }
    Ok(State { map, revision })
}

fn encode(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.value);
    out
}

fn decode(key: &str, bytes: &[u8]) -> Option<KeyValue> {
    let create_revision = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let mod_revision = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some(KeyValue {
        key: key.to_string(),
        value: bytes[16..].into(),
        create_revision,
        mod_revision,
    })
}

/// The changes of one batch before they are durable: `None` marks a delete.
type Overlay = HashMap<String, Option<KeyValue>>;

fn current<'a>(state: &'a State, overlay: &'a Overlay, key: &str) -> Option<&'a KeyValue> {
    match overlay.get(key) {
        Some(v) => v.as_ref(),
        None => state.map.get(key),
    }
}

/// Checks and stages one transaction on top of the batch so far. Returns its events, or `None` on conflict.
fn stage(state: &State, overlay: &mut Overlay, revision: u64, txn: Txn) -> Option<Vec<Event>> {
    for Compare::ModRevision(key, want) in &txn.compares {
        let have = current(state, overlay, key)
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        if have != *want {
            return None;
        }
    }
    let mut events = Vec::new();
    let mut deleted: Vec<String> = txn.deletes;
    for prefix in &txn.delete_prefixes {
        deleted.extend(
            state
                .map
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| k.clone()),
        );
        deleted.extend(
            overlay
                .iter()
                .filter(|(k, v)| v.is_some() && k.starts_with(prefix))
                .map(|(k, _)| k.clone()),
        );
    }
    for key in deleted {
        if current(state, overlay, &key).is_some() {
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
            overlay.insert(key, None);
        }
    }
    for (key, value) in txn.puts {
        let create_revision = current(state, overlay, &key)
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
        overlay.insert(key, Some(kv));
    }
    Some(events)
}

fn persist(db: &Database, overlay: &Overlay, revision: u64) -> Result<(), StoreError> {
    let w = db.begin_write()?;
    {
        let mut kv = w.open_table(KV)?;
        for (key, value) in overlay {
            match value {
                Some(v) => {
                    kv.insert(key.as_str(), encode(v).as_slice())?;
                }
                None => {
                    kv.remove(key.as_str())?;
                }
            }
        }
        w.open_table(META)?.insert(REVISION, revision)?;
    }
    w.commit()?;
    Ok(())
}

fn write_loop(db: Database, shared: Arc<Shared>, queue: mpsc::Receiver<(Txn, Reply)>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut overlay = Overlay::new();
        let mut results = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let mut revision = shared.state.read().map(|s| s.revision).unwrap_or(0);
        {
            let state = match shared.state.read() {
                Ok(s) => s,
                Err(_) => return,
            };
            for (txn, reply) in batch {
                let noop =
                    txn.puts.is_empty() && txn.deletes.is_empty() && txn.delete_prefixes.is_empty();
                match stage(&state, &mut overlay, revision + 1, txn) {
                    None => results.push((reply, TxnOutcome::Conflict)),
                    Some(_) if noop => results.push((reply, TxnOutcome::Committed { revision })),
                    Some(evs) => {
                        revision += 1;
                        events.extend(evs);
                        results.push((reply, TxnOutcome::Committed { revision }));
                    }
                }
            }
        }
        if !overlay.is_empty() {
            if let Err(e) = persist(&db, &overlay, revision) {
                tracing::error!(error = %e, "store commit failed");
                for (reply, _) in results {
                    let _ = reply.send(Err(StoreError::Storage(e.to_string())));
                }
                continue;
            }
            // Hub first, then state: a watcher registers under the hub lock and sees either both or neither.
            let Ok(mut hub) = shared.hub.lock() else {
                return;
            };
            let Ok(mut state) = shared.state.write() else {
                return;
            };
            for (key, value) in overlay {
                match value {
                    Some(v) => state.map.insert(key, v),
                    None => state.map.remove(&key),
                };
            }
            state.revision = revision;
            drop(state);
            for e in events {
                hub.publish(e);
            }
        }
        for (reply, outcome) in results {
            let _ = reply.send(Ok(outcome));
        }
    }
}

impl Store for RedbStore {
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
