//! Workflow control-flow pattern identifiers.
//!
//! A [`PatternId`] names one of the workflow control-flow patterns the engine
//! executes. It is `#[repr(transparent)]` over `u32`, so a slice of ids has the
//! same layout as a slice of `u32` and the slice kernels can scan it.

use core::fmt;

/// Identifies a workflow control-flow pattern.
///
/// ```
/// use knhk_core::PatternId;
///
/// let id = PatternId(2);
/// assert_eq!(id.0, 2);
/// assert_eq!(id.to_string(), "pattern 2");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PatternId(pub u32);

impl fmt::Debug for PatternId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatternId({})", self.0)
    }
}

impl fmt::Display for PatternId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pattern {}", self.0)
    }
}

impl From<u32> for PatternId {
    fn from(raw: u32) -> Self {
        PatternId(raw)
    }
}
