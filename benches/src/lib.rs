//! knhk's measurements: the report binary's harness and sections, and the
//! workloads that the criterion benches share with it.
//!
//! Every section measures knhk's implementation and its baselines in the
//! same process, so their ratios compare like with like. Adding a section is
//! a new file in `sections/` and one line in [`sections::ALL`].

pub mod engine;
pub mod harness;
pub mod heap_count;
pub mod machine;
pub mod native;
pub mod output;
pub mod row;
pub mod sections;
pub mod targets;
pub mod workloads;

/// The part of a cached store file's name that says how it was written:
/// the format version, the writer's bucket load and its frame alignment
/// (how far into a line a frame may start). The report keeps the
/// stores it writes between runs; a writer change gives new names, so a
/// run never measures a file the current writer would not write.
pub fn store_layout_tag() -> String {
    use knhk_core::store::layout::{ALIGNED_AT_MOST, ENTRIES_PER_BUCKET, VERSION};
    format!("v{VERSION}-e{ENTRIES_PER_BUCKET}-a{ALIGNED_AT_MOST}")
}

/// Where the report writes its files: `target/knhk-report` of the
/// workspace (or of `CARGO_TARGET_DIR`).
pub fn report_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("knhk-report")
}
