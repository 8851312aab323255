//! What the report ran on.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The machine and build a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model name, from `/proc/cpuinfo` where there is one.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
    /// Operating system.
    pub os: &'static str,
    /// Architecture.
    pub arch: &'static str,
    /// Compiler that built the report.
    pub rustc: &'static str,
    /// Instruction-set extensions detected at run time.
    pub cpu_features: Vec<&'static str>,
    /// The tier knhk's kernels run (after any `KNHK_SIMD` cap).
    pub kernel_instruction_set: &'static str,
    /// The tick counter (`rdtsc`, `cntvct_el0`, or none).
    pub tick_source: String,
    /// Ticks per nanosecond, calibrated against the wall clock.
    pub ticks_per_ns: Option<f64>,
    /// Whether the run used `--quick`.
    pub quick: bool,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
}

impl Machine {
    /// Describes this machine, calibrating the tick counter for ~20 ms.
    pub fn detect(quick: bool) -> Machine {
        Machine {
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            rustc: env!("KNHK_RUSTC_VERSION"),
            cpu_features: cpu_features(),
            kernel_instruction_set: knhk_core::kernels::active_instruction_set(),
            tick_source: format!("{:?}", knhk_core::ticks::SOURCE),
            ticks_per_ns: ticks_per_ns(),
            quick,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            found.push("sse4.2");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx512bw") {
            found.push("avx512bw");
        }
        if std::arch::is_x86_feature_detected!("avx512vl") {
            found.push("avx512vl");
        }
        if std::arch::is_x86_feature_detected!("avx512dq") {
            found.push("avx512dq");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            found.push("neon");
        }
    }
    found
}

fn ticks_per_ns() -> Option<f64> {
    if !knhk_core::ticks::AVAILABLE {
        return None;
    }
    let start = Instant::now();
    let t0 = knhk_core::ticks::read();
    while start.elapsed() < Duration::from_millis(20) {
        std::hint::spin_loop();
    }
    let t1 = knhk_core::ticks::read();
    let ns = start.elapsed().as_nanos() as f64;
    Some(t1.wrapping_sub(t0) as f64 / ns)
}
