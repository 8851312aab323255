//! Every kernel of knhk-core, instantiated with concrete types and exported,
//! so that the compiled code can be disassembled. On `x86_64-unknown-none`
//! (SSE disabled: a kernel may not touch vector registers it does not save)
//! `targets/check` fails if any SIMD register appears.
#![no_std]

use core::mem::MaybeUninit;

use knhk_core::arena::Arena;
use knhk_core::kernels;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// # Safety
/// `xs` must point to `n` readable values.
unsafe fn slice<'a, T>(xs: *const T, n: usize) -> &'a [T] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(xs, n) }
}

/// Counts, searches and filters every lane width.
///
/// # Safety
/// Each pointer must point to `n` readable values; `out` to `n` writable.
#[no_mangle]
pub unsafe extern "C" fn knhk_check_counting(
    b: *const u8,
    h: *const u16,
    w: *const u32,
    q: *const u64,
    n: usize,
    out: *mut usize,
) -> usize {
    // SAFETY: the caller's contract.
    let (b, h, w, q) = unsafe { (slice(b, n), slice(h, n), slice(w, n), slice(q, n)) };
    // SAFETY: the caller's contract.
    let out = unsafe { core::slice::from_raw_parts_mut(out, n) };
    kernels::count(b, 1)
        + kernels::count(h, 1)
        + kernels::count(w, 1)
        + kernels::count(q, 1)
        + kernels::any(w, 7) as usize
        + kernels::any(b, 7) as usize
        + kernels::filter_into(w, 3, out)
        + kernels::matches(q, 5).count()
}

/// Sums, extremes, mean and variance.
///
/// # Safety
/// `q` must point to `n` readable values.
#[no_mangle]
pub unsafe extern "C" fn knhk_check_statistics(q: *const u64, n: usize) -> u64 {
    // SAFETY: the caller's contract.
    let q = unsafe { slice(q, n) };
    let sum = kernels::sum_u64(q) as u64;
    let max = kernels::max_u64(q).unwrap_or(0);
    let min = kernels::min_u64(q).unwrap_or(0);
    let mean = kernels::mean_u64(q).unwrap_or(0.0);
    let var = kernels::variance_u64(q).unwrap_or(0.0);
    let sample = kernels::sample_variance_u64(q).unwrap_or(0.0);
    sum ^ max ^ min ^ mean.to_bits() ^ var.to_bits() ^ sample.to_bits()
}

/// The arena's allocation paths.
#[no_mangle]
pub extern "C" fn knhk_check_arena(n: u64) -> u64 {
    let mut buf = [MaybeUninit::<u8>::uninit(); 512];
    let mut arena = Arena::new(&mut buf);
    let mut total = 0;
    if let Ok(x) = arena.alloc(n) {
        total += *x;
    }
    if let Ok(s) = arena.alloc_slice_fill_with(8, |i| i as u64 * n) {
        total += s.iter().sum::<u64>();
    }
    arena.reset();
    total
}
