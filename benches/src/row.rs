//! One measured row of the report: what the sections record, the targets
//! check and the output prints.

use serde::Serialize;

/// One measured (section, case, subject).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Section name, e.g. `arena`.
    pub section: String,
    /// Case, written `operation/n`.
    pub case: String,
    /// What was measured: `knhk` or a baseline.
    pub subject: String,
    /// Median nanoseconds per operation.
    pub ns_per_op: f64,
    /// Median ticks per operation, where the target has a tick counter.
    pub ticks_per_op: Option<f64>,
    /// Operations timed.
    pub ops: u64,
    /// Heap allocations per operation, where the section counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations_per_op: Option<f64>,
    /// Heap bytes requested per operation, where the section counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_bytes_per_op: Option<f64>,
}
