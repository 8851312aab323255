//! The issues' speed targets, checked against the rows of a run.
//!
//! Targets are reported, never asserted: shared machines are noisy, so a miss
//! is a line in the report to look into, not a failed build.

use serde::Serialize;

use crate::row::{Field, Row};

/// A goal stated over the rows of one section.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// `numerator`'s time per op divided by `denominator`'s, at most `max`.
    RatioAtMost {
        /// Case both subjects were measured in, `operation/n`.
        case: &'static str,
        /// Subject whose time is divided.
        numerator: &'static str,
        /// Subject it is divided by.
        denominator: &'static str,
        /// Largest acceptable ratio.
        max: f64,
    },
    /// As [`Target::RatioAtMost`], but a lower bound.
    RatioAtLeast {
        /// Case both subjects were measured in.
        case: &'static str,
        /// Subject whose time is divided.
        numerator: &'static str,
        /// Subject it is divided by.
        denominator: &'static str,
        /// Smallest acceptable ratio.
        min: f64,
    },
    /// One subject's nanoseconds per operation, at most `max`.
    NsAtMost {
        /// Case.
        case: &'static str,
        /// Subject.
        subject: &'static str,
        /// Largest acceptable nanoseconds per op.
        max: f64,
    },
    /// One subject's ticks per operation, at most `max`.
    TicksAtMost {
        /// Case.
        case: &'static str,
        /// Subject.
        subject: &'static str,
        /// Largest acceptable ticks per op.
        max: f64,
    },
    /// A subject's heap allocations per op, at most `max`.
    AllocationsAtMost {
        /// Case.
        case: &'static str,
        /// Subject.
        subject: &'static str,
        /// Largest acceptable count.
        max: f64,
    },
    /// A subject's time per op in `case` is at most `max` times its time in
    /// `base` (one way of doing a thing against another).
    CaseRatioAtMost {
        /// Subject.
        subject: &'static str,
        /// Case whose time is divided.
        case: &'static str,
        /// Case it is divided by.
        base: &'static str,
        /// Largest acceptable ratio.
        max: f64,
    },
    /// A field of one subject's row, at most `max`.
    FieldAtMost {
        /// Case.
        case: &'static str,
        /// Subject.
        subject: &'static str,
        /// The field.
        field: Field,
        /// Largest acceptable value.
        max: f64,
    },
    /// A field of one subject's row divided by another's, at most `max`.
    FieldRatioAtMost {
        /// Case.
        case: &'static str,
        /// Subject whose value is divided.
        numerator: &'static str,
        /// Subject it is divided by.
        denominator: &'static str,
        /// The field.
        field: Field,
        /// Largest acceptable ratio.
        max: f64,
    },
    /// A subject's time per op grows by at most `max` from one case to another.
    Flat {
        /// Subject.
        subject: &'static str,
        /// Smaller case.
        from: &'static str,
        /// Larger case.
        to: &'static str,
        /// Largest acceptable growth factor.
        max: f64,
    },
}

impl Target {
    /// `numerator / denominator <= max` in `case`.
    pub const fn ratio_at_most(
        case: &'static str,
        numerator: &'static str,
        denominator: &'static str,
        max: f64,
    ) -> Target {
        Target::RatioAtMost {
            case,
            numerator,
            denominator,
            max,
        }
    }
}

/// A target with what was measured for it.
#[derive(Clone, Debug, Serialize)]
pub struct TargetResult {
    /// Section the target belongs to.
    pub section: String,
    /// What the target says.
    pub goal: String,
    /// The measured value, if the rows it needs were measured.
    pub measured: Option<f64>,
    /// Whether the measured value meets the goal.
    pub met: Option<bool>,
}

fn time(rows: &[Row], section: &str, case: &str, subject: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.section == section && r.case == case && r.subject == subject)
        .map(|r| r.ns_per_op)
}

fn ticks(rows: &[Row], section: &str, case: &str, subject: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.section == section && r.case == case && r.subject == subject)
        .and_then(|r| r.ticks_per_op)
}

fn field_of(rows: &[Row], section: &str, case: &str, subject: &str, field: Field) -> Option<f64> {
    rows.iter()
        .find(|r| r.section == section && r.case == case && r.subject == subject)
        .and_then(|r| field.of(r))
}

impl Target {
    /// Evaluates the target over `rows` of `section`.
    pub fn check(&self, section: &str, rows: &[Row]) -> TargetResult {
        let ratio = |case, numerator, denominator| {
            time(rows, section, case, numerator)
                .zip(time(rows, section, case, denominator))
                .map(|(a, b)| a / b)
        };
        // (what the goal says, what was measured, the limit, whether the
        // limit is an upper bound)
        let (goal, measured, limit, upper) = match *self {
            Target::RatioAtMost {
                case,
                numerator,
                denominator,
                max,
            } => (
                format!("{case}: {numerator} / {denominator} <= {max}"),
                ratio(case, numerator, denominator),
                max,
                true,
            ),
            Target::RatioAtLeast {
                case,
                numerator,
                denominator,
                min,
            } => (
                format!("{case}: {numerator} / {denominator} >= {min}"),
                ratio(case, numerator, denominator),
                min,
                false,
            ),
            Target::TicksAtMost { case, subject, max } => (
                format!("{case}: {subject} ticks/op <= {max}"),
                ticks(rows, section, case, subject),
                max,
                true,
            ),
            Target::NsAtMost { case, subject, max } => (
                format!("{case}: {subject} ns/op <= {max}"),
                time(rows, section, case, subject),
                max,
                true,
            ),
            Target::AllocationsAtMost { case, subject, max } => (
                format!("{case}: {subject} heap allocations/op <= {max}"),
                rows.iter()
                    .find(|r| r.section == section && r.case == case && r.subject == subject)
                    .and_then(|r| r.allocations_per_op),
                max,
                true,
            ),
            Target::FieldAtMost {
                case,
                subject,
                field,
                max,
            } => (
                format!("{case}: {subject} {} <= {max}", field.name()),
                field_of(rows, section, case, subject, field),
                max,
                true,
            ),
            Target::FieldRatioAtMost {
                case,
                numerator,
                denominator,
                field,
                max,
            } => (
                format!(
                    "{case}: {numerator} / {denominator} {} <= {max}",
                    field.name()
                ),
                field_of(rows, section, case, numerator, field)
                    .zip(field_of(rows, section, case, denominator, field))
                    .map(|(a, b)| a / b),
                max,
                true,
            ),
            Target::CaseRatioAtMost {
                subject,
                case,
                base,
                max,
            } => (
                format!("{subject}: {case} / {base} <= {max}"),
                time(rows, section, case, subject)
                    .zip(time(rows, section, base, subject))
                    .map(|(a, b)| a / b),
                max,
                true,
            ),
            Target::Flat {
                subject,
                from,
                to,
                max,
            } => (
                format!("{subject}: {to} / {from} <= {max} (flat)"),
                time(rows, section, to, subject)
                    .zip(time(rows, section, from, subject))
                    .map(|(a, b)| a / b),
                max,
                true,
            ),
        };
        TargetResult {
            section: section.to_string(),
            goal,
            measured,
            met: measured.map(|v| if upper { v <= limit } else { v >= limit }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &str, subject: &str, ns: f64) -> Row {
        Row::new("s", case, subject, ns, Some(ns * 3.0), 1)
    }

    #[test]
    fn ratios_and_flatness_are_evaluated() {
        let rows = [
            row("a/1", "knhk", 1.0),
            row("a/1", "base", 4.0),
            row("a/9", "knhk", 1.2),
        ];
        let r = Target::RatioAtMost {
            case: "a/1",
            numerator: "knhk",
            denominator: "base",
            max: 0.5,
        }
        .check("s", &rows);
        assert_eq!((r.measured, r.met), (Some(0.25), Some(true)));
        let r = Target::RatioAtLeast {
            case: "a/1",
            numerator: "base",
            denominator: "knhk",
            min: 5.0,
        }
        .check("s", &rows);
        assert_eq!(r.met, Some(false));
        let r = Target::Flat {
            subject: "knhk",
            from: "a/1",
            to: "a/9",
            max: 1.5,
        }
        .check("s", &rows);
        assert_eq!(r.met, Some(true));
        let r = Target::CaseRatioAtMost {
            subject: "knhk",
            case: "a/9",
            base: "a/1",
            max: 1.1,
        }
        .check("s", &rows);
        assert_eq!((r.measured, r.met), (Some(1.2), Some(false)));
        let r = Target::TicksAtMost {
            case: "a/1",
            subject: "knhk",
            max: 4.0,
        }
        .check("s", &rows);
        assert_eq!(r.met, Some(true));
        let r = Target::TicksAtMost {
            case: "zz/1",
            subject: "knhk",
            max: 4.0,
        }
        .check("s", &rows);
        assert_eq!((r.measured, r.met), (None, None));
    }
}
