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
    /// Heap allocations per batch once a repeating sequence has settled
    /// (section `growth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_allocations_per_batch: Option<f64>,
    /// Heap bytes held after the calm batches that follow a spike
    /// (section `growth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_bytes_after_calm: Option<f64>,
    /// Of the memory given back after the calm, the bytes given back
    /// lazily and kept mapped for reuse (`MADV_FREE`: the kernel's to take
    /// when it needs memory; counted in the process's resident set until
    /// then), not in `held_bytes_after_calm` (section `growth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_bytes_after_calm: Option<f64>,
    /// Whether the subject's arena got huge pages (section `huge_pages`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub huge_pages_granted: Option<bool>,
    /// The store file's size in bytes (section `store_compressed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<f64>,
    /// The store file's bytes per workflow (section `store_compressed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_workflow: Option<f64>,
}

impl Row {
    /// A row with its time (`ops` 0 for a row that carries only fields)
    /// and none of the optional fields measured: the sections set those
    /// they measure.
    pub fn new(
        section: &str,
        case: &str,
        subject: &str,
        ns_per_op: f64,
        ticks_per_op: Option<f64>,
        ops: u64,
    ) -> Row {
        Row {
            section: section.to_string(),
            case: case.to_string(),
            subject: subject.to_string(),
            ns_per_op,
            ticks_per_op,
            ops,
            allocations_per_op: None,
            heap_bytes_per_op: None,
            steady_allocations_per_batch: None,
            held_bytes_after_calm: None,
            retained_bytes_after_calm: None,
            huge_pages_granted: None,
            file_bytes: None,
            bytes_per_workflow: None,
        }
    }

    /// Whether the row carries a time (size rows carry only fields).
    pub fn is_timed(&self) -> bool {
        self.ops > 0
    }
}

/// A measured field of a row other than its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`Row::steady_allocations_per_batch`].
    SteadyAllocationsPerBatch,
    /// [`Row::held_bytes_after_calm`].
    HeldBytesAfterCalm,
    /// [`Row::bytes_per_workflow`].
    BytesPerWorkflow,
}

impl Field {
    /// The field's name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::SteadyAllocationsPerBatch => "steady_allocations_per_batch",
            Field::HeldBytesAfterCalm => "held_bytes_after_calm",
            Field::BytesPerWorkflow => "bytes_per_workflow",
        }
    }

    /// The field's value in `row`, if measured.
    pub fn of(self, row: &Row) -> Option<f64> {
        match self {
            Field::SteadyAllocationsPerBatch => row.steady_allocations_per_batch,
            Field::HeldBytesAfterCalm => row.held_bytes_after_calm,
            Field::BytesPerWorkflow => row.bytes_per_workflow,
        }
    }
}
