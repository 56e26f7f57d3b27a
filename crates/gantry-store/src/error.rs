#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(String),
    #[error("revision {0} is no longer kept; read the current state and watch from its revision")]
    Compacted(u64),
    #[error("the store is closed")]
    Closed,
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Storage(e.to_string())
    }
}
