//! The 43 workflow control-flow patterns, and [`PatternId`], which names one.
//!
//! The catalogue follows N. Russell, A.H.M. ter Hofstede, W.M.P. van der
//! Aalst and N. Mulyar, "Workflow Control-Flow Patterns: A Revised View"
//! (BPM Center Report BPM-06-22, 2006): patterns 1 to 20 are the original
//! ones, 21 to 43 the ones that report added, numbered in its order and
//! grouped in the categories of the Workflow Patterns Initiative.
//!
//! `PatternId` is `#[repr(transparent)]` over `u32`, so a slice of ids has
//! the layout of a slice of `u32` and the slice kernels scan it directly.

use core::fmt;

/// The group a pattern belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PatternCategory {
    /// Sequence, splits, joins and merges (1-5).
    BasicControlFlow,
    /// Multi-choices, synchronising merges, discriminators, partial joins,
    /// thread splits and merges.
    AdvancedBranchingAndSynchronization,
    /// Several instances of one task.
    MultipleInstance,
    /// Choices and routing that depend on the state of the case.
    StateBased,
    /// Cancelling tasks, regions and cases, and forcing completion.
    CancellationAndForceCompletion,
    /// Cycles, loops and recursion.
    Iteration,
    /// How a case ends.
    Termination,
    /// Triggers from outside the case.
    Trigger,
}

impl fmt::Display for PatternCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternCategory::BasicControlFlow => "basic control-flow",
            PatternCategory::AdvancedBranchingAndSynchronization => {
                "advanced branching and synchronization"
            }
            PatternCategory::MultipleInstance => "multiple instance",
            PatternCategory::StateBased => "state-based",
            PatternCategory::CancellationAndForceCompletion => "cancellation and force completion",
            PatternCategory::Iteration => "iteration",
            PatternCategory::Termination => "termination",
            PatternCategory::Trigger => "trigger",
        })
    }
}

/// One entry of the [`CATALOGUE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PatternInfo {
    /// The pattern's number, 1 to 43.
    pub id: PatternId,
    /// The pattern's name in the 2006 report.
    pub name: &'static str,
    /// Its category.
    pub category: PatternCategory,
}

macro_rules! catalogue {
    ($($n:literal $name:literal $cat:ident,)*) => {
        /// The 43 control-flow patterns, in order: `CATALOGUE[i]` is pattern
        /// `i + 1`.
        pub const CATALOGUE: [PatternInfo; 43] = [
            $(PatternInfo { id: PatternId($n), name: $name, category: PatternCategory::$cat },)*
        ];
    };
}

catalogue! {
    1 "Sequence" BasicControlFlow,
    2 "Parallel Split" BasicControlFlow,
    3 "Synchronization" BasicControlFlow,
    4 "Exclusive Choice" BasicControlFlow,
    5 "Simple Merge" BasicControlFlow,
    6 "Multi-Choice" AdvancedBranchingAndSynchronization,
    7 "Structured Synchronizing Merge" AdvancedBranchingAndSynchronization,
    8 "Multi-Merge" AdvancedBranchingAndSynchronization,
    9 "Structured Discriminator" AdvancedBranchingAndSynchronization,
    10 "Arbitrary Cycles" Iteration,
    11 "Implicit Termination" Termination,
    12 "Multiple Instances without Synchronization" MultipleInstance,
    13 "Multiple Instances with a Priori Design-Time Knowledge" MultipleInstance,
    14 "Multiple Instances with a Priori Run-Time Knowledge" MultipleInstance,
    15 "Multiple Instances without a Priori Run-Time Knowledge" MultipleInstance,
    16 "Deferred Choice" StateBased,
    17 "Interleaved Parallel Routing" StateBased,
    18 "Milestone" StateBased,
    19 "Cancel Task" CancellationAndForceCompletion,
    20 "Cancel Case" CancellationAndForceCompletion,
    21 "Structured Loop" Iteration,
    22 "Recursion" Iteration,
    23 "Transient Trigger" Trigger,
    24 "Persistent Trigger" Trigger,
    25 "Cancel Region" CancellationAndForceCompletion,
    26 "Cancel Multiple Instance Activity" CancellationAndForceCompletion,
    27 "Complete Multiple Instance Activity" CancellationAndForceCompletion,
    28 "Blocking Discriminator" AdvancedBranchingAndSynchronization,
    29 "Cancelling Discriminator" AdvancedBranchingAndSynchronization,
    30 "Structured Partial Join" AdvancedBranchingAndSynchronization,
    31 "Blocking Partial Join" AdvancedBranchingAndSynchronization,
    32 "Cancelling Partial Join" AdvancedBranchingAndSynchronization,
    33 "Generalised AND-Join" AdvancedBranchingAndSynchronization,
    34 "Static Partial Join for Multiple Instances" MultipleInstance,
    35 "Cancelling Partial Join for Multiple Instances" MultipleInstance,
    36 "Dynamic Partial Join for Multiple Instances" MultipleInstance,
    37 "Acyclic Synchronizing Merge" AdvancedBranchingAndSynchronization,
    38 "General Synchronizing Merge" AdvancedBranchingAndSynchronization,
    39 "Critical Section" StateBased,
    40 "Interleaved Routing" StateBased,
    41 "Thread Merge" AdvancedBranchingAndSynchronization,
    42 "Thread Split" AdvancedBranchingAndSynchronization,
    43 "Explicit Termination" Termination,
}

/// Identifies a workflow control-flow pattern by its number in the
/// [`CATALOGUE`] (1 to 43).
///
/// The field is public, as in the design document, so any `u32` can be
/// wrapped; [`PatternId::new`] checks the range, and registries refuse ids
/// outside it.
///
/// ```
/// use knhk_core::patterns::{PatternCategory, PatternId};
///
/// let id = PatternId::new(2)?;
/// assert_eq!(id.to_string(), "Parallel Split");
/// assert_eq!(id.category(), Some(PatternCategory::BasicControlFlow));
/// assert!(PatternId::new(0).is_err() && PatternId::new(44).is_err());
/// assert_eq!(PatternId(44).to_string(), "unknown pattern 44");
/// # Ok::<(), knhk_core::patterns::UnknownPattern>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PatternId(pub u32);

impl PatternId {
    /// The lowest pattern number.
    pub const MIN: u32 = 1;
    /// The highest pattern number.
    pub const MAX: u32 = 43;

    /// The id of pattern `number`, if the catalogue has one.
    pub const fn new(number: u32) -> Result<PatternId, UnknownPattern> {
        if number >= Self::MIN && number <= Self::MAX {
            Ok(PatternId(number))
        } else {
            Err(UnknownPattern { number })
        }
    }

    /// Whether the catalogue has this pattern.
    pub const fn is_known(self) -> bool {
        self.0 >= Self::MIN && self.0 <= Self::MAX
    }

    /// Position in the catalogue (`number - 1`), if known.
    #[inline(always)]
    pub const fn index(self) -> Option<usize> {
        if self.is_known() {
            Some(self.0 as usize - 1)
        } else {
            None
        }
    }

    /// The catalogue entry, if known.
    pub const fn info(self) -> Option<&'static PatternInfo> {
        match self.index() {
            Some(i) => Some(&CATALOGUE[i]),
            None => None,
        }
    }

    /// The pattern's name, if known.
    pub const fn name(self) -> Option<&'static str> {
        match self.info() {
            Some(info) => Some(info.name),
            None => None,
        }
    }

    /// The pattern's category, if known.
    pub const fn category(self) -> Option<PatternCategory> {
        match self.info() {
            Some(info) => Some(info.category),
            None => None,
        }
    }

    /// Every pattern id, 1 to 43.
    pub fn all() -> impl Iterator<Item = PatternId> {
        (Self::MIN..=Self::MAX).map(PatternId)
    }
}

impl fmt::Debug for PatternId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatternId({})", self.0)
    }
}

/// The pattern's name, or `unknown pattern N`.
impl fmt::Display for PatternId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown pattern {}", self.0),
        }
    }
}

impl From<PatternId> for u32 {
    fn from(id: PatternId) -> u32 {
        id.0
    }
}

impl TryFrom<u32> for PatternId {
    type Error = UnknownPattern;

    fn try_from(number: u32) -> Result<Self, Self::Error> {
        PatternId::new(number)
    }
}

/// A pattern number outside the catalogue (1 to 43).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownPattern {
    /// The number given.
    pub number: u32,
}

impl fmt::Display for UnknownPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no workflow pattern has number {}: the catalogue runs from {} to {}",
            self.number,
            PatternId::MIN,
            PatternId::MAX
        )
    }
}

impl core::error::Error for UnknownPattern {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_numbered_in_order() {
        for (i, info) in CATALOGUE.iter().enumerate() {
            assert_eq!(info.id.0 as usize, i + 1);
            assert_eq!(info.id.info(), Some(info));
        }
        assert_eq!(PatternId(1).name(), Some("Sequence"));
        assert_eq!(PatternId(43).name(), Some("Explicit Termination"));
        assert_eq!(PatternId::all().count(), 43);
    }

    #[test]
    fn out_of_range_ids_are_refused() {
        for n in [0, 44, u32::MAX] {
            assert_eq!(PatternId::new(n), Err(UnknownPattern { number: n }));
            assert_eq!(PatternId(n).index(), None);
            assert!(!PatternId(n).is_known());
        }
        assert!(UnknownPattern { number: 0 }
            .to_string()
            .contains("from 1 to 43"));
        assert_eq!(PatternId::try_from(7), Ok(PatternId(7)));
    }

    #[test]
    fn categories_cover_every_pattern() {
        use PatternCategory::*;
        let count = |c| CATALOGUE.iter().filter(|p| p.category == c).count();
        assert_eq!(count(BasicControlFlow), 5);
        assert_eq!(count(AdvancedBranchingAndSynchronization), 14);
        assert_eq!(count(MultipleInstance), 7);
        assert_eq!(count(StateBased), 5);
        assert_eq!(count(CancellationAndForceCompletion), 5);
        assert_eq!(count(Iteration), 3);
        assert_eq!(count(Termination), 2);
        assert_eq!(count(Trigger), 2);
    }
}
