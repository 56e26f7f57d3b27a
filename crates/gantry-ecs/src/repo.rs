//! Typed reads and writes of JSON values in the store.

use std::sync::Arc;

use gantry_store::{Compare, KeyValue, Store, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;

/// A decoded value with the revision it was read at, for compare-and-swap.
pub struct Versioned<T> {
    pub value: T,
    pub kv: KeyValue,
}

impl<T> Versioned<T> {
    pub fn unchanged(&self) -> Compare {
        Compare::unchanged(&self.kv)
    }
}

pub struct Repo<S> {
    pub store: Arc<S>,
}

impl<S: Store> Repo<S> {
    pub fn decode<T: DeserializeOwned>(kv: KeyValue) -> Option<Versioned<T>> {
        match serde_json::from_slice(&kv.value) {
            Ok(value) => Some(Versioned { value, kv }),
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "undecodable value skipped");
                None
            }
        }
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<Versioned<T>> {
        self.store.get(key).and_then(Self::decode)
    }

    pub fn list<T: DeserializeOwned>(&self, prefix: &str) -> Vec<Versioned<T>> {
        self.store
            .range(prefix)
            .into_iter()
            .filter_map(Self::decode)
            .collect()
    }

    /// Commits `txn`; `false` when a compare failed and the caller should re-read and retry.
    pub async fn commit(&self, txn: Txn) -> Result<bool> {
        Ok(self.store.txn(txn).await?.is_committed())
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    gantry_model::json::to_vec(value)
}
