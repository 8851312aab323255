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
