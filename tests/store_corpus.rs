//! Replays the fuzz corpus (`fuzz/corpus/store`) through the store reader:
//! every file must be handled without a panic, and the corpus's valid
//! stores must verify.

use std::path::Path;

#[test]
fn the_fuzz_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store");
    let mut files = 0;
    let mut clean = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if knhk_tests::exercise_store(&bytes) {
            clean += 1;
        }
        files += 1;
    }
    assert!(files >= 8, "the corpus has its seed files ({files} found)");
    assert!(clean >= 3, "the valid seed stores verify ({clean} clean)");
}

/// A seed file of the corpus, which `KNHK_WRITE_SEEDS=1` (re)writes.
fn read_seed(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (KNHK_WRITE_SEEDS=1 writes it)"))
}

/// The compressed seeds (format version 4), and whether each is a clean
/// store. Written by `KNHK_WRITE_SEEDS=1 cargo test -p knhk-tests --test
/// store_corpus`; the fuzzer grows the corpus from them.
const COMPRESSED_SEEDS: [(&str, bool); 8] = [
    ("v4-eight-dict", true),
    ("v4-four-no-dict", true),
    ("v4-empty", true),
    ("v4-one-empty-payload", true),
    ("v4-dictionary-flipped", false),
    ("v4-raw-dictionary", false),
    ("v4-bomb", false),
    ("v4-claims-more", false),
];

#[test]
fn the_corpus_has_compressed_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store");
    if std::env::var_os("KNHK_WRITE_SEEDS").is_some() {
        write_compressed_seeds(&dir);
    }
    for (name, clean) in COMPRESSED_SEEDS {
        let bytes = read_seed(&dir, name);
        let store = knhk_core::store::StoreView::parse(&bytes).unwrap();
        assert!(store.is_compressed(), "{name}");
        assert_eq!(knhk_tests::exercise_store(&bytes), clean, "{name}");
    }
}

fn write_compressed_seeds(dir: &Path) {
    use knhk_core::store::StoreWriter;
    use knhk_core::WorkflowSpecId;
    use knhk_workflow_engine::store::{Compression, GrowingIndex, IoSink, WorkflowStoreWriter};

    let id = |n: u8| WorkflowSpecId::from_bytes([n; 16]);
    // Written elsewhere and copied in: the writer's temporary file would
    // come and go under the replay test running alongside.
    let scratch = std::env::temp_dir().join(format!("knhk-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let write = |name: &str, dictionary: bool, workflows: &[Vec<u8>]| {
        let mut compression = Compression::default();
        compression.dictionary = dictionary;
        compression.dictionary_size = 256;
        let path = scratch.join(name);
        let mut writer = WorkflowStoreWriter::create_compressed(&path, compression).unwrap();
        for (n, data) in workflows.iter().enumerate() {
            writer.add(id(n as u8 + 1), data).unwrap();
        }
        writer.finish().unwrap();
        let file = std::fs::read(&path).unwrap();
        std::fs::write(dir.join(name), &file).unwrap();
        file
    };
    let task = |n: usize| format!("<urn:knhk:task:{n}> a yawl:Task ; yawl:join yawl:XOR .");
    let eight: Vec<_> = (0..8).map(|n| task(n).into_bytes()).collect();
    let with_dictionary = write("v4-eight-dict", true, &eight);
    write("v4-four-no-dict", false, &eight[..4]);
    write("v4-empty", true, &[]);
    write(
        "v4-one-empty-payload",
        false,
        &[Vec::new(), eight[0].clone()],
    );

    // The dictionary damaged: it comes right after the header entry.
    let mut flipped = with_dictionary;
    let dictionary = knhk_core::store::layout::HEADER_SIZE + knhk_core::store::layout::FRAME;
    flipped[dictionary + 40] ^= 0x01;
    std::fs::write(dir.join("v4-dictionary-flipped"), flipped).unwrap();

    // Built by hand, with what knhk-core's writer records as given.
    let by_hand = |name: &str, dictionary: Option<&[u8]>, len: usize, frame: &[u8]| {
        let mut file = Vec::new();
        let mut writer =
            StoreWriter::new_compressed(IoSink(&mut file), GrowingIndex::new(), dictionary, 3)
                .unwrap();
        writer.add_compressed(id(1), len, frame).unwrap();
        writer.finish().unwrap();
        std::fs::write(dir.join(name), file).unwrap();
    };
    // One RLE block of 128 KiB of zeros (RFC 8878): a frame of 10 bytes.
    let zeros = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3, 0x03, 0x00, 0x10, 0x00];
    by_hand(
        "v4-raw-dictionary",
        Some(b"plain text, not a dictionary"),
        1 << 17,
        &zeros,
    );
    by_hand("v4-bomb", None, 16, &zeros);
    by_hand("v4-claims-more", None, 1 << 20, &zeros);
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// Archived stores (flag 4): one uncompressed, one compressed (frames the
/// core takes as given), each clean. Written as the compressed seeds are.
const ARCHIVED_SEEDS: [&str; 2] = ["v3-archived", "v4-archived-no-dict"];

#[test]
fn the_corpus_has_archived_seeds() {
    use knhk_core::store::layout::{self, ArchiveFormat};
    use knhk_core::store::StoreWriter;
    use knhk_core::WorkflowSpecId;
    use knhk_workflow_engine::store::{GrowingIndex, IoSink};

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store");
    if std::env::var_os("KNHK_WRITE_SEEDS").is_some() {
        let format = ArchiveFormat {
            major: 0,
            minor: 8,
            big_endian: false,
            pointer_width: 4,
            aligned: true,
        };
        let mut file = Vec::new();
        let mut writer =
            StoreWriter::new_archived(IoSink(&mut file), GrowingIndex::new(), format).unwrap();
        for n in 1..4_u8 {
            let k = layout::archive_prefix(writer.next_data_offset());
            let mut entry = vec![0; usize::from(k)];
            entry[0] = k;
            entry.extend_from_slice(&[n; 12]);
            writer
                .add(WorkflowSpecId::from_bytes([n; 16]), &entry)
                .unwrap();
        }
        writer.finish().unwrap();
        std::fs::write(dir.join(ARCHIVED_SEEDS[0]), file).unwrap();
        // A stored (level 0 style) zstd frame of the 16-byte prefix and an
        // 8-byte archive: a raw block (RFC 8878).
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00];
        frame.extend_from_slice(&[(24 << 3) | 1, 0, 0]);
        frame.push(16);
        frame.extend_from_slice(&[0; 15]);
        frame.extend_from_slice(&[7; 8]);
        let mut file = Vec::new();
        let mut writer = StoreWriter::new_compressed_archived(
            IoSink(&mut file),
            GrowingIndex::new(),
            None,
            3,
            format,
        )
        .unwrap();
        writer
            .add_compressed(WorkflowSpecId::from_bytes([9; 16]), 24, &frame)
            .unwrap();
        writer.finish().unwrap();
        std::fs::write(dir.join(ARCHIVED_SEEDS[1]), file).unwrap();
    }
    for name in ARCHIVED_SEEDS {
        let bytes = read_seed(&dir, name);
        let store = knhk_core::store::StoreView::parse(&bytes).unwrap();
        assert!(store.archive_format().is_some(), "{name}");
        assert!(knhk_tests::exercise_store(&bytes), "{name}");
    }
}

/// Stores with aligned frames (flag 8): one clean, with workflows whose
/// frames land at every offset within a line (so padding of every size),
/// and the same with a byte of one padding frame set, which a reader must
/// refuse as a reserved id where a workflow should be. Written as the
/// compressed seeds are.
const ALIGNED_SEEDS: [(&str, bool); 2] = [("v3-aligned", true), ("v3-aligned-pad-damaged", false)];

#[test]
fn the_corpus_has_aligned_seeds() {
    use knhk_core::store::{layout, StoreWriter};
    use knhk_core::WorkflowSpecId;
    use knhk_workflow_engine::store::{GrowingIndex, IoSink};

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store");
    if std::env::var_os("KNHK_WRITE_SEEDS").is_some() {
        let mut file = Vec::new();
        let mut writer = StoreWriter::new(IoSink(&mut file), GrowingIndex::new()).unwrap();
        for n in 0..70_u8 {
            writer
                .add(
                    WorkflowSpecId::from_bytes([n; 16]),
                    &vec![n; usize::from(n)],
                )
                .unwrap();
        }
        writer.finish().unwrap();
        std::fs::write(dir.join(ALIGNED_SEEDS[0].0), &file).unwrap();
        // The first padding frame with data gets a 1 in it.
        let mut at = 0;
        loop {
            let len = u64::from_le_bytes(file[at + 16..at + 24].try_into().unwrap()) as usize;
            if file[at..at + 16] == layout::PAD_ID && len > 0 {
                file[at + layout::FRAME] = 1;
                break;
            }
            at += layout::FRAME + len;
        }
        std::fs::write(dir.join(ALIGNED_SEEDS[1].0), &file).unwrap();
    }
    for (name, clean) in ALIGNED_SEEDS {
        let bytes = read_seed(&dir, name);
        let store = knhk_core::store::StoreView::parse(&bytes).unwrap();
        assert!(store.is_aligned(), "{name}");
        assert_eq!(knhk_tests::exercise_store(&bytes), clean, "{name}");
    }
}
