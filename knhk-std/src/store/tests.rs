//! The store's tests over real files. Miri cannot map files (no mmap
//! shim), so these run natively only; the format's reader over bytes is
//! knhk-core's, which Miri checks.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use knhk_core::store::Version;
use knhk_core::WorkflowSpecId;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("knhk-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn id(n: u8) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes([n; 16])
}

#[test]
fn write_map_and_look_up() {
    let dir = temp_dir("mmap");
    let path = dir.join("w.bin");
    let mut w = WorkflowStoreWriter::create(&path).unwrap();
    for n in 0..200_u8 {
        w.add(id(n), format!("workflow {n}").as_bytes()).unwrap();
    }
    assert!(matches!(
        w.add(id(5), b"again"),
        Err(StorageError::Write {
            source: knhk_core::store::WriteError::DuplicateId { .. },
            ..
        })
    ));
    w.add(id(250), &[0xFF, 0xFE]).unwrap();
    w.finish().unwrap();

    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_eq!(store.len(), 201);
    assert_eq!(store.version(), Version::V3);
    let ids: Vec<_> = (0..=255).map(id).collect();
    let many: Vec<_> = store.get_many(&ids).collect();
    let one: Vec<_> = ids.iter().map(|i| store.try_get(i)).collect();
    assert_eq!(many, one);
    assert_eq!(store.get(&id(7)), Some(&b"workflow 7"[..]));
    assert_eq!(
        store.get_workflow_str(&id(7)).as_deref(),
        Some("workflow 7")
    );
    assert_eq!(store.try_get(&id(251)), Ok(None));
    assert_eq!(store.get(&id(250)), Some(&[0xFF, 0xFE][..]));
    assert!(store.get_workflow_str(&id(250)).is_none(), "not UTF-8");
    assert_eq!(store.list_workflows().len(), 201);
    store.verify().unwrap();
    assert!(
        fs::read_dir(&dir).unwrap().count() == 1,
        "no temporary file left"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_1_files_and_empty_files_open() {
    let dir = temp_dir("v1");
    let path = dir.join("v1.bin");
    let mut bytes = Vec::new();
    for n in 1..=3_u8 {
        bytes.extend_from_slice(&[n; 16]);
        bytes.extend_from_slice(&2_u64.to_le_bytes());
        bytes.extend_from_slice(&[n, n]);
    }
    fs::write(&path, &bytes).unwrap();
    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_eq!((store.version(), store.len()), (Version::V1, 3));
    assert_eq!(store.get_workflow(&id(2)).as_deref(), Some(&[2, 2][..]));
    let many: Vec<_> = store.get_many(&[id(3), id(9)]).collect();
    assert_eq!(many, vec![Ok(Some(&[3, 3][..])), Ok(None)]);
    // A duplicate in a version-1 file is reported at open.
    bytes.extend_from_slice(&[2; 16]);
    bytes.extend_from_slice(&0_u64.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        MmapWorkflowStore::new(&path),
        Err(StorageError::Corrupt {
            source: StoreError::DuplicateId { .. },
            ..
        })
    ));
    fs::write(&path, b"").unwrap();
    assert!(MmapWorkflowStore::new(&path).unwrap().is_empty());
    fs::write(&path, b"short").unwrap();
    let err = MmapWorkflowStore::new(&path).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(matches!(
        MmapWorkflowStore::new(dir.join("missing.bin")),
        Err(StorageError::Io { action: "open", .. })
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_reader_caches_and_reloads_replaced_files() {
    let dir = temp_dir("reader");
    let path = dir.join("w.bin");
    let mut w = WorkflowStoreWriter::create(&path).unwrap();
    w.add(id(1), b"one").unwrap();
    w.finish().unwrap();
    let reader = MmapWorkflowReader::new();
    let first = reader.load(&path).unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &reader.load(dir.join(".").join("w.bin")).unwrap()
    ));
    let mut w = WorkflowStoreWriter::create(&path).unwrap();
    w.add(id(2), b"two").unwrap();
    w.finish().unwrap();
    let second = reader.load(&path).unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    // The old mapping still reads the old file: it was replaced, not
    // rewritten.
    assert_eq!(first.get_workflow(&id(1)).as_deref(), Some(&b"one"[..]));
    assert_eq!(second.get_workflow(&id(2)).as_deref(), Some(&b"two"[..]));
    assert_eq!(reader.cached(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_abandoned_writer_leaves_the_old_file() {
    let dir = temp_dir("abandon");
    let path = dir.join("w.bin");
    let mut w = WorkflowStoreWriter::create(&path).unwrap();
    w.add(id(1), b"old").unwrap();
    w.finish().unwrap();
    let mut w = WorkflowStoreWriter::create(&path).unwrap();
    w.add(id(2), b"new").unwrap();
    drop(w);
    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_eq!(store.list_workflows(), vec![id(1)]);
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "temporary file removed"
    );
    fs::remove_dir_all(&dir).unwrap();
}
