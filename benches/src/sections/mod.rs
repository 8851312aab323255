//! The report's sections. Each is one file with a `SECTION` constant; adding
//! one is a new file and a line in [`ALL`].

use std::io::Write as _;
use std::time::Instant;

use crate::harness::{Config, Measurement};
use crate::output::{format_ns, Row};
use crate::targets::Target;

pub mod alloc_stats;
pub mod allocations;
pub mod arena;
pub mod engine;
pub mod false_sharing;
pub mod growth;
pub mod huge_pages;
pub mod kernels;
pub mod pool;
pub mod registry;
pub mod store;
pub mod store_compressed;
pub mod typed;

/// Every section, in report order.
pub const ALL: &[Section] = &[
    engine::SECTION,
    arena::SECTION,
    growth::SECTION,
    huge_pages::SECTION,
    kernels::SECTION,
    false_sharing::SECTION,
    alloc_stats::SECTION,
    allocations::SECTION,
    registry::SECTION,
    pool::SECTION,
    store::SECTION,
    store_compressed::SECTION,
    typed::SECTION,
];

/// A group of related measurements and the targets they are held to.
pub struct Section {
    /// Name used by `--only` and in the JSON rows.
    pub name: &'static str,
    /// One line on what the section measures.
    pub about: &'static str,
    /// Runs every case, recording rows in the context.
    pub run: fn(&mut Context),
    /// The issues' targets for this section.
    pub targets: &'static [Target],
}

/// What a section records into, with progress on stderr.
pub struct Context {
    /// Measurement settings.
    pub cfg: Config,
    section: &'static str,
    planned: usize,
    done: usize,
    started: Instant,
    /// Rows recorded so far, across sections.
    pub rows: Vec<Row>,
}

impl Context {
    /// A context for a run with `cfg`.
    pub fn new(cfg: Config) -> Context {
        Context {
            cfg,
            section: "",
            planned: 0,
            done: 0,
            started: Instant::now(),
            rows: Vec::new(),
        }
    }

    /// Starts `section`, which will record `planned` rows.
    pub fn begin(&mut self, section: &'static str, planned: usize) {
        self.section = section;
        self.planned = planned;
        self.done = 0;
    }

    /// Records the results of a side-by-side run, in order.
    pub fn record_all(&mut self, case: &str, results: Vec<(&'static str, Measurement)>) {
        for (subject, m) in results {
            self.record(case, subject, m);
        }
    }

    /// Attaches heap counts to the row recorded last for (case, subject).
    pub fn annotate(&mut self, case: &str, subject: &str, allocations: f64, bytes: f64) {
        if let Some(row) = self
            .rows
            .iter_mut()
            .rev()
            .find(|r| r.case == case && r.subject == subject)
        {
            row.allocations_per_op = Some(allocations);
            row.heap_bytes_per_op = Some(bytes);
        }
        eprintln!("           {case} {subject}: {allocations:.2} heap allocations, {bytes:.1} heap bytes per op");
    }

    /// The row recorded last for (case, subject), to attach more figures.
    pub fn row_mut(&mut self, case: &str, subject: &str) -> Option<&mut Row> {
        self.rows
            .iter_mut()
            .rev()
            .find(|r| r.case == case && r.subject == subject)
    }

    /// Records one measurement and reports progress.
    pub fn record(&mut self, case: &str, subject: &str, m: Measurement) {
        let ticks = m
            .ticks_per_op
            .map_or(String::new(), |t| format!(", {t:.2} ticks"));
        self.progress(
            case,
            subject,
            &format!("{:>10} ns/op{ticks}", format_ns(m.ns_per_op)),
        );
        self.push(case, subject, m);
    }

    /// Records a store file's size: a row with no time (`ops` 0).
    pub fn record_size(&mut self, case: &str, subject: &str, file_bytes: u64, workflows: u64) {
        let per = file_bytes as f64 / workflows.max(1) as f64;
        self.progress(
            case,
            subject,
            &format!("{file_bytes} bytes, {per:.1} per workflow"),
        );
        self.push(
            case,
            subject,
            Measurement {
                ns_per_op: 0.0,
                ticks_per_op: None,
                ops: 0,
            },
        );
        if let Some(row) = self.row_mut(case, subject) {
            row.file_bytes = Some(file_bytes as f64);
            row.bytes_per_workflow = Some(per);
        }
    }

    fn progress(&mut self, case: &str, subject: &str, what: &str) {
        self.done += 1;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "[{:6.1}s] {} {:>2}/{:<2} {case:<24} {subject:<16} {what}",
            self.started.elapsed().as_secs_f64(),
            self.section,
            self.done,
            self.planned.max(self.done),
        );
    }

    fn push(&mut self, case: &str, subject: &str, m: Measurement) {
        self.rows.push(Row::new(
            self.section,
            case,
            subject,
            m.ns_per_op,
            m.ticks_per_op,
            m.ops,
        ));
    }
}
