//! knhk's measurements: the report binary's harness and sections, and the
//! workloads that the criterion benches share with it.
//!
//! Every section measures knhk's implementation and its baselines in the
//! same process, so their ratios compare like with like. Adding a section is
//! a new file in `sections/` and one line in [`sections::ALL`].

pub mod harness;
pub mod heap_count;
pub mod machine;
pub mod output;
pub mod sections;
pub mod targets;
pub mod workloads;
