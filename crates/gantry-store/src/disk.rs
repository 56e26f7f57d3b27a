//! The store's files in its directory: numbered log segments (`wal-{seq}`) of checksummed records, one record per
//! committed batch of transactions, and `snapshot`, the whole map at one revision, from which replay starts.
//!
//! A record is `[payload length u32][crc32 of payload u32][payload]`, little-endian. A record cut short or with a
//! wrong checksum ends a segment: it can only be the last write before a crash, which nobody was told had committed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{KeyValue, StoreError};

pub(crate) const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const LOCK: &str = "lock";
const SNAPSHOT_MAGIC: &[u8] = b"gantry-store-snapshot-1";
/// Entries per snapshot record, so that no record needs much memory to write or read.
const SNAPSHOT_CHUNK: usize = 1024;
/// Larger than any batch the store writes; a length above it is garbage.
const MAX_RECORD: usize = 1 << 30;

/// One key's new state in a batch: `None` is a delete.
pub(crate) type Change = (String, Option<KeyValue>);

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016x}"))
}

/// The segments in `dir` by number.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("wal-")) else {
            continue;
        };
        if let Ok(seq) = u64::from_str_radix(hex, 16) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Takes the directory's lock file: one store per directory, across processes.
pub(crate) fn lock(dir: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))?;
    file.try_lock().map_err(|_| {
        StoreError::Storage(format!("{} is in use by another process", dir.display()))
    })?;
    Ok(file)
}

/// Makes the directory's entries (a new or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) enum Next {
    Record,
    End,
    /// A torn or corrupt record: nothing after it can be trusted.
    Torn,
}

/// Reads the next record's payload into `buf`.
pub(crate) fn next_record(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Next> {
    let mut header = [0u8; 8];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(Next::End);
    }
    if got < header.len() {
        return Ok(Next::Torn);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Ok(Next::Torn);
    }
    buf.resize(len, 0);
    if read_full(r, buf)? < len || crc32fast::hash(buf) != crc {
        return Ok(Next::Torn);
    }
    Ok(Next::Record)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A batch's payload: its last revision, then each change.
pub(crate) fn encode_batch<'a>(
    revision: u64,
    changes: impl Iterator<Item = (&'a str, Option<&'a KeyValue>)>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&revision.to_le_bytes());
    for (key, value) in changes {
        encode_change(key, value, out);
    }
}

fn encode_change(key: &str, value: Option<&KeyValue>, out: &mut Vec<u8>) {
    out.push(value.is_some() as u8);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    if let Some(kv) = value {
        out.extend_from_slice(&kv.create_revision.to_le_bytes());
        out.extend_from_slice(&kv.mod_revision.to_le_bytes());
        out.extend_from_slice(&(kv.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&kv.value);
    }
}

pub(crate) fn decode_batch(payload: &[u8]) -> Option<(u64, Vec<Change>)> {
    let mut p = Cursor(payload);
    let revision = p.u64()?;
    let mut changes = Vec::new();
    while !p.0.is_empty() {
        changes.push(p.change()?);
    }
    Some((revision, changes))
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn change(&mut self) -> Option<Change> {
        let put = match self.take(1)?[0] {
            0 => false,
            1 => true,
            _ => return None,
        };
        let len = self.u32()? as usize;
        let key = std::str::from_utf8(self.take(len)?).ok()?.to_string();
        if !put {
            return Some((key, None));
        }
        let create_revision = self.u64()?;
        let mod_revision = self.u64()?;
        let len = self.u32()? as usize;
        let value: Arc<[u8]> = self.take(len)?.into();
        let kv = KeyValue {
            key: key.clone(),
            value,
            create_revision,
            mod_revision,
        };
        Some((key, Some(kv)))
    }
}

/// Writes the whole map as of `revision`, durably, then makes it the snapshot; replay after it starts at segment
/// `next_seq`.
pub(crate) fn write_snapshot(
    dir: &Path,
    revision: u64,
    next_seq: u64,
    entries: &[KeyValue],
) -> io::Result<()> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut record = Vec::new();
    let mut payload = SNAPSHOT_MAGIC.to_vec();
    payload.extend_from_slice(&revision.to_le_bytes());
    payload.extend_from_slice(&next_seq.to_le_bytes());
    payload.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    frame(&payload, &mut record);
    w.write_all(&record)?;
    for chunk in entries.chunks(SNAPSHOT_CHUNK) {
        payload.clear();
        record.clear();
        for kv in chunk {
            encode_change(&kv.key, Some(kv), &mut payload);
        }
        frame(&payload, &mut record);
        w.write_all(&record)?;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(SNAPSHOT))?;
    sync_dir(dir)
}

/// The snapshot's revision, the first segment to replay after it, and its entries.
pub(crate) fn read_snapshot(dir: &Path) -> Result<Option<(u64, u64, Vec<KeyValue>)>, StoreError> {
    let path = dir.join(SNAPSHOT);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = || StoreError::Storage(format!("corrupt snapshot {}", path.display()));
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    if !matches!(next_record(&mut r, &mut buf)?, Next::Record) {
        return Err(corrupt());
    }
    let mut header = Cursor(buf.strip_prefix(SNAPSHOT_MAGIC).ok_or_else(corrupt)?);
    let (revision, next_seq, count) = match (header.u64(), header.u64(), header.u64()) {
        (Some(r), Some(s), Some(c)) => (r, s, c as usize),
        _ => return Err(corrupt()),
    };
    let mut entries = Vec::with_capacity(count.min(1 << 24));
    loop {
        match next_record(&mut r, &mut buf)? {
            Next::Record => {
                let mut p = Cursor(&buf);
                while !p.0.is_empty() {
                    match p.change() {
                        Some((_, Some(kv))) => entries.push(kv),
                        _ => return Err(corrupt()),
                    }
                }
            }
            Next::End if entries.len() == count => return Ok(Some((revision, next_seq, entries))),
            _ => return Err(corrupt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8], rev: u64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: rev - 1,
            mod_revision: rev,
        }
    }

    #[test]
    fn a_batch_decodes_to_what_was_encoded() {
        let a = kv("/a", b"one", 7);
        let mut payload = Vec::new();
        encode_batch(
            7,
            [("/a", Some(&a)), ("/gone", None)].into_iter(),
            &mut payload,
        );
        let (rev, changes) = decode_batch(&payload).unwrap();
        assert_eq!(rev, 7);
        assert_eq!(
            changes,
            vec![("/a".into(), Some(a)), ("/gone".into(), None)]
        );
        assert!(decode_batch(&payload[..payload.len() - 1]).is_none());
    }

    #[test]
    fn a_cut_or_changed_record_is_torn() {
        let mut bytes = Vec::new();
        frame(b"first", &mut bytes);
        frame(b"second", &mut bytes);
        let mut buf = Vec::new();
        let mut r = &bytes[..bytes.len() - 2];
        assert!(matches!(
            next_record(&mut r, &mut buf).unwrap(),
            Next::Record
        ));
        assert_eq!(buf, b"first");
        assert!(matches!(next_record(&mut r, &mut buf).unwrap(), Next::Torn));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut r = &flipped[13..];
        assert!(matches!(next_record(&mut r, &mut buf).unwrap(), Next::Torn));
        let mut r = &bytes[..];
        for _ in 0..2 {
            assert!(matches!(
                next_record(&mut r, &mut buf).unwrap(),
                Next::Record
            ));
        }
        assert!(matches!(next_record(&mut r, &mut buf).unwrap(), Next::End));
    }

    #[test]
    fn a_snapshot_reads_back_whole() {
        let dir = std::env::temp_dir().join(format!("gantry-disk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(read_snapshot(&dir).unwrap().is_none());
        let entries: Vec<KeyValue> = (0..3000)
            .map(|i| kv(&format!("/k/{i}"), format!("v{i}").as_bytes(), 5))
            .collect();
        write_snapshot(&dir, 42, 3, &entries).unwrap();
        let (rev, seq, read) = read_snapshot(&dir).unwrap().unwrap();
        assert_eq!((rev, seq), (42, 3));
        assert_eq!(read, entries);
        // A snapshot missing its tail is refused, not taken for a smaller map.
        let path = dir.join(SNAPSHOT);
        let len = fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        assert!(read_snapshot(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
