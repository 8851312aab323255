//! Once-initialised registries for `no_std`: a [`OnceCell`] and a
//! [`PatternTable`] with one once-initialised slot per workflow pattern.
//!
//! Both are built on `spin::Once`: a reader that finds the value ready pays
//! one acquire load, and a reader that arrives while another context is
//! initialising spins until it is done. That suits firmware and kernels,
//! which have no blocking primitive; knhk-std's registries block instead.
//!
//! # Bare metal: never wait on an initialisation you interrupted
//!
//! If an interrupt handler calls `get_or_init` on a cell whose
//! initialisation the interrupted code had started, the handler spins
//! forever: the initialiser cannot resume until the handler returns. The
//! same happens if an initialiser calls `get_or_init` on its own cell. To
//! stay clear of both:
//!
//! - initialise every cell at start-up, before enabling interrupts, and use
//!   only [`get`](OnceCell::get) (which never waits) in handlers; or
//! - in a handler, use `get` and treat `None` as "not ready yet".
//!
//! If an initialiser panics, the cell is poisoned: `get` returns `None` and
//! a later `get_or_init` panics, as `spin::Once` does (there is no way to
//! know whether the panicking initialiser left shared state half-written).
//!
//! ```
//! use knhk_core::patterns::PatternId;
//! use knhk_core::registry::PatternTable;
//!
//! static HANDLERS: PatternTable<fn(u64) -> u64> = PatternTable::new();
//!
//! fn double(x: u64) -> u64 { 2 * x }
//! HANDLERS.register(PatternId(2), double).unwrap();
//! let handler = HANDLERS.get(PatternId(2)).unwrap();
//! assert_eq!(handler(21), 42);
//! assert!(HANDLERS.get(PatternId(3)).is_none());
//! assert!(HANDLERS.register(PatternId(44), double).is_err());
//! ```

use core::fmt;

use crate::patterns::{PatternId, CATALOGUE};

/// A value initialised once, on first use.
///
/// ```
/// use knhk_core::registry::OnceCell;
///
/// static LIMITS: OnceCell<[u32; 4]> = OnceCell::new();
/// assert!(LIMITS.get().is_none());
/// assert_eq!(LIMITS.get_or_init(|| [1, 2, 3, 4])[2], 3);
/// assert_eq!(LIMITS.get_or_init(|| [9; 4])[2], 3); // initialised once
/// assert!(LIMITS.is_initialized());
/// ```
pub struct OnceCell<T> {
    once: spin::Once<T>,
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            once: spin::Once::new(),
        }
    }

    /// The value, initialising it with `init` if this is the first call.
    /// Concurrent callers wait (spinning) for the first one's `init`.
    ///
    /// # Panics
    ///
    /// If an earlier `init` panicked (the cell is poisoned).
    #[inline]
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        self.once.call_once(init)
    }

    /// The value if it is initialised; never waits.
    #[inline(always)]
    pub fn get(&self) -> Option<&T> {
        self.once.get()
    }

    /// Whether the value is initialised.
    #[inline]
    pub fn is_initialized(&self) -> bool {
        self.once.is_completed()
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(v) => f.debug_tuple("OnceCell").field(v).finish(),
            None => f.write_str("OnceCell(<uninitialised>)"),
        }
    }
}

/// Why a [`PatternTable`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegistryError {
    /// The id is not in the catalogue (1 to 43).
    UnknownPattern {
        /// The id asked for.
        id: PatternId,
    },
    /// The pattern already has a value; slots are set once.
    AlreadyRegistered {
        /// The id asked for.
        id: PatternId,
    },
    /// The pattern has no value yet.
    NotRegistered {
        /// The id asked for.
        id: PatternId,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegistryError::UnknownPattern { id } => write!(
                f,
                "pattern id {} is not in the catalogue (1 to {})",
                id.0,
                CATALOGUE.len()
            ),
            RegistryError::AlreadyRegistered { id } => {
                write!(f, "pattern {} ({id}) is already registered", id.0)
            }
            RegistryError::NotRegistered { id } => {
                write!(f, "pattern {} ({id}) has nothing registered", id.0)
            }
        }
    }
}

impl core::error::Error for RegistryError {}

/// One once-initialised slot per workflow pattern (43).
///
/// Each pattern's value is registered independently. [`get`](Self::get) is a
/// bounds check and one acquire load; ids outside 1 to 43 get `None` (or an
/// error from the methods that say why), never a panic.
pub struct PatternTable<T> {
    slots: [spin::Once<T>; 43],
}

impl<T> PatternTable<T> {
    /// No pattern registered.
    pub const fn new() -> PatternTable<T> {
        PatternTable {
            slots: [const { spin::Once::new() }; 43],
        }
    }

    #[inline(always)]
    fn slot(&self, id: PatternId) -> Option<&spin::Once<T>> {
        // Id 0 wraps to u32::MAX and fails the bounds check like 44+.
        self.slots.get(id.0.wrapping_sub(1) as usize)
    }

    /// The value registered for `id`, if any.
    #[inline(always)]
    pub fn get(&self, id: PatternId) -> Option<&T> {
        self.slot(id)?.get()
    }

    /// The value registered for `id`, or why there is none.
    pub fn try_get(&self, id: PatternId) -> Result<&T, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        slot.get().ok_or(RegistryError::NotRegistered { id })
    }

    /// Registers `value` for `id`. Fails if `id` is not in the catalogue or
    /// already has a value (the new value is then dropped).
    pub fn register(&self, id: PatternId, value: T) -> Result<&T, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        let mut fresh = false;
        let stored = slot.call_once(|| {
            fresh = true;
            value
        });
        if fresh {
            Ok(stored)
        } else {
            Err(RegistryError::AlreadyRegistered { id })
        }
    }

    /// The value for `id`, registering `init()` if there is none yet.
    pub fn get_or_init(
        &self,
        id: PatternId,
        init: impl FnOnce() -> T,
    ) -> Result<&T, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        Ok(slot.call_once(init))
    }

    /// How many patterns have a value.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_completed()).count()
    }

    /// Whether no pattern has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registered patterns and their values, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (PatternId, &T)> {
        self.slots
            .iter()
            .zip(PatternId::all())
            .filter_map(|(slot, id)| slot.get().map(|v| (id, v)))
    }
}

impl<T> Default for PatternTable<T> {
    fn default() -> Self {
        PatternTable::new()
    }
}

impl<T> fmt::Debug for PatternTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternTable")
            .field("registered", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn sixteen_racing_threads_run_each_initialiser_once() {
        let cell = Arc::new(OnceCell::new());
        let table = Arc::new(PatternTable::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let threads = if cfg!(miri) { 4 } else { 16 };
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (cell, table, runs) = (cell.clone(), table.clone(), runs.clone());
                std::thread::spawn(move || {
                    let v = *cell.get_or_init(|| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        t
                    });
                    for id in PatternId::all() {
                        table
                            .get_or_init(id, || {
                                runs.fetch_add(1, Ordering::SeqCst);
                                id.0 * 10
                            })
                            .unwrap();
                    }
                    v
                })
            })
            .collect();
        let seen: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            seen.iter().all(|&v| v == seen[0]),
            "everyone sees one value"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1 + 43);
        assert_eq!(table.len(), 43);
        assert_eq!(table.get(PatternId(7)), Some(&70));
    }

    #[test]
    fn unknown_ids_are_errors_not_panics() {
        let table = PatternTable::<u8>::new();
        for id in [PatternId(0), PatternId(44), PatternId(u32::MAX)] {
            assert_eq!(table.get(id), None);
            assert_eq!(
                table.register(id, 1),
                Err(RegistryError::UnknownPattern { id })
            );
            assert_eq!(table.try_get(id), Err(RegistryError::UnknownPattern { id }));
            assert!(table.get_or_init(id, || 1).is_err());
        }
        assert_eq!(
            table.try_get(PatternId(3)),
            Err(RegistryError::NotRegistered { id: PatternId(3) })
        );
        assert!(table.is_empty());
        let text = RegistryError::UnknownPattern { id: PatternId(44) }.to_string();
        assert!(text.contains("44") && text.contains("1 to 43"), "{text}");
    }

    #[test]
    fn slots_are_set_once() {
        let table = PatternTable::new();
        assert_eq!(table.register(PatternId(1), "first"), Ok(&"first"));
        assert_eq!(
            table.register(PatternId(1), "second"),
            Err(RegistryError::AlreadyRegistered { id: PatternId(1) })
        );
        assert_eq!(table.get(PatternId(1)), Some(&"first"));
        assert_eq!(
            table.iter().collect::<Vec<_>>(),
            vec![(PatternId(1), &"first")]
        );
    }

    #[test]
    fn a_panicking_initialiser_poisons_the_cell() {
        let cell = OnceCell::<u32>::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cell.get_or_init(|| panic!("initialiser failed"));
        }));
        assert!(first.is_err());
        assert_eq!(cell.get(), None, "get never waits and sees nothing");
        let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cell.get_or_init(|| 5);
        }));
        assert!(second.is_err(), "a poisoned cell panics on get_or_init");
    }
}
