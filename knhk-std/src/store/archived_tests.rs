//! Typed workflows: archived stores written, read back, damaged and
//! forged. The tests over files run natively; the read path over bytes
//! (the core's lookup and prefix, rkyv's validation and unchecked access)
//! runs under Miri too.

use knhk_core::store::layout;
use knhk_core::WorkflowSpecId;
use rkyv::rancor;
use rkyv::{Archive, Deserialize, Serialize};

use super::*;

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
struct Spec {
    name: String,
    tasks: Vec<Task>,
    owner: Option<String>,
    version: u32,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
struct Task {
    id: u32,
    pattern: u8,
    split: Split,
    doc: String,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
enum Split {
    And,
    Xor { predicate: String },
    Or(u16),
}

/// Another type, whose archive is shaped differently.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
struct Other {
    weights: Vec<u64>,
    label: String,
}

fn id(n: u8) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes([n; 16])
}

fn spec(n: u8) -> Spec {
    Spec {
        name: format!("net {n}"),
        tasks: (0..u32::from(n % 5))
            .map(|t| Task {
                id: t,
                pattern: (t % 43) as u8 + 1,
                split: match t % 3 {
                    0 => Split::And,
                    1 => Split::Xor {
                        predicate: format!("/net/var{t} > {n}"),
                    },
                    _ => Split::Or(t as u16),
                },
                doc: "approve the order, then ship it".repeat(usize::from(n % 3)),
            })
            .collect(),
        owner: n.is_multiple_of(2).then(|| format!("team {n}")),
        version: u32::from(n) * 7,
    }
}

/// Deserializes an archived spec back (the round trip's check).
fn back(archived: &ArchivedSpec) -> Spec {
    rkyv::deserialize::<Spec, rancor::Error>(archived).unwrap()
}

/// Writes an archived store at `n` specs over the read path's bytes, with
/// knhk-core's writer, into a buffer aligned as a map is.
fn archived_bytes(n: u8) -> ArchiveBuffer {
    use knhk_core::store::{IndexSlot, StoreView, StoreWriter};
    let mut out = Vec::new();
    let mut slots = vec![IndexSlot::EMPTY; 64];
    let mut writer = StoreWriter::new_archived(
        super::IoSink(&mut out),
        slots.as_mut_slice(),
        archive_format(),
    )
    .unwrap();
    for k in 0..n {
        let archive = rkyv::to_bytes::<rancor::Error>(&spec(k)).unwrap();
        let prefix = layout::archive_prefix(writer.next_data_offset());
        let mut entry = vec![0; usize::from(prefix)];
        entry[0] = prefix;
        entry.extend_from_slice(&archive);
        writer.add(id(k), &entry).unwrap();
    }
    writer.finish().unwrap();
    let mut aligned = ArchiveBuffer::new();
    aligned.extend_from_slice(&out);
    assert!(StoreView::parse(&aligned).is_ok());
    aligned
}

#[test]
fn the_read_path_over_bytes_validates_and_accesses_in_place() {
    use knhk_core::store::StoreView;
    let bytes = archived_bytes(6);
    let store = StoreView::parse(&bytes).unwrap();
    assert_eq!(store.archive_format(), Some(archive_format()));
    store.verify().unwrap();
    for k in 0..6 {
        let archive = store.get_archived(&id(k)).unwrap().unwrap();
        assert_eq!(archive.as_ptr() as usize % layout::ARCHIVE_ALIGN, 0);
        let checked = rkyv::access::<ArchivedSpec, rancor::Error>(archive).unwrap();
        assert_eq!(back(checked), spec(k));
        // SAFETY: `archive` was validated as an `ArchivedSpec` just above,
        // and `bytes` is not changed while it is borrowed.
        let unchecked = unsafe { rkyv::access_unchecked::<ArchivedSpec>(archive) };
        assert_eq!(unchecked.version, spec(k).version);
        // Another type's validation refuses it (or, where the shapes
        // happen to agree, reads only bytes inside the archive).
        let _ = rkyv::access::<ArchivedOther, rancor::Error>(archive);
    }
    // Every single-byte change of a small store: an error somewhere, or a
    // value, never a panic or undefined behaviour.
    let step = if cfg!(miri) { 29 } else { 1 };
    for i in (0..bytes.len()).step_by(step) {
        let mut bad = ArchiveBuffer::new();
        bad.extend_from_slice(&bytes);
        bad[i] ^= 0x55;
        let Ok(store) = StoreView::parse(&bad) else {
            continue;
        };
        for k in 0..6 {
            if let Ok(Some(archive)) = store.get_archived(&id(k)) {
                if let Ok(spec) = rkyv::access::<ArchivedSpec, rancor::Error>(archive) {
                    let _ = spec.tasks.iter().map(|t| t.doc.len()).sum::<usize>();
                }
            }
        }
    }
}

#[test]
fn forged_relative_pointers_and_lengths_are_refused_by_validation() {
    use knhk_core::store::StoreView;
    // Forgeries that keep the file's checksums out of the picture: the
    // archive's bytes are changed where the reader gets them, as a forger
    // who also rewrote the checksums would leave them.
    let bytes = archived_bytes(6);
    let store = StoreView::parse(&bytes).unwrap();
    let archive = store.get_archived(&id(4)).unwrap().unwrap();
    let root = archive.len() - core::mem::size_of::<ArchivedSpec>();
    // `ArchivedSpec` is laid out as declared: `name` (an archived string,
    // 8 bytes), then `tasks` (an archived vec: a 4-byte relative offset
    // and a 4-byte length).
    let tasks = root + 8;
    let forge = |at: usize, value: i32| {
        let mut forged = ArchiveBuffer::new();
        forged.extend_from_slice(archive);
        forged[at..at + 4].copy_from_slice(&value.to_le_bytes());
        rkyv::access::<ArchivedSpec, rancor::Error>(&forged).map(|_| ())
    };
    for offset in [i32::MAX, i32::MIN, 0x4000, -0x4000, 1, -1] {
        assert!(
            forge(tasks, offset).is_err(),
            "a vec pointing {offset:+} bytes away was accepted"
        );
    }
    for len in [i32::MAX, 0x10_0000] {
        assert!(
            forge(tasks + 4, len).is_err(),
            "a vec of {len} tasks was accepted"
        );
    }
    // The untouched archive still validates.
    assert!(rkyv::access::<ArchivedSpec, rancor::Error>(archive).is_ok());
}

#[cfg(not(miri))]
mod files {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("knhk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &std::path::Path, compression: Option<Compression>, n: u8) {
        let mut writer = match compression {
            Some(c) => WorkflowStoreWriter::create_compressed(path, c).unwrap(),
            None => WorkflowStoreWriter::create(path).unwrap(),
        };
        for k in 0..n {
            writer.add_archived(id(k), &spec(k)).unwrap();
        }
        writer.finish().unwrap();
    }

    fn options() -> Vec<(&'static str, Option<Compression>)> {
        let small_dictionary = Compression {
            dictionary_size: 4096,
            sample_bytes: 8 << 10,
            ..Compression::default()
        };
        let plain = Compression {
            dictionary: false,
            ..Compression::default()
        };
        vec![
            ("uncompressed", None),
            ("dictionary", Some(small_dictionary)),
            ("zstd", Some(plain)),
        ]
    }

    #[test]
    fn nested_values_round_trip_in_every_kind_of_store() {
        let dir = temp_dir("archived-round-trip");
        for (name, compression) in options() {
            let path = dir.join(name);
            write(&path, compression, 60);
            let store = MmapWorkflowStore::new(&path).unwrap();
            assert_eq!(store.len(), 60);
            store.verify().unwrap();
            let mut buffer = ArchiveBuffer::new();
            for k in 0..60 {
                let read = store.read_archived_into::<Spec>(&id(k), &mut buffer);
                assert_eq!(back(read.unwrap().unwrap()), spec(k), "{name} {k}");
                if compression.is_none() {
                    let direct = store.get_archived::<Spec>(&id(k)).unwrap().unwrap();
                    assert_eq!(back(direct), spec(k));
                }
            }
            assert!(store
                .read_archived_into::<Spec>(&id(200), &mut buffer)
                .unwrap()
                .is_none());
            if compression.is_none() {
                let typed = store.verify_archived::<Spec>().unwrap();
                for k in 0..60 {
                    assert_eq!(back(typed.get(&id(k)).unwrap()), spec(k));
                }
                assert!(typed.get(&id(200)).is_none());
                assert!(store.get_archived::<Spec>(&id(200)).unwrap().is_none());
            } else {
                assert!(matches!(
                    store.get_archived::<Spec>(&id(1)),
                    Err(StorageError::Archive {
                        source: ArchiveError::Compressed,
                        ..
                    })
                ));
                assert!(matches!(
                    store.verify_archived::<Spec>(),
                    Err(StorageError::Archive {
                        source: ArchiveError::Compressed,
                        ..
                    })
                ));
            }
        }
    }

    #[test]
    fn a_store_holds_one_kind_of_workflow() {
        let dir = temp_dir("archived-kinds");
        let mut writer = WorkflowStoreWriter::create(dir.join("a")).unwrap();
        writer.add_archived(id(1), &spec(1)).unwrap();
        assert!(matches!(
            writer.add(id(2), b"plain"),
            Err(StorageError::Write {
                source: knhk_core::store::WriteError::Archived,
                ..
            })
        ));
        writer.finish().unwrap();
        let mut writer = WorkflowStoreWriter::create(dir.join("b")).unwrap();
        writer.add(id(2), b"plain").unwrap();
        assert!(matches!(
            writer.add_archived(id(1), &spec(1)),
            Err(StorageError::Write {
                source: knhk_core::store::WriteError::NotArchived,
                ..
            })
        ));
        writer.finish().unwrap();
        let plain = MmapWorkflowStore::new(dir.join("b")).unwrap();
        assert!(matches!(
            plain.get_archived::<Spec>(&id(2)),
            Err(StorageError::Archive {
                source: ArchiveError::NotArchived,
                ..
            })
        ));
        // Plain reads of an archived store see the entry's bytes.
        let archived = MmapWorkflowStore::new(dir.join("a")).unwrap();
        assert!(archived.get(&id(1)).is_some());
        assert_eq!(archived.list_workflows(), vec![id(1)]);
    }

    #[test]
    fn another_format_or_another_type_is_refused() {
        let dir = temp_dir("archived-format");
        let path = dir.join("s");
        write(&path, None, 8);
        // Rewrite the format record as 8-byte pointers (checksum fixed).
        let mut bytes = fs::read(&path).unwrap();
        let at = layout::HEADER_SIZE + layout::FRAME;
        let mut other = archive_format();
        other.pointer_width = if other.pointer_width == 8 { 4 } else { 8 };
        bytes[at..at + layout::ARCHIVE_LEN].copy_from_slice(&other.to_bytes());
        let forged = dir.join("forged");
        fs::write(&forged, &bytes).unwrap();
        let store = MmapWorkflowStore::new(&forged).unwrap();
        let err = store.get_archived::<Spec>(&id(1)).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Archive {
                    source: ArchiveError::Format { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("-byte pointers"), "{err}");

        // The right format, the wrong type: validation catches it.
        let store = MmapWorkflowStore::new(&path).unwrap();
        let mut caught = 0;
        for k in 1..8 {
            if store.get_archived::<Other>(&id(k)).is_err() {
                caught += 1;
            }
        }
        assert!(caught > 0, "bytecheck refused none of the mismatched reads");
        assert!(store.verify_archived::<Other>().is_err());
    }

    #[test]
    fn damaged_and_forged_archives_are_errors_never_panics() {
        let dir = temp_dir("archived-damage");
        let path = dir.join("s");
        write(&path, None, 6);
        let good = fs::read(&path).unwrap();
        let damaged = dir.join("damaged");
        let mut unnoticed = 0;
        for i in 0..good.len() {
            for flip in [0x01_u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                fs::write(&damaged, &bad).unwrap();
                let Ok(store) = MmapWorkflowStore::new(&damaged) else {
                    continue;
                };
                let mut buffer = ArchiveBuffer::new();
                for k in 0..6 {
                    let _ = store.get_archived::<Spec>(&id(k));
                    let _ = store.read_archived_into::<Spec>(&id(k), &mut buffer);
                }
                if store.verify_archived::<Spec>().is_ok() {
                    unnoticed += 1;
                }
            }
        }
        // Every byte is covered by a checksum that verify checks.
        assert_eq!(unnoticed, 0);
        // A truncated archive (the entry cut short and its checksums made
        // consistent is a forgery the checksum catches; the prefix alone
        // is checked at lookup).
        for len in (0..good.len()).step_by(7) {
            fs::write(&damaged, &good[..len]).unwrap();
            if let Ok(store) = MmapWorkflowStore::new(&damaged) {
                for k in 0..6 {
                    let _ = store.get_archived::<Spec>(&id(k));
                }
            }
        }
    }
}
