//! Upload sessions: bytes staged in `{registry_dir}/uploads/{uuid}` while their sha256 is computed incrementally.
//! A chunk that fails half-way (a bad range, a dropped connection) is rolled back, so the session stays at its last
//! good size. A resumable session (one whose location a client was given) is recorded in `{uuid}.json` with the
//! size last acknowledged to the client, so it survives a restart, `kill -9` included: on open the staged file is
//! cut back to that size (a chunk the crash cut short was never acknowledged) and, on first use, its hash is
//! recomputed from the file. Anything else found in the directory on open is removed.

use super::writer::{self, Staged};
use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use crate::gc::plan::expired;
use crate::meta::now;
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use tokio::task::spawn_blocking;
use uuid::Uuid;

type Shared = Arc<tokio::sync::Mutex<Session>>;

/// A staged file that belongs to no session is removed by the collector only once it is at least this old, so that
/// one being created right now (a session starting, a record being replaced) is never taken.
const STRAY_MIN_AGE: u64 = 60;

pub struct Uploads {
    dir: PathBuf,
    /// Each session with the repository it belongs to.
    sessions: Mutex<HashMap<Uuid, (String, Shared)>>,
}

/// What `{uuid}.json` holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Record {
    repo: String,
    /// Bytes acknowledged to the client.
    size: u64,
    started_at: u64,
    updated_at: u64,
}

/// One upload in progress.
pub struct Session {
    pub id: Uuid,
    /// Set once the session is finished or cancelled; a request that waited for its lock then finds it unknown.
    pub closed: bool,
    repo: String,
    size: u64,
    started_at: u64,
    /// The last request on it (epoch seconds); the collector expires idle sessions by it.
    updated_at: u64,
    /// Recorded on disk, hence resumable after a restart.
    durable: bool,
    /// The open file and the hash of its `size` bytes; `None` after a restart until the session is used.
    open: Option<Staged>,
    path: PathBuf,
}

/// The session a staged file belongs to: `{uuid}`, `{uuid}.json` or `{uuid}.json.tmp`.
fn owner(file_name: &str) -> Option<Uuid> {
    let base = file_name.split('.').next().unwrap_or(file_name);
    Uuid::parse_str(base).ok()
}

fn record_path(data: &Path) -> PathBuf {
    data.with_extension("json")
}

/// Loads the session recorded in `record` (its data file beside it) and cuts the file back to the acknowledged
/// size. `None` when it cannot be resumed.
fn load(dir: &Path, id: Uuid, record: &Path) -> Option<Session> {
    let rec: Record = serde_json::from_slice(&std::fs::read(record).ok()?).ok()?;
    let path = dir.join(id.hyphenated().to_string());
    let file = std::fs::OpenOptions::new().write(true).open(&path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > rec.size {
        file.set_len(rec.size).ok()?;
    }
    Some(Session {
        id,
        closed: false,
        repo: rec.repo,
        // The file is the truth when it is shorter (written but lost before reaching the disk).
        size: len.min(rec.size),
        started_at: rec.started_at,
        updated_at: rec.updated_at,
        durable: true,
        open: None,
        path,
    })
}

impl Uploads {
    /// The session table. A panic elsewhere cannot leave it half-updated (each use is one map call), so a poisoned
    /// lock is taken as it is.
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (String, Shared)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions under `{registry_dir}/uploads`: the recorded ones of a previous run are resumed, every other file
    /// there is removed.
    pub fn open(registry_dir: &Path) -> io::Result<Uploads> {
        let dir = registry_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        let mut sessions = HashMap::new();
        let names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for name in &names {
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            if let Some(s) = load(&dir, id, &dir.join(name)) {
                let repo = s.repo.clone();
                sessions.insert(id, (repo, Arc::new(tokio::sync::Mutex::new(s))));
            }
        }
        for name in &names {
            if owner(name).is_some_and(|id| sessions.contains_key(&id)) && !name.ends_with(".tmp") {
                continue;
            }
            let path = dir.join(name);
            let removed = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
            }
        }
        Ok(Uploads {
            dir,
            sessions: Mutex::new(sessions),
        })
    }

    /// The staging directory (also used for other staged files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts an empty session for `repo`, not yet recorded (see `Session::make_resumable`).
    pub async fn start(&self, repo: &str) -> Result<Shared> {
        let id = Uuid::new_v4();
        let path = self.dir.join(id.hyphenated().to_string());
        let staged = {
            let path = path.clone();
            spawn_blocking(move || Staged::create(&path))
                .await
                .map_err(io::Error::other)??
        };
        let at = now();
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            id,
            closed: false,
            repo: repo.to_string(),
            size: 0,
            started_at: at,
            updated_at: at,
            durable: false,
            open: Some(staged),
            path,
        }));
        self.sessions()
            .insert(id, (repo.to_string(), session.clone()));
        Ok(session)
    }

    /// The session `id` of `repo`; an id that is malformed, unknown, or belongs to another repository is unknown.
    pub fn get(&self, repo: &str, id: &str) -> Result<Shared> {
        let id = Uuid::parse_str(id).map_err(|_| RegistryError::BlobUploadUnknown)?;
        match self.sessions().get(&id) {
            Some((r, s)) if r == repo => Ok(s.clone()),
            _ => Err(RegistryError::BlobUploadUnknown),
        }
    }

    /// Forgets the session and removes its staged file and record, if still there.
    pub async fn remove(&self, id: Uuid) {
        let removed = self.sessions().remove(&id);
        if removed.is_some() {
            let data = self.dir.join(id.hyphenated().to_string());
            // The record first: a crash in between leaves a stray file, never a record without its data.
            let _ = fs::remove_file(record_path(&data)).await;
            let _ = fs::remove_file(data).await;
        }
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the sessions idle for at least `max_age` seconds at `now`; a session busy with a request is left alone.
    /// Returns how many ended and the bytes they had staged.
    pub async fn expire(&self, now: u64, max_age: u64) -> (u64, u64) {
        let all: Vec<(Uuid, Shared)> = self
            .sessions()
            .iter()
            .map(|(id, (_, s))| (*id, s.clone()))
            .collect();
        let (mut count, mut bytes) = (0, 0);
        for (id, shared) in all {
            let Ok(mut s) = shared.try_lock() else {
                continue;
            };
            if s.closed || !expired(s.updated_at, now, max_age) {
                continue;
            }
            s.closed = true;
            self.remove(id).await;
            count += 1;
            bytes += s.size;
        }
        (count, bytes)
    }

    /// Removes the files of the staging directory that belong to no session and are at least `max_age` seconds
    /// (and `STRAY_MIN_AGE`) old at `now`: leftovers of failed writes. Returns how many and their bytes.
    pub async fn remove_strays(&self, now: u64, max_age: u64) -> io::Result<(u64, u64)> {
        let max_age = max_age.max(STRAY_MIN_AGE);
        let mut entries = fs::read_dir(&self.dir).await?;
        let (mut count, mut bytes) = (0, 0);
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if owner(&name).is_some_and(|id| self.sessions().contains_key(&id)) {
                continue;
            }
            let Ok(m) = entry.metadata().await else {
                continue;
            };
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if !m.is_file() || !expired(modified, now, max_age) {
                continue;
            }
            match fs::remove_file(entry.path()).await {
                Ok(()) => {
                    count += 1;
                    bytes += m.len();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok((count, bytes))
    }
}

impl Session {
    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The staged file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes a request on the session (it is not idle).
    pub fn touch(&mut self) {
        self.updated_at = now();
    }

    /// Records the session on disk so that it survives a restart; from now on every acknowledged chunk is recorded.
    pub async fn make_resumable(&mut self) -> Result<()> {
        self.durable = true;
        self.record(self.size).await
    }

    /// Writes the record with `size` acknowledged, atomically (a crash leaves the old record or the new one).
    async fn record(&self, size: u64) -> Result<()> {
        let rec = Record {
            repo: self.repo.clone(),
            size,
            started_at: self.started_at,
            updated_at: self.updated_at,
        };
        let target = record_path(&self.path);
        let tmp = self.path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).await?;
        f.write_all(&serde_json::to_vec(&rec).map_err(io::Error::other)?)
            .await?;
        f.sync_all().await?;
        fs::rename(&tmp, &target).await?;
        Ok(())
    }

    /// The staged file, reopened (and its hash recomputed) after a restart.
    async fn ready(&mut self) -> Result<&mut Staged> {
        if self.open.is_none() {
            let (path, size) = (self.path.clone(), self.size);
            let staged = spawn_blocking(move || Staged::reopen(&path, size))
                .await
                .map_err(io::Error::other)??;
            self.open = Some(staged);
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    /// Appends a chunk. With `start` (from `Content-Range`), the chunk must begin where the upload stands and, with
    /// `len`, be that long. Returns the new size. On any error the session is left as it was.
    pub async fn append<S, E>(
        &mut self,
        start: Option<u64>,
        len: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.touch();
        if let Some(start) = start {
            if start != self.size {
                return Err(RegistryError::RangeNotSatisfiable { size: self.size });
            }
        }
        let size = self.size;
        // Acknowledged only once the bytes and the record are on disk.
        let durable = self.durable;
        self.ready().await?;
        let staged = self.open.take().expect("made ready above");
        let saved = staged.hasher.clone();
        // A lost writer takes the open file with it: the next use reopens it at the acknowledged size.
        let (mut staged, outcome) = writer::append(staged, body, durable)
            .await
            .ok_or_else(|| io::Error::other("the upload's writer failed"))?;
        let outcome = match outcome {
            Ok(written) if len.is_none_or(|l| l == written) => Ok(size + written),
            Ok(_) => Err(RegistryError::SizeInvalid),
            Err(e) => Err(e),
        };
        let outcome = match outcome {
            // An empty chunk (the PUT that closes most uploads) changes nothing the record says.
            Ok(new_size) if durable && new_size != size => {
                self.record(new_size).await.map(|()| new_size)
            }
            other => other,
        };
        match outcome {
            Ok(new_size) => {
                self.size = new_size;
                self.open = Some(staged);
                Ok(new_size)
            }
            Err(e) => {
                staged.hasher = saved;
                let staged = spawn_blocking(move || staged.cut_back(size).map(|()| staged))
                    .await
                    .map_err(io::Error::other)??;
                self.open = Some(staged);
                Err(e)
            }
        }
    }

    /// The digest of everything received so far.
    pub async fn digest(&mut self) -> Result<Digest> {
        let staged = self.ready().await?;
        Ok(Digest::from_hasher(staged.hasher.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("gantry-registry-uploads-{}", Uuid::new_v4()))
    }

    #[tokio::test]
    async fn appends_hashes_and_rolls_back() {
        let dir = temp_dir();
        let uploads = Uploads::open(&dir).unwrap();
        let s = uploads.start("a/b").await.unwrap();
        let id = s.lock().await.id.to_string();
        assert!(uploads.get("a/c", &id).is_err());
        assert!(uploads.get("a/b", "../../x").is_err());
        let s = uploads.get("a/b", &id).unwrap();
        let mut s = s.lock().await;
        assert_eq!(
            s.append(None, None, chunks(&[b"hel", b"lo"]))
                .await
                .unwrap(),
            5
        );
        // Out of order: refused, nothing changes.
        assert!(matches!(
            s.append(Some(3), None, chunks(&[b"xx"])).await,
            Err(RegistryError::RangeNotSatisfiable { size: 5 })
        ));
        // A length mismatch is rolled back.
        assert!(s
            .append(Some(5), Some(10), chunks(&[b" world"]))
            .await
            .is_err());
        // A failing body is rolled back.
        let failing = stream::iter(vec![
            Ok(Bytes::from_static(b"zz")),
            Err("reset".to_string()),
        ]);
        assert!(s.append(None, None, failing).await.is_err());
        assert_eq!(
            s.append(Some(5), Some(6), chunks(&[b" world"]))
                .await
                .unwrap(),
            11
        );
        assert_eq!(s.digest().await.unwrap(), Digest::of(b"hello world"));
        assert_eq!(std::fs::read(s.path()).unwrap(), b"hello world");
        let id = s.id;
        drop(s);
        uploads.remove(id).await;
        assert!(std::fs::read_dir(uploads.dir()).unwrap().next().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_resumable_session_survives_a_reopen_cut_back_to_its_acknowledged_size() {
        let dir = temp_dir();
        let uploads = Uploads::open(&dir).unwrap();
        let (id, data) = {
            let shared = uploads.start("web").await.unwrap();
            let mut s = shared.lock().await;
            s.make_resumable().await.unwrap();
            s.append(None, None, chunks(&[b"hello"])).await.unwrap();
            (s.id, s.path().to_path_buf())
        };
        // A session never made resumable (a monolithic upload) does not survive.
        let gone = uploads.start("web").await.unwrap().lock().await.id;
        drop(uploads);
        // A crash in the middle of the next chunk: bytes past the acknowledged size, a half-written record.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&data)
            .unwrap()
            .write_all_sync(b" wor");
        std::fs::write(data.with_extension("json.tmp"), b"{").unwrap();
        std::fs::write(dir.join("uploads/put-stray"), b"x").unwrap();

        let uploads = Uploads::open(&dir).unwrap();
        assert_eq!(uploads.len(), 1);
        assert!(uploads.get("web", &gone.to_string()).is_err());
        assert!(uploads.get("other", &id.to_string()).is_err());
        let shared = uploads.get("web", &id.to_string()).unwrap();
        let mut s = shared.lock().await;
        assert_eq!(s.size(), 5);
        assert_eq!(std::fs::read(&data).unwrap(), b"hello");
        assert_eq!(
            s.append(Some(5), None, chunks(&[b" world"])).await.unwrap(),
            11
        );
        assert_eq!(s.digest().await.unwrap(), Digest::of(b"hello world"));
        drop(s);
        let mut left: Vec<String> = std::fs::read_dir(uploads.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec![id.to_string(), format!("{id}.json")]);
        // And again: the second chunk was acknowledged, so it is there after another reopen.
        drop(uploads);
        let uploads = Uploads::open(&dir).unwrap();
        let shared = uploads.get("web", &id.to_string()).unwrap();
        let mut s = shared.lock().await;
        assert_eq!(s.size(), 11);
        assert_eq!(s.digest().await.unwrap(), Digest::of(b"hello world"));
        drop(s);
        uploads.remove(id).await;
        assert!(std::fs::read_dir(uploads.dir()).unwrap().next().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn idle_sessions_and_old_strays_expire() {
        let dir = temp_dir();
        let uploads = Uploads::open(&dir).unwrap();
        let idle = uploads.start("web").await.unwrap();
        idle.lock()
            .await
            .append(None, None, chunks(&[b"abc"]))
            .await
            .unwrap();
        let busy = uploads.start("web").await.unwrap();
        let guard = busy.lock().await;
        std::fs::write(uploads.dir().join("put-stray"), b"xy").unwrap();
        let later = now() + 7200;
        // Not idle long enough yet.
        assert_eq!(uploads.expire(now(), 3600).await, (0, 0));
        assert_eq!(uploads.remove_strays(now(), 0).await.unwrap(), (0, 0));
        // The busy one (a request holds it) stays.
        assert_eq!(uploads.expire(later, 3600).await, (1, 3));
        assert!(idle.lock().await.closed);
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads.remove_strays(later, 3600).await.unwrap(), (1, 2));
        drop(guard);
        assert_eq!(uploads.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    trait WriteAllSync {
        fn write_all_sync(self, bytes: &[u8]);
    }

    impl WriteAllSync for std::fs::File {
        fn write_all_sync(mut self, bytes: &[u8]) {
            std::io::Write::write_all(&mut self, bytes).unwrap();
        }
    }
}
