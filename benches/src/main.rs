//! The knhk report: every knhk implementation measured beside its baselines
//! in one process, printed as tables with ratios and written to
//! `target/knhk-report/report.{json,md}`.
//!
//! ```text
//! cargo run --release -p knhk-benches                 # everything
//! cargo run --release -p knhk-benches -- --quick      # under a minute, for CI
//! cargo run --release -p knhk-benches -- --only arena
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use knhk_benches::harness::Config;
use knhk_benches::heap_count::{HeapCount, HEAP_COUNT};
use knhk_benches::machine::Machine;
use knhk_benches::output::Report;
use knhk_benches::sections::{Context, ALL};

// Counts heap allocations for the `allocations` section (off otherwise).
#[global_allocator]
static GLOBAL: knhk_core::alloc_stats::CountingAlloc<std::alloc::System, &HeapCount> =
    knhk_core::alloc_stats::CountingAlloc::with_tally(std::alloc::System, &HEAP_COUNT);

/// Measures knhk against its baselines and writes report.json and report.md.
#[derive(Parser, Debug)]
#[command(name = "knhk-report", version, about)]
struct Args {
    /// Fewer and shorter samples: the whole run in under a minute. Every case
    /// that an issue names as a target is still measured.
    #[arg(long)]
    quick: bool,

    /// Run only this section (repeat for several).
    #[arg(long = "only", value_name = "SECTION")]
    only: Vec<String>,

    /// Where to write the JSON report [default: target/knhk-report/report.json].
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,

    /// Threads for the multi-threaded cases (false sharing, allocator
    /// statistics).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=256))]
    threads: u16,

    /// List the sections and exit.
    #[arg(long)]
    list: bool,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for s in ALL {
            println!("{:<16} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let unknown: Vec<&String> = args
        .only
        .iter()
        .filter(|name| !ALL.iter().any(|s| s.name == name.as_str()))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        eprintln!(
            "error: unknown section(s) {}; the sections are: {}",
            unknown
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; its timings mean little. Use --release.");
    }

    // KNHK_SIMD caps the kernels' tier (for a run on AVX2 on an AVX-512
    // machine, say); the report names the tier it ran.
    if let Err(e) = knhk_std::performance::simd::cap_instruction_set_from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cfg = Config {
        quick: args.quick,
        threads: usize::from(args.threads),
    };
    let machine = Machine::detect(args.quick);
    let mut ctx = Context::new(cfg);
    let mut targets = Vec::new();
    for section in ALL {
        if !args.only.is_empty() && !args.only.iter().any(|n| n == section.name) {
            continue;
        }
        (section.run)(&mut ctx);
        targets.extend(
            section
                .targets
                .iter()
                .map(|t| t.check(section.name, &ctx.rows)),
        );
    }
    let report = Report {
        schema: 1,
        machine,
        rows: ctx.rows,
        targets,
    };

    let markdown = report.to_markdown();
    println!("{markdown}");
    let dir = knhk_benches::report_dir();
    let json_path = args.json.unwrap_or_else(|| dir.join("report.json"));
    let md_path = dir.join("report.md");
    for (path, text) in [(&json_path, report.to_json()), (&md_path, markdown)] {
        if let Err(e) = write(path, &text) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    ExitCode::SUCCESS
}
