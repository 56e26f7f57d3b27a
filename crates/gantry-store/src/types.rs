use std::sync::Arc;

/// A stored value with the revisions of its creation and last modification.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Arc<[u8]>,
    pub create_revision: u64,
    pub mod_revision: u64,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Compare {
    /// The key's `mod_revision` equals this; 0 means the key must not exist.
    ModRevision(String, u64),
}

impl Compare {
    pub fn absent(key: impl Into<String>) -> Compare {
        Compare::ModRevision(key.into(), 0)
    }

    pub fn unchanged(kv: &KeyValue) -> Compare {
        Compare::ModRevision(kv.key.clone(), kv.mod_revision)
    }
}

/// Compares, then puts and deletes, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub puts: Vec<(String, Vec<u8>)>,
    pub deletes: Vec<String>,
    /// Every key under these prefixes is deleted.
    pub delete_prefixes: Vec<String>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn compare(mut self, c: Compare) -> Txn {
        self.compares.push(c);
        self
    }

    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Txn {
        self.puts.push((key.into(), value));
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Txn {
        self.deletes.push(key.into());
        self
    }

    pub fn delete_prefix(mut self, prefix: impl Into<String>) -> Txn {
        self.delete_prefixes.push(prefix.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    Committed {
        revision: u64,
    },
    /// A compare failed; nothing was written.
    Conflict,
}

impl TxnOutcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as `watch` reports it. For a delete, `kv.value` is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
}
