//! Timing: medians of repeated samples, in nanoseconds and ticks per
//! operation.

use std::time::Instant;

use serde::Serialize;

/// How hard to measure.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Fewer, shorter samples (the whole report in under a minute).
    pub quick: bool,
}

impl Config {
    /// Samples per measurement; the median is reported.
    pub fn samples(&self) -> usize {
        if self.quick {
            7
        } else {
            21
        }
    }

    /// Target duration of one sample, in nanoseconds.
    pub fn sample_ns(&self) -> f64 {
        if self.quick {
            2e6
        } else {
            20e6
        }
    }
}

/// One timed run of a batch of operations.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall time of the batch.
    pub nanos: f64,
    /// Tick counter difference over the batch (0 where there is no counter).
    pub ticks: u64,
    /// Operations in the batch.
    pub ops: u64,
}

/// The median cost of one operation.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Measurement {
    /// Median nanoseconds per operation.
    pub ns_per_op: f64,
    /// Median ticks per operation, where the target has a tick counter.
    pub ticks_per_op: Option<f64>,
    /// Operations timed in all samples together.
    pub ops: u64,
}

/// Times `f` and reads the tick counter around it.
#[inline(never)]
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Sample) {
    let start = Instant::now();
    let t0 = knhk_core::ticks::read();
    let r = f();
    let t1 = knhk_core::ticks::read();
    let nanos = start.elapsed().as_nanos() as f64;
    (
        r,
        Sample {
            nanos,
            ticks: t1.wrapping_sub(t0),
            ops: 0,
        },
    )
}

/// Measures `f`, which performs `ops_per_call` operations per call: calls it
/// in a loop long enough for one sample, several times, and reports medians.
pub fn measure(cfg: Config, ops_per_call: u64, mut f: impl FnMut()) -> Measurement {
    // Warm up (page faults, caches, branch predictors) and calibrate.
    let ((), first) = timed(&mut f);
    let ((), second) = timed(&mut f);
    let per_call = first.nanos.min(second.nanos).max(1.0);
    let calls = ((cfg.sample_ns() / per_call).ceil() as u64).max(1);
    measure_samples(cfg, || {
        let ((), mut s) = timed(|| {
            for _ in 0..calls {
                f();
            }
        });
        s.ops = calls * ops_per_call;
        s
    })
}

/// Takes `cfg.samples()` samples from `sample` and reports medians. For
/// measurements that need untimed set-up per sample.
pub fn measure_samples(cfg: Config, mut sample: impl FnMut() -> Sample) -> Measurement {
    let mut ns = Vec::with_capacity(cfg.samples());
    let mut ticks = Vec::with_capacity(cfg.samples());
    let mut ops = 0;
    for _ in 0..cfg.samples() {
        let s = sample();
        let n = s.ops.max(1) as f64;
        ns.push(s.nanos / n);
        ticks.push(s.ticks as f64 / n);
        ops += s.ops;
    }
    Measurement {
        ns_per_op: median(&mut ns),
        ticks_per_op: knhk_core::ticks::AVAILABLE.then(|| median(&mut ticks)),
        ops,
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn measure_counts_operations() {
        let cfg = Config { quick: true };
        let mut calls = 0_u64;
        let m = measure(cfg, 10, || calls += 1);
        assert!(m.ops >= 10 * cfg.samples() as u64);
        assert!(m.ns_per_op >= 0.0);
        assert_eq!(m.ticks_per_op.is_some(), knhk_core::ticks::AVAILABLE);
    }
}
