//! Where arena buffers come from: the heap, or, for 2 MiB and more, an
//! anonymous mapping aligned to 2 MiB and advised for transparent huge
//! pages (`MADV_HUGEPAGE`) on Linux. A large arena touched at random then
//! takes one TLB entry per 2 MiB instead of per 4 KiB.
//!
//! Whether a buffer is mapped follows from its layout alone (alignment
//! [`HUGE_PAGE`]), so it is freed the way it was made even if huge pages
//! are switched off in between. Where the kernel refuses huge pages (THP
//! off, or no 2 MiB page free) the mapping simply uses small pages; under
//! Miri, and on other systems, such buffers come from the heap.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The size (and alignment) of a huge page: 2 MiB.
pub const HUGE_PAGE: usize = 2 * 1024 * 1024;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns huge pages for new arena buffers of 2 MiB or more, and for the
/// mappings of stores opened from now on
/// ([`MmapWorkflowStore`](crate::store::MmapWorkflowStore)), on or off (on
/// by default), for every thread; returns the previous setting. Buffers
/// and stores already made keep what they have.
///
/// ```
/// let before = knhk_std::arena::set_huge_pages(false);
/// assert!(!knhk_std::arena::huge_pages_enabled());
/// knhk_std::arena::set_huge_pages(before);
/// ```
pub fn set_huge_pages(enabled: bool) -> bool {
    ENABLED.swap(enabled, Relaxed)
}

/// Whether new arena buffers of 2 MiB or more ask for huge pages.
pub fn huge_pages_enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// The alignment a buffer of `size` bytes gets: [`HUGE_PAGE`] when huge
/// pages are on and it is that large, else `small`.
pub(crate) fn align_for(size: usize, small: usize) -> usize {
    if size >= HUGE_PAGE && huge_pages_enabled() {
        HUGE_PAGE
    } else {
        small
    }
}

/// Allocates a buffer with `layout` (non-zero size); null on failure.
///
/// # Safety
/// As `std::alloc::alloc`: the layout's size is not zero.
pub(crate) unsafe fn allocate(layout: Layout) -> *mut u8 {
    #[cfg(all(target_os = "linux", not(miri)))]
    if layout.align() == HUGE_PAGE {
        // `layout_for` pads to its alignment: whole huge pages.
        debug_assert_eq!(layout.size() % HUGE_PAGE, 0);
        return map_huge(layout.size());
    }
    // SAFETY: the caller's layout has a non-zero size.
    unsafe { alloc::alloc(layout) }
}

/// Frees a buffer made by [`allocate`] with the same layout.
///
/// # Safety
/// `ptr` came from `allocate(layout)` and is freed once.
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    #[cfg(all(target_os = "linux", not(miri)))]
    if layout.align() == HUGE_PAGE {
        // SAFETY: `map_huge` mapped exactly `layout.size()` bytes here.
        unsafe { libc::munmap(ptr.as_ptr().cast(), layout.size()) };
        return;
    }
    // SAFETY: the caller's pointer came from `alloc` with this layout.
    unsafe { alloc::dealloc(ptr.as_ptr(), layout) }
}

/// Marks the pages of a mapped buffer (from [`allocate`] with a
/// [`HUGE_PAGE`]-aligned layout of `size` bytes) as free to reclaim
/// (`MADV_FREE`, Linux 4.5 and later); whether the kernel took the advice.
/// False under Miri and on other systems, where such buffers come from the
/// heap.
///
/// # Safety
/// `[ptr, ptr + size)` is such a mapping, owned by the caller, whose bytes
/// are not read again before they are written: a reclaimed page reads as
/// zeros, an untaken one as before.
pub(crate) unsafe fn lazy_free(ptr: NonNull<u8>, size: usize) -> bool {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: the caller's range is a whole mapping it owns; MADV_FREE
        // changes only what the bytes read as until they are written.
        unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_FREE) == 0 }
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        let _ = (ptr, size);
        false
    }
}

/// An anonymous mapping of `size` bytes (a multiple of [`HUGE_PAGE`]),
/// aligned to [`HUGE_PAGE`] and advised for huge pages; null on failure.
#[cfg(all(target_os = "linux", not(miri)))]
fn map_huge(size: usize) -> *mut u8 {
    let Some(span) = size.checked_add(HUGE_PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let start = raw.cast::<u8>();
    let lead = start.addr().wrapping_neg() % HUGE_PAGE;
    // SAFETY: `lead < HUGE_PAGE` and `lead + size <= span`, so both
    // pointers are in (or one past) the mapping.
    let (aligned, end) = unsafe { (start.add(lead), start.add(lead + size)) };
    // Should the kernel refuse to split the mapping (at its limit of
    // mappings), the head or tail stays mapped: a leak of under 2 MiB, never
    // a fault; the buffer itself is whole either way.
    // SAFETY: the unaligned head and the tail beyond `size` are parts of the
    // mapping just made, which nothing uses; unmapping them leaves exactly
    // `[aligned, aligned + size)`.
    unsafe {
        if lead > 0 {
            libc::munmap(start.cast(), lead);
        }
        let tail = span - lead - size;
        if tail > 0 {
            libc::munmap(end.cast(), tail);
        }
        // A hint: refused (THP off), the mapping keeps small pages.
        libc::madvise(aligned.cast(), size, libc::MADV_HUGEPAGE);
    }
    aligned
}

/// Bytes of `[ptr, ptr + len)`'s mapping backed by huge pages, from
/// `/proc/self/smaps` (`AnonHugePages`); `None` where that cannot be read
/// (other systems, Miri) or no mapping holds `ptr`.
pub(crate) fn huge_page_bytes(ptr: *const u8, len: usize) -> Option<usize> {
    if cfg!(miri) || !cfg!(target_os = "linux") {
        return None;
    }
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let addr = ptr.addr();
    let mut inside = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = lo <= addr && addr < hi && addr.saturating_add(len) <= hi;
                continue;
            }
        }
        if inside && first == "AnonHugePages:" {
            let kib: usize = words.next()?.parse().ok()?;
            return Some(kib * 1024);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_huge_page_aligned_and_small_ones_are_not() {
        let huge = Layout::from_size_align(2 * HUGE_PAGE, HUGE_PAGE).unwrap();
        let small = Layout::from_size_align(4096, 64).unwrap();
        for layout in [huge, small] {
            // SAFETY: non-zero sizes; each block is freed once, with its
            // layout.
            unsafe {
                let block = NonNull::new(allocate(layout)).expect("memory");
                assert_eq!(block.as_ptr().addr() % layout.align(), 0);
                block.as_ptr().write_bytes(7, layout.size());
                let last = *block.as_ptr().add(layout.size() - 1);
                assert_eq!(last, 7);
                if layout == huge && cfg!(all(target_os = "linux", not(miri))) {
                    // Readable where smaps is; granted or not is the
                    // kernel's choice.
                    assert!(huge_page_bytes(block.as_ptr(), layout.size()).is_some());
                }
                free(block, layout);
            }
        }
    }

    #[test]
    fn the_switch_decides_the_alignment_of_new_buffers() {
        let before = set_huge_pages(true);
        assert_eq!(align_for(HUGE_PAGE, 64), HUGE_PAGE);
        assert_eq!(align_for(HUGE_PAGE - 1, 64), 64);
        set_huge_pages(false);
        assert_eq!(align_for(8 * HUGE_PAGE, 64), 64);
        set_huge_pages(before);
    }
}
