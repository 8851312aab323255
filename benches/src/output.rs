//! The report's rows, and its JSON and Markdown forms.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::Machine;
pub use crate::row::Row;
use crate::targets::TargetResult;

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Version of this JSON layout.
    pub schema: u32,
    /// What it ran on.
    pub machine: Machine,
    /// Every measurement.
    pub rows: Vec<Row>,
    /// The issues' targets, checked against the rows.
    pub targets: Vec<TargetResult>,
}

impl Report {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report is plain data")
    }

    /// The report as Markdown: per section, one row per case with each
    /// subject's time, each baseline's ratio to knhk, and knhk's ticks.
    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# knhk report\n");
        let _ = writeln!(
            out,
            "{} ({} logical CPUs, {}/{}), {}; features: {}; kernels: {}; ticks: {}{}{}\n",
            m.cpu,
            m.logical_cpus,
            m.os,
            m.arch,
            m.rustc,
            if m.cpu_features.is_empty() {
                "-".to_string()
            } else {
                m.cpu_features.join(", ")
            },
            m.kernel_instruction_set,
            m.tick_source,
            m.ticks_per_ns
                .map_or(String::new(), |t| format!(" at {t:.3} per ns")),
            if m.quick { "; --quick run" } else { "" },
        );
        let mut sections: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !sections.contains(&r.section.as_str()) {
                sections.push(&r.section);
            }
        }
        for section in sections {
            section_table(&mut out, section, &self.rows);
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "## Targets\n");
            let _ = writeln!(out, "| section | goal | measured | met |");
            let _ = writeln!(out, "|---|---|---:|:---:|");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    t.section,
                    t.goal,
                    t.measured.map_or("-".to_string(), |v| format!("{v:.3}")),
                    match t.met {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "not measured",
                    }
                );
            }
            let _ = writeln!(out);
        }
        out
    }
}

fn section_table(out: &mut String, section: &str, rows: &[Row]) {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.section == section).collect();
    let mut cases: Vec<&str> = Vec::new();
    let mut subjects: Vec<&str> = Vec::new();
    for r in &rows {
        if !cases.contains(&r.case.as_str()) {
            cases.push(&r.case);
        }
        if !subjects.contains(&r.subject.as_str()) {
            subjects.push(&r.subject);
        }
    }
    // The first subject of a section is knhk's own; the rest are baselines.
    let primary = subjects[0];
    let find = |case: &str, subject: &str| {
        rows.iter()
            .find(|r| r.case == case && r.subject == subject)
            .copied()
    };
    let _ = writeln!(out, "## {section}\n");
    let mut header = String::from("| case |");
    let mut rule = String::from("|---|");
    for s in &subjects {
        let _ = write!(header, " {s} ns/op |");
        rule.push_str("---:|");
    }
    for s in &subjects[1..] {
        let _ = write!(header, " {s} / {primary} |");
        rule.push_str("---:|");
    }
    let _ = write!(header, " {primary} ticks/op |");
    rule.push_str("---:|");
    let _ = writeln!(out, "{header}\n{rule}");
    for case in cases {
        let mut line = format!("| {case} |");
        for s in &subjects {
            let cell = find(case, s)
                .filter(|r| r.is_timed())
                .map_or("-".to_string(), |r| format_ns(r.ns_per_op));
            let _ = write!(line, " {cell} |");
        }
        let base = find(case, primary)
            .filter(|r| r.is_timed())
            .map(|r| r.ns_per_op);
        for s in &subjects[1..] {
            let cell = match (find(case, s), base) {
                (Some(r), Some(b)) if b > 0.0 && r.is_timed() => {
                    format!("{:.2}x", r.ns_per_op / b)
                }
                _ => "-".to_string(),
            };
            let _ = write!(line, " {cell} |");
        }
        let ticks = find(case, primary)
            .and_then(|r| r.ticks_per_op)
            .map_or("-".to_string(), |t| format!("{t:.2}"));
        let _ = writeln!(out, "{line} {ticks} |");
    }
    let _ = writeln!(out);
    let counted: Vec<&&Row> = rows
        .iter()
        .filter(|r| r.allocations_per_op.is_some())
        .collect();
    if !counted.is_empty() {
        let _ = writeln!(
            out,
            "| case | subject | heap allocations/op | heap bytes/op |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|");
        for r in counted {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.1} |",
                r.case,
                r.subject,
                r.allocations_per_op.unwrap_or(0.0),
                r.heap_bytes_per_op.unwrap_or(0.0)
            );
        }
        let _ = writeln!(out);
    }
    let sized: Vec<&&Row> = rows.iter().filter(|r| r.file_bytes.is_some()).collect();
    if !sized.is_empty() {
        let _ = writeln!(out, "| case | subject | file bytes | bytes per workflow |");
        let _ = writeln!(out, "|---|---|---:|---:|");
        for r in sized {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.1} |",
                r.case,
                r.subject,
                r.file_bytes.unwrap_or(0.0),
                r.bytes_per_workflow.unwrap_or(0.0)
            );
        }
        let _ = writeln!(out);
    }
}

/// Nanoseconds with precision that suits their size.
pub fn format_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.3}")
    } else if ns < 1000.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.0}")
    }
}
