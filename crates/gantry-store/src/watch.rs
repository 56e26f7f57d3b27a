//! Change notification: a bounded history of recent events for catching up, then a broadcast of new ones.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{Event, Observer, StoreError};

/// How many recent events are kept for watchers that start from an older revision.
const HISTORY: usize = 1024;

pub(crate) struct Hub {
    history: VecDeque<Arc<Event>>,
    sender: broadcast::Sender<Arc<Event>>,
    observers: Vec<(String, Observer)>,
}

impl Hub {
    pub(crate) fn new() -> Hub {
        let (sender, _) = broadcast::channel(HISTORY);
        Hub {
            history: VecDeque::with_capacity(64),
            sender,
            observers: Vec::new(),
        }
    }

    pub(crate) fn observe(&mut self, prefix: &str, observer: Observer) {
        self.observers.push((prefix.to_string(), observer));
    }

    /// Tells observers (once each, with the events under their prefix) and watchers about committed events.
    pub(crate) fn publish(&mut self, events: Vec<Event>) {
        for (prefix, observer) in &self.observers {
            let matching: Vec<&Event> = events
                .iter()
                .filter(|e| e.kv.key.starts_with(prefix.as_str()))
                .collect();
            if !matching.is_empty() {
                observer(&matching);
            }
        }
        for event in events {
            let event = Arc::new(event);
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(event.clone());
            let _ = self.sender.send(event);
        }
    }

    /// A watcher that first replays kept events after `from_revision`. `current` is the store's revision.
    pub(crate) fn watch(
        &self,
        prefix: &str,
        from_revision: u64,
        current: u64,
    ) -> Result<Watcher, StoreError> {
        let oldest_kept = self
            .history
            .front()
            .map(|e| e.kv.mod_revision)
            .unwrap_or(current + 1);
        if from_revision < current && from_revision + 1 < oldest_kept {
            return Err(StoreError::Compacted(from_revision));
        }
        let backlog: VecDeque<Arc<Event>> = self
            .history
            .iter()
            .filter(|e| e.kv.mod_revision > from_revision && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        Ok(Watcher {
            prefix: prefix.to_string(),
            backlog,
            receiver: self.sender.subscribe(),
            last: from_revision,
            start: from_revision,
        })
    }
}

/// A stream of changes under one prefix. The hub is only used under the store's lock, so the history snapshot and
/// the subscription are taken at the same point and no event is seen twice or missed.
pub struct Watcher {
    prefix: String,
    backlog: VecDeque<Arc<Event>>,
    receiver: broadcast::Receiver<Arc<Event>>,
    last: u64,
    /// Events at or before this revision were already visible to the caller when it started watching.
    start: u64,
}

impl Watcher {
    /// The next change, in revision order. `Err(Compacted)` when this watcher fell too far behind.
    pub async fn next(&mut self) -> Result<Arc<Event>, StoreError> {
        loop {
            let event = match self.backlog.pop_front() {
                Some(e) => e,
                None => match self.receiver.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Err(StoreError::Compacted(self.last))
                    }
                    Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Closed),
                },
            };
            if event.kv.mod_revision <= self.start || !event.kv.key.starts_with(&self.prefix) {
                continue;
            }
            self.last = event.kv.mod_revision;
            return Ok(event);
        }
    }
}
