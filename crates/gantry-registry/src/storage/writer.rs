//! Writing a request body into a staged file on a blocking thread. The async side only receives the body and
//! passes it on in pieces of `BATCH` bytes (a hand-over per network chunk cost more in thread wake-ups than the
//! writing); the thread hashes and writes them, and asks the kernel to start writing them back to disk as it goes,
//! so that the sync acknowledging an upload waits for its last few MiB rather than the whole blob, and the disk
//! works while the network does.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use tokio::sync::mpsc;

use crate::errors::{RegistryError, Result};

/// Received chunks are gathered into pieces of this size before they are handed to the writing thread.
const BATCH: usize = 512 << 10;
/// Pieces handed over and not yet written, at most.
const QUEUED: usize = 4;
/// Writeback is started after this many new bytes.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// An upload's staged file, positioned at its end, and the hash of everything in it.
pub struct Staged {
    pub file: File,
    pub hasher: Sha256,
}

enum Message {
    Chunk(Bytes),
    /// The whole body arrived; a sender dropped without it means the body failed.
    End,
}

impl Staged {
    /// An empty staged file, created (never an existing one).
    pub fn create(path: &Path) -> io::Result<Staged> {
        let file = File::options().write(true).create_new(true).open(path)?;
        Ok(Staged {
            file,
            hasher: Sha256::new(),
        })
    }

    /// Reopens a staged file after a restart: cut back to `size` (what a crash may have added was never
    /// acknowledged) and hashed again. An error when the file is shorter than `size`.
    pub fn reopen(path: &Path, size: u64) -> io::Result<Staged> {
        let mut hasher = Sha256::new();
        let mut reader = File::open(path)?.take(size);
        let read = io::copy(&mut reader, &mut hasher)?;
        if read != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the staged upload is shorter than recorded",
            ));
        }
        let mut staged = Staged {
            file: File::options().write(true).open(path)?,
            hasher,
        };
        staged.cut_back(size)?;
        Ok(staged)
    }

    /// Cuts the file back to `size` bytes, positioned at its end (the hash is the caller's to restore).
    pub fn cut_back(&mut self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.file.seek(io::SeekFrom::Start(size))?;
        Ok(())
    }
}

/// Appends `body` to the staged file, `sync`ing the data when it all arrived. Returns the staged file back, with
/// the bytes written or why not; on an error the file may hold part of the body (the caller cuts it back).
/// `None` when the writing thread was lost (a panic): the staged file is then to be reopened.
pub async fn append<S, E>(staged: Staged, mut body: S, sync: bool) -> Option<(Staged, Result<u64>)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (tx, rx) = mpsc::channel(QUEUED);
    let writer = tokio::task::spawn_blocking(move || write(staged, rx, sync));
    let mut received = Ok(());
    let mut batch = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let piece = match chunk {
            Ok(chunk) if batch.is_empty() && chunk.len() >= BATCH => chunk,
            Ok(chunk) => {
                batch.extend_from_slice(&chunk);
                if batch.len() < BATCH {
                    continue;
                }
                std::mem::take(&mut batch).freeze()
            }
            Err(e) => {
                received = Err(RegistryError::BlobUploadInvalid(format!(
                    "reading the body: {e}"
                )));
                break;
            }
        };
        if tx.send(Message::Chunk(piece)).await.is_err() {
            break; // The writer failed: its error says why.
        }
    }
    if received.is_ok() {
        if !batch.is_empty() {
            let _ = tx.send(Message::Chunk(batch.freeze())).await;
        }
        let _ = tx.send(Message::End).await;
    }
    drop(tx);
    let (staged, written) = writer.await.ok()?;
    let outcome = match (received, written) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(n)) => Ok(n),
    };
    Some((staged, outcome))
}

/// The writing thread: everything received until `End`, then the sync.
fn write(
    mut staged: Staged,
    mut rx: mpsc::Receiver<Message>,
    sync: bool,
) -> (Staged, io::Result<u64>) {
    let mut written = 0u64;
    let mut writeback = Writeback::new(&staged.file);
    let result = loop {
        match rx.blocking_recv() {
            Some(Message::Chunk(piece)) => {
                staged.hasher.update(&piece);
                if let Err(e) = staged.file.write_all(&piece) {
                    break Err(e);
                }
                written += piece.len() as u64;
                writeback.wrote(&staged.file, written);
            }
            Some(Message::End) if sync => break staged.file.sync_data().map(|()| written),
            Some(Message::End) => break Ok(written),
            None => {
                break Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the body ended early",
                ))
            }
        }
    };
    (staged, result)
}

/// Starts the kernel's writeback of what was written so far, every `WRITEBACK_EVERY` bytes, without waiting for
/// it (the sync at the end does). Linux only; elsewhere the final sync does it all.
struct Writeback {
    /// Where this body started in the file, and how much of it writeback was started for.
    start: u64,
    started: u64,
}

impl Writeback {
    fn new(file: &File) -> Writeback {
        let start = file.metadata().map_or(0, |m| m.len());
        Writeback { start, started: 0 }
    }

    fn wrote(&mut self, file: &File, written: u64) {
        if written - self.started < WRITEBACK_EVERY {
            return;
        }
        start_writeback(file, self.start + self.started, written - self.started);
        self.started = written;
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a file descriptor `file` keeps open; it touches no memory of ours. Its error,
    // if any, is not ours to handle here: it only starts writeback, and the final sync reports what failed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn body(
        parts: Vec<std::result::Result<Bytes, String>>,
    ) -> impl Stream<Item = std::result::Result<Bytes, String>> + Unpin {
        stream::iter(parts)
    }

    fn temp_file() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("gantry-writer-{}", uuid::Uuid::new_v4()))
    }

    #[tokio::test]
    async fn writes_hashes_and_reports_a_failed_body() {
        let path = temp_file();
        let staged = Staged::create(&path).unwrap();
        // Small chunks gathered, large ones passed through, more than one writeback interval.
        let big = Bytes::from(vec![7u8; (WRITEBACK_EVERY + 3) as usize]);
        let parts = vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(big.clone()),
            Ok(Bytes::from_static(b"c")),
        ];
        let (staged, n) = append(staged, body(parts), true).await.unwrap();
        let expected = [&b"ab"[..], &big, b"c"].concat();
        assert_eq!(n.unwrap(), expected.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(
            staged.hasher.clone().finalize()[..],
            Sha256::digest(&expected)[..]
        );

        let parts = vec![
            Ok(Bytes::from_static(b"more")),
            Err("connection reset".to_string()),
        ];
        let (mut staged, n) = append(staged, body(parts), true).await.unwrap();
        assert!(
            matches!(n, Err(RegistryError::BlobUploadInvalid(m)) if m.contains("connection reset"))
        );
        staged.cut_back(expected.len() as u64).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);

        // Reopened: the hash is that of the kept bytes; a file shorter than its record is refused.
        let reopened = Staged::reopen(&path, 2).unwrap();
        assert_eq!(reopened.hasher.finalize()[..], Sha256::digest(b"ab")[..]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2);
        assert!(Staged::reopen(&path, 3).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
