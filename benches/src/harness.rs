//! Timing: medians of repeated samples, in nanoseconds and ticks per
//! operation.

use std::time::Instant;

use serde::Serialize;

/// How hard to measure.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Fewer, shorter samples (the whole report in under a minute).
    pub quick: bool,
    /// Threads for the multi-threaded cases.
    pub threads: usize,
}

impl Config {
    /// Samples per measurement; the median is reported.
    pub fn samples(&self) -> usize {
        if self.quick {
            15
        } else {
            41
        }
    }

    /// Target duration of one sample, in nanoseconds.
    pub fn sample_ns(&self) -> f64 {
        if self.quick {
            1e6
        } else {
            5e6
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

/// Runs `work(t)` for `t` in `0..threads` on that many threads at once:
/// one sample of `ops` operations. Spawning is outside the timed span: the
/// clock starts when every thread is ready, and stops when all are done.
pub fn on_threads(threads: usize, ops: u64, work: impl Fn(usize) + Sync) -> Sample {
    let ready = std::sync::Barrier::new(threads + 1);
    let (start, t0) = std::thread::scope(|scope| {
        for t in 0..threads {
            let (work, ready) = (&work, &ready);
            scope.spawn(move || {
                ready.wait();
                work(t);
            });
        }
        ready.wait();
        (Instant::now(), knhk_core::ticks::read())
    });
    let t1 = knhk_core::ticks::read();
    Sample {
        nanos: start.elapsed().as_nanos() as f64,
        ticks: t1.wrapping_sub(t0),
        ops,
    }
}

/// Subjects measured side by side: each sampling round takes one sample
/// from every subject in turn (starting one further along each round), so
/// a slow spell on a shared machine lands on all of them alike and their
/// ratios stay meaningful.
#[derive(Default)]
pub struct SideBySide<'f> {
    subjects: Vec<(&'static str, SampleFn<'f>)>,
}

/// Takes one sample of a subject.
type SampleFn<'f> = Box<dyn FnMut() -> Sample + 'f>;

impl<'f> SideBySide<'f> {
    /// No subjects yet.
    pub fn new() -> SideBySide<'f> {
        SideBySide {
            subjects: Vec::new(),
        }
    }

    /// Adds a subject whose every call of `f` performs `ops_per_call`
    /// operations. `f` is called in a loop long enough for one sample.
    pub fn batch(
        mut self,
        cfg: Config,
        name: &'static str,
        ops_per_call: u64,
        mut f: impl FnMut() + 'f,
    ) -> Self {
        // Warm up (page faults, caches, branch predictors) and calibrate.
        let ((), first) = timed(&mut f);
        let ((), second) = timed(&mut f);
        let per_call = first.nanos.min(second.nanos).max(1.0);
        let calls = ((cfg.sample_ns() / per_call).ceil() as u64).max(1);
        self.subjects.push((
            name,
            Box::new(move || {
                let ((), mut s) = timed(|| {
                    for _ in 0..calls {
                        f();
                    }
                });
                s.ops = calls * ops_per_call;
                s
            }),
        ));
        self
    }

    /// Adds a subject that takes its own samples (for measurements with
    /// untimed set-up).
    pub fn sampled(mut self, name: &'static str, sample: impl FnMut() -> Sample + 'f) -> Self {
        self.subjects.push((name, Box::new(sample)));
        self
    }

    /// Takes `cfg.samples()` rounds and returns each subject's medians, in
    /// the order the subjects were added.
    pub fn run(self, cfg: Config) -> Vec<(&'static str, Measurement)> {
        self.run_rounds(cfg.samples())
    }

    /// Takes `rounds` rounds (for subjects whose every sample is a long
    /// multi-threaded run) and returns each subject's medians.
    pub fn run_rounds(mut self, rounds: usize) -> Vec<(&'static str, Measurement)> {
        let n = self.subjects.len();
        let mut samples: Vec<Vec<Sample>> = vec![Vec::with_capacity(rounds); n];
        for round in 0..rounds {
            // Each round starts with the next subject, so that none always
            // runs right after the same other one (whose cache and heap
            // footprint it would meet every time).
            for k in 0..n {
                let i = (round + k) % n;
                samples[i].push((self.subjects[i].1)());
            }
        }
        self.subjects
            .iter()
            .zip(samples)
            .map(|((name, _), s)| (*name, summarise(&s)))
            .collect()
    }
}

/// Medians per operation over `samples`.
fn summarise(samples: &[Sample]) -> Measurement {
    let per_op = |x: f64, s: &Sample| x / s.ops.max(1) as f64;
    let mut ns: Vec<f64> = samples.iter().map(|s| per_op(s.nanos, s)).collect();
    let mut ticks: Vec<f64> = samples.iter().map(|s| per_op(s.ticks as f64, s)).collect();
    Measurement {
        ns_per_op: median(&mut ns),
        ticks_per_op: knhk_core::ticks::AVAILABLE.then(|| median(&mut ticks)),
        ops: samples.iter().map(|s| s.ops).sum(),
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
    fn side_by_side_counts_operations() {
        let cfg = Config {
            quick: true,
            threads: 2,
        };
        let mut calls = 0_u64;
        let m = SideBySide::new()
            .batch(cfg, "count", 10, || calls += 1)
            .run(cfg)[0]
            .1;
        assert!(m.ops >= 10 * cfg.samples() as u64);
        assert!(m.ns_per_op >= 0.0);
        assert_eq!(m.ticks_per_op.is_some(), knhk_core::ticks::AVAILABLE);
    }
}
