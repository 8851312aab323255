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
