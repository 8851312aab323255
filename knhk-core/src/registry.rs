//! Once-initialised registries for `no_std`: a [`SpinOnceCell`] and a
//! [`PatternTable`] with one once-initialised slot per workflow pattern.
//!
//! Both are built on one small once-primitive: a reader that finds the
//! value ready pays one acquire load, and a reader that arrives while
//! another context is initialising spins until it is done (or, with the
//! `try_` forms, is told so at once). That suits firmware and kernels,
//! which have no blocking primitive; knhk-std's registries block instead.
//!
//! (Why not `spin::Once`, which this crate used before: it poisons a cell
//! for ever when an initialiser panics, where `std::sync::OnceLock` and
//! once_cell let the next caller try again, and it has no way to ask for
//! the value without waiting on a running initialiser, which an interrupt
//! handler must never do.)
//!
//! # Bare metal: never wait on an initialisation you interrupted
//!
//! If an interrupt handler calls `get_or_init` on a cell whose
//! initialisation the interrupted code had started, the handler spins
//! forever: the initialiser cannot resume until the handler returns. The
//! same happens if an initialiser calls `get_or_init` on its own cell
//! (without threads there is no telling recursion from a race). To stay
//! clear of both:
//!
//! - initialise every cell at start-up, before enabling interrupts, and use
//!   only [`get`](SpinOnceCell::get) (which never waits) in handlers;
//! - or, in a handler, use [`try_get_or_init`](SpinOnceCell::try_get_or_init),
//!   which initialises an empty cell but returns
//!   [`Initializing`] instead of waiting on a running initialiser.
//!
//! If an initialiser panics, the cell is empty again while the panic
//! unwinds, as with `std::sync::OnceLock`: the next `get_or_init` runs its
//! own initialiser. (With `panic = "abort"` there is no next call.)
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

use core::cell::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;

use crate::patterns::{PatternId, CATALOGUE};
use crate::sync::{
    AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};

const EMPTY: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;

/// A value set once: the primitive under [`SpinOnceCell`] and each
/// [`PatternTable`] slot.
///
/// `state` goes `EMPTY -> RUNNING` (one context claims the right to
/// initialise, by compare-and-swap), then `RUNNING -> READY` (release,
/// after the value is written) or back to `EMPTY` (release, when the
/// initialiser fails or panics). The value is read only in `READY`, after
/// an acquire load that saw it, and written only by the context that holds
/// `RUNNING`.
struct Once<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by one context (the `RUNNING` holder) before
// the release store of `READY`, and only read (shared) after an acquire
// load of `READY`: sharing the cell shares `&T` across threads (`T: Sync`)
// and may move the `T` built on one thread to be dropped on another
// (`T: Send`).
unsafe impl<T: Send + Sync> Sync for Once<T> {}

/// Empties a `RUNNING` cell again unless forgotten: if the initialiser
/// fails or unwinds, the next caller may try.
struct Unclaim<'s>(&'s AtomicU8);

impl Drop for Unclaim<'_> {
    fn drop(&mut self) {
        self.0.store(EMPTY, Release);
    }
}

/// What [`Once::init`] does when another context is initialising.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Busy {
    Wait,
    Refuse,
}

/// Why an initialisation did not give a value.
enum Failed<E> {
    /// The initialiser returned this error; the cell stays empty.
    Init(E),
    /// Another context is initialising (only with [`Busy::Refuse`]).
    Initializing,
}

impl<T> Once<T> {
    const fn new() -> Once<T> {
        Once {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    #[inline(always)]
    fn get(&self) -> Option<&T> {
        if self.state.load(Acquire) == READY {
            // SAFETY: `READY` was stored (release) after the value was
            // written, and the value is never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    fn is_ready(&self) -> bool {
        self.state.load(Acquire) == READY
    }

    /// The value, initialised with `init` if the cell is empty.
    #[inline]
    fn init<E>(&self, busy: Busy, init: impl FnOnce() -> Result<T, E>) -> Result<&T, Failed<E>> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.init_slow(busy, init)
    }

    #[cold]
    fn init_slow<E>(
        &self,
        busy: Busy,
        init: impl FnOnce() -> Result<T, E>,
    ) -> Result<&T, Failed<E>> {
        loop {
            match self
                .state
                .compare_exchange(EMPTY, RUNNING, Acquire, Acquire)
            {
                Ok(_) => {
                    let unclaim = Unclaim(&self.state);
                    let value = init().map_err(Failed::Init)?;
                    // SAFETY: this context holds `RUNNING`, so nothing else
                    // reads or writes the value until `READY` is stored.
                    unsafe { (*self.value.get()).write(value) };
                    core::mem::forget(unclaim);
                    self.state.store(READY, Release);
                    // A shared reference made after the publication, like
                    // every reader's: the `&mut` that `write` returned must
                    // not outlive the store, since readers' shared
                    // references then exist beside it (Miri's Stacked
                    // Borrows rightly rejects returning a reborrow of it).
                    // SAFETY: the value was initialised just above.
                    return Ok(unsafe { (*self.value.get()).assume_init_ref() });
                }
                Err(READY) => {
                    // SAFETY: as in `get`: the acquire load saw `READY`.
                    return Ok(unsafe { (*self.value.get()).assume_init_ref() });
                }
                Err(_) if busy == Busy::Refuse => return Err(Failed::Initializing),
                Err(_) => {
                    while self.state.load(Relaxed) == RUNNING {
                        core::hint::spin_loop();
                    }
                }
            }
        }
    }

    fn get_mut(&mut self) -> Option<&mut T> {
        if *self.state.get_mut() == READY {
            // SAFETY: `READY`: the value is initialised; `&mut self` is unique.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    fn take(&mut self) -> Option<T> {
        if *self.state.get_mut() == READY {
            *self.state.get_mut() = EMPTY;
            // SAFETY: `READY` meant initialised; the state is now `EMPTY`,
            // so the value is neither read nor dropped again.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }
}

impl<T> Drop for Once<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// A [`SpinOnceCell`] or [`PatternTable`] slot was being initialised by another
/// context, and the caller asked not to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Initializing;

impl fmt::Display for Initializing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value is being initialised by another context")
    }
}

impl core::error::Error for Initializing {}

/// A value initialised once, on first use: thread-safe, spinning while
/// another context initialises it (knhk-std's `OnceLock` registries block
/// instead). The vocabulary of `std::sync::OnceLock` and once_cell, plus
/// [`try_get_or_init`](Self::try_get_or_init) for contexts that must not
/// wait.
///
/// ```
/// use knhk_core::registry::SpinOnceCell;
///
/// static LIMITS: SpinOnceCell<[u32; 4]> = SpinOnceCell::new();
/// assert!(LIMITS.get().is_none());
/// assert_eq!(LIMITS.get_or_init(|| [1, 2, 3, 4])[2], 3);
/// assert_eq!(LIMITS.get_or_init(|| [9; 4])[2], 3); // initialised once
/// assert!(LIMITS.is_initialized());
/// assert_eq!(LIMITS.set([0; 4]), Err([0; 4]));
/// ```
pub struct SpinOnceCell<T> {
    once: Once<T>,
}

impl<T> SpinOnceCell<T> {
    /// An empty cell.
    pub const fn new() -> SpinOnceCell<T> {
        SpinOnceCell { once: Once::new() }
    }

    /// The value, initialising it with `init` if this is the first call.
    /// Concurrent callers wait (spinning) for the first one's `init`. If
    /// `init` panics, the cell stays empty and the panic goes on; the next
    /// call initialises.
    ///
    /// Calling it from `init` on the same cell, or from an interrupt
    /// handler that interrupted `init`, spins for ever (see the module
    /// docs); [`try_get_or_init`](Self::try_get_or_init) cannot.
    #[inline]
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self
            .once
            .init(Busy::Wait, || Ok::<T, core::convert::Infallible>(init()))
        {
            Ok(value) => value,
            Err(Failed::Init(never)) => match never {},
            // Only `Busy::Refuse` reports `Initializing`.
            Err(Failed::Initializing) => unreachable_initializing(),
        }
    }

    /// The value, initialising it with `init` if the cell is empty; if
    /// `init` fails, its error, and the cell stays empty for a later call.
    ///
    /// ```
    /// use knhk_core::registry::SpinOnceCell;
    ///
    /// let cell = SpinOnceCell::new();
    /// assert_eq!(cell.get_or_try_init(|| Err("not yet")), Err("not yet"));
    /// assert_eq!(cell.get_or_try_init(|| Ok::<_, &str>(7)), Ok(&7));
    /// ```
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        match self.once.init(Busy::Wait, init) {
            Ok(value) => Ok(value),
            Err(Failed::Init(e)) => Err(e),
            Err(Failed::Initializing) => unreachable_initializing(),
        }
    }

    /// As [`get_or_init`](Self::get_or_init), but never waits: if another
    /// context is initialising the cell, [`Initializing`] at once. What an
    /// interrupt handler, or an initialiser that may reach its own cell,
    /// needs.
    ///
    /// ```
    /// use knhk_core::registry::{Initializing, SpinOnceCell};
    ///
    /// let cell = SpinOnceCell::new();
    /// let inner = cell.try_get_or_init(|| {
    ///     // The cell is being initialised right here: asking again from
    ///     // inside is refused instead of spinning for ever.
    ///     assert_eq!(cell.try_get_or_init(|| 2), Err(Initializing));
    ///     1
    /// });
    /// assert_eq!(inner, Ok(&1));
    /// ```
    pub fn try_get_or_init(&self, init: impl FnOnce() -> T) -> Result<&T, Initializing> {
        match self
            .once
            .init(Busy::Refuse, || Ok::<T, core::convert::Infallible>(init()))
        {
            Ok(value) => Ok(value),
            Err(Failed::Init(never)) => match never {},
            Err(Failed::Initializing) => Err(Initializing),
        }
    }

    /// Sets the value if the cell is empty; gives `value` back if it was
    /// set already (or is being set: this waits for that to finish).
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        let _ = self.get_or_init(|| value.take().unwrap_or_else(|| unreachable_initializing()));
        value.map_or(Ok(()), Err)
    }

    /// The value if it is initialised; never waits.
    #[inline(always)]
    pub fn get(&self) -> Option<&T> {
        self.once.get()
    }

    /// The value, mutably, if it is initialised.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.once.get_mut()
    }

    /// The value, if it was initialised.
    pub fn into_inner(mut self) -> Option<T> {
        self.once.take()
    }

    /// Whether the value is initialised.
    #[inline]
    pub fn is_initialized(&self) -> bool {
        self.once.is_ready()
    }
}

/// Where only a refusing call could see `Initializing`.
#[cold]
fn unreachable_initializing() -> ! {
    unreachable!("a waiting initialisation never reports another initialiser")
}

impl<T> Default for SpinOnceCell<T> {
    fn default() -> Self {
        SpinOnceCell::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for SpinOnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(v) => f.debug_tuple("SpinOnceCell").field(v).finish(),
            None => f.write_str("SpinOnceCell(<uninitialised>)"),
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
    /// Another context is registering the pattern, and the caller asked
    /// not to wait.
    Initializing {
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
            RegistryError::Initializing { id } => write!(
                f,
                "pattern {} ({id}) is being registered by another context",
                id.0
            ),
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
    slots: [Once<T>; PatternId::MAX as usize],
}

impl<T> PatternTable<T> {
    /// No pattern registered.
    pub const fn new() -> PatternTable<T> {
        PatternTable {
            slots: [const { Once::new() }; PatternId::MAX as usize],
        }
    }

    #[inline(always)]
    fn slot(&self, id: PatternId) -> Option<&Once<T>> {
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
        let stored = slot.init(Busy::Wait, || {
            fresh = true;
            Ok::<T, core::convert::Infallible>(value)
        });
        match stored {
            Ok(stored) if fresh => Ok(stored),
            Ok(_) => Err(RegistryError::AlreadyRegistered { id }),
            Err(Failed::Init(never)) => match never {},
            Err(Failed::Initializing) => unreachable_initializing(),
        }
    }

    /// The value for `id`, registering `init()` if there is none yet
    /// (waiting, spinning, while another context registers it). If `init`
    /// panics, the slot stays empty.
    pub fn get_or_init(
        &self,
        id: PatternId,
        init: impl FnOnce() -> T,
    ) -> Result<&T, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        match slot.init(Busy::Wait, || Ok::<T, core::convert::Infallible>(init())) {
            Ok(value) => Ok(value),
            Err(Failed::Init(never)) => match never {},
            Err(Failed::Initializing) => unreachable_initializing(),
        }
    }

    /// As [`get_or_init`](Self::get_or_init), but never waits: while
    /// another context registers `id`, [`RegistryError::Initializing`].
    pub fn try_get_or_init(
        &self,
        id: PatternId,
        init: impl FnOnce() -> T,
    ) -> Result<&T, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        match slot.init(Busy::Refuse, || Ok::<T, core::convert::Infallible>(init())) {
            Ok(value) => Ok(value),
            Err(Failed::Init(never)) => match never {},
            Err(Failed::Initializing) => Err(RegistryError::Initializing { id }),
        }
    }

    /// The value for `id`, registering the value `init()` returns if there
    /// is none yet; `init`'s error leaves the slot empty.
    pub fn get_or_try_init<E>(
        &self,
        id: PatternId,
        init: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<&T, E>, RegistryError> {
        let slot = self.slot(id).ok_or(RegistryError::UnknownPattern { id })?;
        match slot.init(Busy::Wait, init) {
            Ok(value) => Ok(Ok(value)),
            Err(Failed::Init(e)) => Ok(Err(e)),
            Err(Failed::Initializing) => unreachable_initializing(),
        }
    }

    /// How many patterns have a value.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_ready()).count()
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
        let cell = Arc::new(SpinOnceCell::new());
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
    fn a_panicking_initialiser_leaves_the_cell_empty_for_the_next_call() {
        let cell = SpinOnceCell::<u32>::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cell.get_or_init(|| panic!("initialiser failed"));
        }));
        assert!(first.is_err());
        assert_eq!(cell.get(), None, "get never waits and sees nothing");
        assert_eq!(*cell.get_or_init(|| 5), 5, "the next call initialises");
        let table = PatternTable::<u32>::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = table.get_or_init(PatternId(4), || panic!("registration failed"));
        }));
        assert!(first.is_err());
        assert_eq!(table.get(PatternId(4)), None);
        assert_eq!(table.register(PatternId(4), 9), Ok(&9));
    }

    #[test]
    fn reentrant_initialisation_is_refused_not_spun_on() {
        let cell = SpinOnceCell::new();
        let got = cell.try_get_or_init(|| {
            assert_eq!(cell.try_get_or_init(|| 2), Err(Initializing));
            assert_eq!(cell.get(), None);
            1
        });
        assert_eq!(got, Ok(&1));
        let table = PatternTable::new();
        let got = table.try_get_or_init(PatternId(2), || {
            assert_eq!(
                table.try_get_or_init(PatternId(2), || 20),
                Err(RegistryError::Initializing { id: PatternId(2) })
            );
            assert_eq!(table.try_get_or_init(PatternId(3), || 30), Ok(&30));
            10
        });
        assert_eq!(got, Ok(&10));
        assert!(RegistryError::Initializing { id: PatternId(2) }
            .to_string()
            .contains("being registered"));
    }

    #[test]
    fn the_cell_vocabulary_of_once_lock() {
        let cell = SpinOnceCell::new();
        assert_eq!(cell.get_or_try_init(|| Err("no")), Err("no"));
        assert!(!cell.is_initialized());
        assert_eq!(cell.set(String::from("a")), Ok(()));
        assert_eq!(cell.set(String::from("b")), Err(String::from("b")));
        let mut cell = cell;
        cell.get_mut().unwrap().push('!');
        assert_eq!(cell.into_inner(), Some(String::from("a!")));
        assert_eq!(SpinOnceCell::<u8>::new().into_inner(), None);
        let table = PatternTable::<u8>::new();
        assert_eq!(
            table.get_or_try_init(PatternId(1), || Err("no")),
            Ok(Err("no"))
        );
        assert_eq!(
            table.get_or_try_init(PatternId(1), || Ok::<_, &str>(1)),
            Ok(Ok(&1))
        );
        assert!(table
            .get_or_try_init(PatternId(99), || Ok::<_, ()>(1))
            .is_err());
    }

    #[test]
    fn values_are_dropped_once_with_the_cell() {
        use std::rc::Rc;
        let counted = Rc::new(());
        {
            let cell = SpinOnceCell::new();
            cell.get_or_init(|| Rc::clone(&counted));
            let table = PatternTable::new();
            table.register(PatternId(5), Rc::clone(&counted)).unwrap();
            assert_eq!(Rc::strong_count(&counted), 3);
        }
        assert_eq!(Rc::strong_count(&counted), 1);
    }
}
