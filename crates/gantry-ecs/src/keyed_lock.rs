//! One async lock per key (a RunTask client token), made on first use and dropped with its last user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(crate) struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds a key's lock; releasing it forgets the key once nobody else waits for it.
pub(crate) struct KeyGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.to_string()).or_default().clone()
        };
        KeyGuard {
            owner: self,
            key: key.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut locks = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: no one waits, and a new user would clone it under this same lock.
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_no_key_kept_after_use() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("a").await;
        // Another key is free.
        drop(locks.lock("b").await);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _g = locks.lock("a").await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
