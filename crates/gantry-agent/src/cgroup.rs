//! Task-level cpu and memory as one cgroup over all of a task's containers, as the ECS agent makes them: a parent
//! cgroup `/ecs/<task id>` with the task's limits, which each container's cgroup is made under (Docker's
//! `cgroup-parent`, with the engine's `cgroupfs` driver). Cgroup v1 (the `memory` and `cpu` hierarchies) and v2.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The CFS period the cpu quota is a share of, in microseconds.
const PERIOD_US: i64 = 100_000;

/// The cgroup-parent of a task's containers.
pub fn parent(task_id: &str) -> String {
    format!("/ecs/{task_id}")
}

/// The cpu quota of `cpu` units (1024 a core) per period, never below the kernel's 1 ms.
pub fn quota_us(cpu: i64) -> i64 {
    (cpu * PERIOD_US / 1024).max(1_000)
}

fn unified(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// Makes (or updates) the task's cgroup with its limits; returns the cgroup-parent for its containers.
pub fn create(task_id: &str, cpu: Option<i64>, memory_mib: Option<i64>) -> Result<String, String> {
    create_under(Path::new(ROOT), task_id, cpu, memory_mib)
}

fn write(path: PathBuf, value: String) -> Result<(), String> {
    fs::write(&path, &value).map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))
}

fn create_under(
    root: &Path,
    task_id: &str,
    cpu: Option<i64>,
    memory_mib: Option<i64>,
) -> Result<String, String> {
    let relative = parent(task_id);
    let relative = relative.trim_start_matches('/');
    let mkdir = |dir: PathBuf| {
        fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))
    };
    if unified(root) {
        // The controllers must be on for the children of each level down to the task's.
        let ecs = root.join("ecs");
        mkdir(ecs.clone())?;
        for level in [root.to_path_buf(), ecs] {
            write(level.join("cgroup.subtree_control"), "+memory +cpu".into())?;
        }
        let dir = root.join(relative);
        mkdir(dir.clone())?;
        if let Some(m) = memory_mib {
            write(dir.join("memory.max"), (m * 1024 * 1024).to_string())?;
        }
        if let Some(c) = cpu {
            write(dir.join("cpu.max"), format!("{} {PERIOD_US}", quota_us(c)))?;
        }
    } else {
        if let Some(m) = memory_mib {
            let dir = root.join("memory").join(relative);
            mkdir(dir.clone())?;
            write(
                dir.join("memory.limit_in_bytes"),
                (m * 1024 * 1024).to_string(),
            )?;
        }
        if let Some(c) = cpu {
            let dir = root.join("cpu").join(relative);
            mkdir(dir.clone())?;
            write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            write(dir.join("cpu.cfs_quota_us"), quota_us(c).to_string())?;
        }
    }
    Ok(format!("/{relative}"))
}

/// Removes the task's cgroup once its containers are gone (the engine removes theirs as they stop); one that is
/// gone already is no error.
pub fn remove(task_id: &str) -> Result<(), String> {
    remove_under(Path::new(ROOT), task_id)
}

fn remove_under(root: &Path, task_id: &str) -> Result<(), String> {
    let relative = parent(task_id);
    let relative = relative.trim_start_matches('/');
    let dirs: Vec<PathBuf> = if unified(root) {
        vec![root.join(relative)]
    } else {
        ["memory", "cpu"]
            .iter()
            .map(|c| root.join(c).join(relative))
            .collect()
    };
    for dir in dirs {
        match fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", dir.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas() {
        assert_eq!(quota_us(1024), 100_000);
        assert_eq!(quota_us(256), 25_000);
        assert_eq!(quota_us(4096), 400_000);
        assert_eq!(quota_us(2), 1_000);
    }

    // A directory stands in for the cgroup file system: the files the kernel would have are written like any.
    #[test]
    fn v1_limits_go_to_the_memory_and_cpu_hierarchies() {
        let root = std::env::temp_dir().join(format!("gantry-cgroup-v1-{}", std::process::id()));
        let parent = create_under(&root, "abc", Some(256), Some(512)).unwrap();
        assert_eq!(parent, "/ecs/abc");
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(
            read("memory/ecs/abc/memory.limit_in_bytes"),
            (512 * 1024 * 1024).to_string()
        );
        assert_eq!(read("cpu/ecs/abc/cpu.cfs_quota_us"), "25000");
        // (A real cgroup directory has no files of its own to remove first.)
        for f in [
            "memory/ecs/abc/memory.limit_in_bytes",
            "cpu/ecs/abc/cpu.cfs_quota_us",
            "cpu/ecs/abc/cpu.cfs_period_us",
        ] {
            fs::remove_file(root.join(f)).unwrap();
        }
        remove_under(&root, "abc").unwrap();
        assert!(!root.join("memory/ecs/abc").exists());
        remove_under(&root, "abc").unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v2_turns_the_controllers_on_down_to_the_task() {
        let root = std::env::temp_dir().join(format!("gantry-cgroup-v2-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("cgroup.controllers"), "cpu memory").unwrap();
        create_under(&root, "abc", Some(512), Some(1024)).unwrap();
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+memory +cpu");
        assert_eq!(read("ecs/cgroup.subtree_control"), "+memory +cpu");
        assert_eq!(read("ecs/abc/memory.max"), (1024 * 1024 * 1024).to_string());
        assert_eq!(read("ecs/abc/cpu.max"), "50000 100000");
        fs::remove_dir_all(&root).unwrap();
    }
}
