//! Section `kernels`: knhk's slice kernels against the straightforward
//! iterator code, built for the default target (`naive`) and for this
//! CPU's SIMD features as `-C target-cpu=native` would (`naive_native`,
//! see [`crate::native`]), and against `memchr::memchr` scanning the same
//! bytes for an absent byte at 16M elements: that is the machine's read
//! bandwidth, the ceiling for a kernel that reads its input once.

use std::hint::black_box;

use knhk_core::kernels;
use knhk_std::performance::simd::pattern_matching::vectorized_pattern_filter;

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::native;
use crate::targets::Target;

/// The kernels section.
pub const SECTION: Section = Section {
    name: "kernels",
    about: "count/any/filter over u32, sum/max/min/variance over u64: knhk vs naive (default and native builds) vs memchr",
    run,
    targets: &TARGETS,
};

/// knhk against the native build of the naive code, for each operation:
/// at most as slow at 1000, 10,000 and 1,000,000, and at most 1.1x at 100.
macro_rules! against_native {
    ($($op:literal),*) => {
        [$(
            Target::ratio_at_most(concat!($op, "/100"), "knhk", "naive_native", 1.1),
            Target::ratio_at_most(concat!($op, "/1000"), "knhk", "naive_native", 1.0),
            Target::ratio_at_most(concat!($op, "/10000"), "knhk", "naive_native", 1.0),
            Target::ratio_at_most(concat!($op, "/1000000"), "knhk", "naive_native", 1.0),
        )*]
    };
}

const NATIVE: [Target; 28] = against_native!(
    "count_u32",
    "any_u32",
    "filter_u32",
    "sum_u64",
    "max_u64",
    "min_u64",
    "variance_u64"
);

const OTHERS: [Target; 9] = [
    Target::ratio_at_most("filter_u32/10000", "knhk", "naive_native", 0.5),
    Target::ratio_at_most("count_u32/16000000", "knhk", "memchr", 1.15),
    Target::ratio_at_most("any_u32/16000000", "knhk", "memchr", 1.15),
    Target::ratio_at_most("sum_u64/16000000", "knhk", "memchr", 1.15),
    Target::ratio_at_most("max_u64/16000000", "knhk", "memchr", 1.15),
    Target::ratio_at_most("count_u32/10000", "knhk", "naive", 1.0 / 3.0),
    Target::ratio_at_most("max_u64/10000", "knhk", "naive", 1.0 / 8.0),
    Target::ratio_at_most("filter_u32/10000", "knhk", "naive", 0.5),
    Target::ratio_at_most("variance_u64/10000", "knhk", "naive", 1.5),
];

const TARGETS: [Target; 37] = {
    let mut all = [OTHERS[0]; 37];
    let mut i = 0;
    while i < NATIVE.len() {
        all[i] = NATIVE[i];
        i += 1;
    }
    while i < all.len() {
        all[i] = OTHERS[i - NATIVE.len()];
        i += 1;
    }
    all
};

const BIG: usize = 16_000_000;

/// Every size a target names; `--quick` takes fewer, shorter samples.
fn sizes(_quick: bool) -> &'static [usize] {
    &[100, 1000, 10_000, 1_000_000, BIG]
}

/// A xorshift generator: data the branch predictor cannot learn.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn as_bytes<T: Copy>(xs: &[T]) -> &[u8] {
    // SAFETY: `u32` and `u64` have no padding, so every byte is initialised,
    // and `u8` has no alignment requirement.
    unsafe { std::slice::from_raw_parts(xs.as_ptr().cast::<u8>(), std::mem::size_of_val(xs)) }
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let sizes = sizes(cfg.quick);
    let with_memchr = sizes.iter().filter(|&&n| n == BIG).count();
    ctx.begin(SECTION.name, 7 * (3 * sizes.len() + with_memchr));
    eprintln!(
        "           kernels: knhk uses {}; naive_native is the {:?} build",
        kernels::active_instruction_set(),
        native::tier()
    );

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    // Pattern ids 1..=7: the filter's 1-in-7 matches come at random.
    let ids: Vec<u32> = (0..BIG).map(|_| (rng.next() % 7) as u32 + 1).collect();
    // Every byte even, so 0xFF occurs nowhere and memchr has a byte to
    // miss; otherwise uniformly random.
    let values: Vec<u64> = (0..BIG)
        .map(|_| rng.next() & 0xFEFE_FEFE_FEFE_FEFE)
        .collect();
    const HIT: u32 = 3;
    const ABSENT: u32 = 0;

    for &n in sizes {
        let (ids, values) = (&ids[..n], &values[..n]);
        let id_bytes = as_bytes(ids);
        // Pattern ids use bytes 0..=7 only, so 0xFF never occurs in them.
        let id_probe = (n == BIG).then_some(0xFF_u8);
        let value_probe = id_probe;

        assert_eq!(
            kernels::count(ids, HIT),
            ids.iter().filter(|&&x| x == HIT).count()
        );
        assert_eq!(kernels::max_u64(values), values.iter().copied().max());

        kernel_case(
            ctx,
            "count_u32",
            n,
            id_bytes,
            id_probe,
            || kernels::count(black_box(ids), HIT),
            || black_box(ids).iter().filter(|&&x| x == HIT).count(),
            || native::count_u32(black_box(ids), HIT),
        );
        kernel_case(
            ctx,
            "any_u32",
            n,
            id_bytes,
            id_probe,
            || kernels::any(black_box(ids), ABSENT),
            || black_box(ids).contains(&ABSENT),
            || native::any_u32(black_box(ids), ABSENT),
        );
        kernel_case(
            ctx,
            "filter_u32",
            n,
            id_bytes,
            id_probe,
            || vectorized_pattern_filter(black_box(ids), HIT).len(),
            || {
                let mut out = Vec::new();
                for (i, &x) in black_box(ids).iter().enumerate() {
                    if x == HIT {
                        out.push(i);
                    }
                }
                out.len()
            },
            || native::filter_u32(black_box(ids), HIT).len(),
        );
        let value_bytes = as_bytes(values);
        kernel_case(
            ctx,
            "sum_u64",
            n,
            value_bytes,
            value_probe,
            || kernels::sum_u64(black_box(values)) as u64,
            || {
                black_box(values)
                    .iter()
                    .fold(0_u64, |s, &x| s.wrapping_add(x))
            },
            || native::sum_u64(black_box(values)),
        );
        kernel_case(
            ctx,
            "max_u64",
            n,
            value_bytes,
            value_probe,
            || kernels::max_u64(black_box(values)),
            || black_box(values).iter().copied().max(),
            || native::max_u64(black_box(values)),
        );
        kernel_case(
            ctx,
            "min_u64",
            n,
            value_bytes,
            value_probe,
            || kernels::min_u64(black_box(values)),
            || black_box(values).iter().copied().min(),
            || native::min_u64(black_box(values)),
        );
        kernel_case(
            ctx,
            "variance_u64",
            n,
            value_bytes,
            value_probe,
            || kernels::variance_u64(black_box(values)),
            || {
                let xs = black_box(values);
                let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
                Some(xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64)
            },
            || native::variance_u64(black_box(values)),
        );
    }
}

/// One case: knhk, naive and naive_native (and memchr over `bytes` for
/// `probe`, at 16M).
#[allow(clippy::too_many_arguments)] // three subjects and the case's facts
fn kernel_case<R, S>(
    ctx: &mut Context,
    operation: &str,
    n: usize,
    bytes: &[u8],
    probe: Option<u8>,
    knhk: impl Fn() -> R,
    naive: impl Fn() -> R,
    naive_native: impl Fn() -> S,
) {
    let cfg = ctx.cfg;
    let ops = n as u64;
    let mut side = SideBySide::new()
        .batch(cfg, "knhk", ops, || {
            black_box(knhk());
        })
        .batch(cfg, "naive", ops, || {
            black_box(naive());
        })
        .batch(cfg, "naive_native", ops, || {
            black_box(naive_native());
        });
    if let Some(byte) = probe {
        side = side.batch(cfg, "memchr", ops, move || {
            black_box(memchr::memchr(byte, black_box(bytes)));
        });
    }
    let results = if n >= BIG && cfg.quick {
        side.run_rounds(5)
    } else {
        side.run(cfg)
    };
    ctx.record_all(&format!("{operation}/{n}"), results);
}
