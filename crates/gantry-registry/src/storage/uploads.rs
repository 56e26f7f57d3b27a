//! Upload sessions: bytes staged in `{registry_dir}/uploads/{uuid}` while their sha256 is computed incrementally.
//! A chunk that fails half-way (a bad range, a dropped connection) is rolled back, so the session stays at its last
//! good size. Sessions live in memory: after a restart their files are removed and clients start their push again.

use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::fs;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

type Shared = Arc<tokio::sync::Mutex<Session>>;

pub struct Uploads {
    dir: PathBuf,
    /// Each session with the repository it belongs to.
    sessions: Mutex<HashMap<Uuid, (String, Shared)>>,
}

/// One upload in progress.
pub struct Session {
    pub id: Uuid,
    /// Set once the session is finished or cancelled; a request that waited for its lock then finds it unknown.
    pub closed: bool,
    size: u64,
    hasher: Sha256,
    file: fs::File,
    path: PathBuf,
}

impl Uploads {
    /// The session table. A panic elsewhere cannot leave it half-updated (each use is one map call), so a poisoned
    /// lock is taken as it is.
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (String, Shared)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions under `{registry_dir}/uploads`; files left by a previous run are removed.
    pub fn open(registry_dir: &Path) -> io::Result<Uploads> {
        let dir = registry_dir.join("uploads");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Uploads {
            dir,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The staging directory (also used for other staged files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts an empty session for `repo`.
    pub async fn start(&self, repo: &str) -> Result<Shared> {
        let id = Uuid::new_v4();
        let path = self.dir.join(id.hyphenated().to_string());
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            id,
            closed: false,
            size: 0,
            hasher: Sha256::new(),
            file,
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

    /// Forgets the session and removes its staged file, if still there.
    pub async fn remove(&self, id: Uuid) {
        let removed = self.sessions().remove(&id);
        if removed.is_some() {
            let _ = fs::remove_file(self.dir.join(id.hyphenated().to_string())).await;
        }
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

    /// Appends a chunk. With `start` (from `Content-Range`), the chunk must begin where the upload stands and, with
    /// `len`, be that long. Returns the new size. On any error the session is left as it was.
    pub async fn append<S, E>(
        &mut self,
        start: Option<u64>,
        len: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(start) = start {
            if start != self.size {
                return Err(RegistryError::RangeNotSatisfiable { size: self.size });
            }
        }
        let saved = self.hasher.clone();
        match self.write_stream(body).await {
            Ok(written) if len.is_none_or(|l| l == written) => {
                self.size += written;
                Ok(self.size)
            }
            outcome => {
                self.hasher = saved;
                self.file.set_len(self.size).await?;
                self.file.seek(io::SeekFrom::Start(self.size)).await?;
                match outcome {
                    Ok(_) => Err(RegistryError::SizeInvalid),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn write_stream<S, E>(&mut self, mut body: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| RegistryError::BlobUploadInvalid(format!("reading the body: {e}")))?;
            self.file.write_all(&chunk).await?;
            self.hasher.update(&chunk);
            written += chunk.len() as u64;
        }
        self.file.flush().await?;
        Ok(written)
    }

    /// The digest of everything received so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
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

    #[tokio::test]
    async fn appends_hashes_and_rolls_back() {
        let dir = std::env::temp_dir().join(format!("gantry-registry-uploads-{}", Uuid::new_v4()));
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
        assert_eq!(s.digest(), Digest::of(b"hello world"));
        assert_eq!(std::fs::read(s.path()).unwrap(), b"hello world");
        let id = s.id;
        drop(s);
        uploads.remove(id).await;
        assert!(std::fs::read_dir(uploads.dir()).unwrap().next().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
