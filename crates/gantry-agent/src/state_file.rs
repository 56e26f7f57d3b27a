//! The agent's identity on disk: a small JSON file in its data dir with the instance id and the container
//! instance ARN, so that a restarted agent registers as the same container instance and re-adopts its containers.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "agent-state.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentState {
    pub cluster: String,
    pub instance_id: String,
    pub container_instance_arn: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read or write the agent state file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the agent state file {path} is not valid: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The saved state; `None` when the agent never saved one.
pub fn load(data_dir: &Path) -> Result<Option<AgentState>, StateFileError> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateFileError::Invalid { path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateFileError::Io { path, source }),
    }
}

/// Saves the state atomically (write aside, then rename), creating the data dir if needed.
pub fn save(data_dir: &Path, state: &AgentState) -> Result<(), StateFileError> {
    let path = path(data_dir);
    let io_err = |source| StateFileError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io_err)?;
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let bytes = serde_json::to_vec_pretty(state).map_err(|source| StateFileError::Invalid {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&tmp, bytes).map_err(io_err)?;
    std::fs::rename(&tmp, &path).map_err(io_err)?;
    Ok(())
}

/// A fresh EC2-style instance id: `i-` and 17 hex digits.
pub fn new_instance_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("i-{}", &hex[..17])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads() {
        let dir = std::env::temp_dir().join(format!(
            "gantry-agent-state-{}",
            uuid::Uuid::new_v4().simple()
        ));
        assert!(load(&dir).unwrap().is_none());
        let state = AgentState {
            cluster: "default".into(),
            instance_id: new_instance_id(),
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc".into(),
            ),
        };
        save(&dir, &state).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(state));
        std::fs::write(path(&dir), b"{not json").unwrap();
        assert!(matches!(load(&dir), Err(StateFileError::Invalid { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(new_instance_id().len(), 19);
    }
}
