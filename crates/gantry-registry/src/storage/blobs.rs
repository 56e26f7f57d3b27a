//! Content-addressed blob files under `{registry_dir}/blobs/sha256/{ab}/{hex}`. A blob appears only by an atomic
//! rename of a verified, fsynced file, so a crash never leaves a half-visible blob. One copy serves every repository.

use crate::digest::Digest;
use bytes::Bytes;
use futures_util::{stream, Stream};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use tokio::fs;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Blobs under `{registry_dir}/blobs/sha256`.
    pub fn open(registry_dir: &Path) -> io::Result<BlobStore> {
        let root = registry_dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&root)?;
        Ok(BlobStore { root })
    }

    /// Where the blob lives; the digest is validated, so the path stays under the root.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// The blob's size, if it is stored.
    pub async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The open blob and its size, if it is stored.
    pub async fn open_blob(&self, digest: &Digest) -> io::Result<Option<(std::fs::File, u64)>> {
        let path = self.path(digest);
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            Ok::<_, io::Error>((file, len))
        });
        match opened.await.map_err(io::Error::other)? {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a complete, verified file into place as `digest`. When the blob is already stored, the file is just
    /// removed (a second push of a layer costs no fsync and no rename).
    pub async fn commit(&self, staged: &Path, digest: &Digest) -> io::Result<()> {
        let target = self.path(digest);
        if fs::try_exists(&target).await? {
            let _ = fs::remove_file(staged).await;
            return Ok(());
        }
        fs::File::open(staged).await?.sync_all().await?;
        let dir = target
            .parent()
            .expect("blob path has a parent")
            .to_path_buf();
        fs::create_dir_all(&dir).await?;
        // Identical content under an identical name: a concurrent commit of the same blob is harmless.
        fs::rename(staged, &target).await?;
        sync_dir(&dir).await
    }

    /// Stores `bytes` as a blob (for small content such as tests and manifests-as-blobs), through a staged file.
    pub async fn put_bytes(&self, staging_dir: &Path, bytes: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of(bytes);
        let staged = staging_dir.join(format!("put-{}", uuid::Uuid::new_v4()));
        fs::write(&staged, bytes).await?;
        self.commit(&staged, &digest).await?;
        Ok(digest)
    }
}

impl BlobStore {
    /// Every blob file with its size. Files whose names are not digests (nothing we wrote) are left out.
    pub async fn list(&self) -> io::Result<Vec<(Digest, u64)>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || list_blocking(&root))
            .await
            .map_err(io::Error::other)?
    }

    /// Deletes the blob file; its size when it was there.
    pub async fn remove(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let path = self.path(digest);
        let size = match fs::metadata(&path).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match fs::remove_file(&path).await {
            Ok(()) => Ok(Some(size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Bytes read from a blob file per piece of a response body.
const READ_PIECE: u64 = 1 << 20;

/// `len` bytes of an open blob from `start`, read in pieces on the blocking pool (straight into each piece's
/// buffer; a blob shorter than asked ends the stream with an error).
pub fn read_stream(
    file: std::fs::File,
    start: u64,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> {
    stream::try_unfold((file, start, len), |(mut file, at, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let n = left.min(READ_PIECE);
        let (file, piece) = tokio::task::spawn_blocking(move || {
            file.seek(io::SeekFrom::Start(at))?;
            let mut piece = Vec::with_capacity(n as usize);
            (&mut file).take(n).read_to_end(&mut piece)?;
            Ok::<_, io::Error>((file, piece))
        })
        .await
        .map_err(io::Error::other)??;
        if piece.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob is shorter than its size",
            ));
        }
        let read = piece.len() as u64;
        Ok(Some((Bytes::from(piece), (file, at + read, left - read))))
    })
}

fn list_blocking(root: &Path) -> io::Result<Vec<(Digest, u64)>> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root)? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(dir.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|n| Digest::parse(&format!("sha256:{n}")))
            else {
                continue;
            };
            // Removed meanwhile: not listed.
            match entry.metadata() {
                Ok(m) if m.is_file() => out.push((digest, m.len())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Makes a rename durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("gantry-registry-blobs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn commit_is_content_addressed_and_idempotent() {
        let dir = temp_dir();
        let blobs = BlobStore::open(&dir).unwrap();
        let d = blobs.put_bytes(&dir, b"hello").await.unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        let path = blobs.path(&d);
        assert!(path.starts_with(dir.join("blobs/sha256").join(&d.hex()[..2])));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        // A second copy is dropped, the first stays.
        let d2 = blobs.put_bytes(&dir, b"hello").await.unwrap();
        assert_eq!(d, d2);
        assert_eq!(blobs.size(&d).await.unwrap(), Some(5));
        let staged: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .collect();
        assert!(staged.is_empty(), "staged files left behind");
        assert_eq!(blobs.size(&Digest::of(b"other")).await.unwrap(), None);
        assert_eq!(blobs.list().await.unwrap(), vec![(d.clone(), 5)]);
        assert_eq!(blobs.remove(&d).await.unwrap(), Some(5));
        assert_eq!(blobs.remove(&d).await.unwrap(), None);
        assert!(blobs.list().await.unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
