//! A store writer killed mid-way leaves the old file in place, never a torn
//! one; a writer that finishes replaces it whole.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use knhk_workflow_engine::storage::{MmapWorkflowStore, WorkflowStoreWriter};
use knhk_workflow_engine::WorkflowSpecId;

#[test]
fn a_killed_writer_leaves_the_old_store_whole() {
    let dir = std::env::temp_dir().join(format!("knhk-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("workflows.bin");

    let old = WorkflowSpecId::from_bytes([1; 16]);
    let mut writer = WorkflowStoreWriter::create(&path).unwrap();
    writer.add(old, b"the old store").unwrap();
    writer.finish().unwrap();

    // A child starts replacing the store with 20,000 workflows, and is
    // killed (SIGKILL: no cleanup runs) once it is under way.
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-writer-child"))
        .arg(&path)
        .arg("20000")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "started");
    std::thread::sleep(Duration::from_millis(20));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed before finishing");

    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_eq!(store.list_workflows(), vec![old], "still the old store");
    store.verify().unwrap();
    drop(store);

    // A child that runs to the end replaces it with the new store, whole.
    let status = Command::new(env!("CARGO_BIN_EXE_store-writer-child"))
        .arg(&path)
        .arg("500")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_eq!(store.len(), 500);
    assert!(store.get(&old).is_none());
    store.verify().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
