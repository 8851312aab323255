//! `knhk-store`: build, inspect and check workflow store files.
//!
//! ```text
//! knhk-store pack DIR -o FILE          one file per workflow, named by its UUID
//! knhk-store pack --manifest LIST -o FILE   lines of "UUID PATH"
//! knhk-store pack --compress [--level N] [--no-dict] [--dict-size B] DIR -o FILE
//! knhk-store list FILE                 ids and sizes, in file order
//! knhk-store get FILE UUID             the workflow's bytes on stdout (decompressed)
//! knhk-store info FILE                 format, counts, sizes, compression
//! knhk-store verify FILE               check every checksum (and decompress)
//! knhk-store upgrade IN OUT [--compress ...]   rewrite any version as 3 (or 4)
//! knhk-store generate --count N DIR    N realistic workflow specs, one file each
//! ```
//!
//! Exit codes: 0 success, 1 the operation failed (bad input file, missing
//! workflow, I/O error), 2 the command line was wrong.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use knhk_std::storage::{MmapWorkflowStore, Version, WorkflowStoreWriter};
use knhk_std::store::{Compression, Stored};
use knhk_std::WorkflowSpecId;

/// Build, inspect and check knhk workflow store files.
#[derive(Parser, Debug)]
#[command(name = "knhk-store", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pack workflows into a new store (version 3, or 4 with `--compress`),
    /// replacing OUTPUT atomically.
    Pack {
        /// A directory with one file per workflow, each named by its UUID
        /// (an extension is allowed: `0b9c...e1.xml`).
        #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
        dir: Option<PathBuf>,
        /// A manifest instead of a directory: one `UUID PATH` per line
        /// (blank lines and lines starting with `#` are skipped; relative
        /// paths are relative to the manifest).
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// The store file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        compression: CompressArgs,
    },
    /// List the workflows: id and size, in file order.
    List {
        /// The store file.
        file: PathBuf,
    },
    /// Write one workflow's bytes to standard output.
    Get {
        /// The store file.
        file: PathBuf,
        /// The workflow's UUID.
        id: String,
    },
    /// Show the file's format version, workflow count and sizes.
    Info {
        /// The store file.
        file: PathBuf,
    },
    /// Check every checksum and that the index and the entries agree.
    Verify {
        /// The store file.
        file: PathBuf,
    },
    /// Write N realistic workflow specifications (YAWL Turtle, 1 to 32 KiB)
    /// into DIR, one file per workflow named by its UUID, ready for `pack`.
    Generate {
        /// How many.
        #[arg(long)]
        count: usize,
        /// The seed: the same seed gives the same files.
        #[arg(long, default_value_t = knhk_store::generate::DEFAULT_SEED)]
        seed: u64,
        /// The directory to write into (made if missing).
        dir: PathBuf,
    },
    /// Rewrite a store of any version as version 3 (uncompressed), or with
    /// `--compress` as version 4: either way, both ways.
    Upgrade {
        /// The store to read.
        input: PathBuf,
        /// The store to write (replaced atomically).
        output: PathBuf,
        #[command(flatten)]
        compression: CompressArgs,
    },
}

/// How to compress a store being written.
#[derive(Args, Debug)]
struct CompressArgs {
    /// Compress every workflow with zstd (format version 4).
    #[arg(long)]
    compress: bool,
    /// The zstd level (1 fastest to 22 smallest).
    #[arg(long, value_name = "N", requires = "compress", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(-7..=22))]
    level: i32,
    /// No shared dictionary: each workflow compressed on its own.
    #[arg(long, requires = "compress")]
    no_dict: bool,
    /// The dictionary's size in bytes, at most.
    #[arg(long, value_name = "B", requires = "compress", default_value_t = 112_640,
          value_parser = clap::value_parser!(u64).range(256..=(1 << 30)))]
    dict_size: u64,
}

impl CompressArgs {
    fn compression(&self) -> Option<Compression> {
        self.compress.then(|| {
            let mut compression = Compression::default();
            compression.level = self.level;
            compression.dictionary = !self.no_dict;
            compression.dictionary_size = self.dict_size as usize;
            compression.sample_bytes = compression.dictionary_size.saturating_mul(100);
            compression
        })
    }

    fn writer(&self, output: &Path) -> Result<WorkflowStoreWriter, Failure> {
        Ok(match self.compression() {
            Some(compression) => WorkflowStoreWriter::create_compressed(output, compression)?,
            None => WorkflowStoreWriter::create(output)?,
        })
    }
}

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pack {
            dir,
            manifest,
            output,
            compression,
        } => pack(dir.as_deref(), manifest.as_deref(), &output, &compression),
        Command::List { file } => list(&file),
        Command::Get { file, id } => get(&file, &id),
        Command::Info { file } => info(&file),
        Command::Verify { file } => verify(&file),
        Command::Upgrade {
            input,
            output,
            compression,
        } => upgrade(&input, &output, &compression),
        Command::Generate { count, seed, dir } => generate(count, seed, &dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("knhk-store: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn parse_id(text: &str) -> Result<WorkflowSpecId, Failure> {
    uuid::Uuid::parse_str(text.trim())
        .map(WorkflowSpecId)
        .map_err(|e| format!("{text:?} is not a UUID: {e}").into())
}

/// The (id, path) pairs to pack.
fn sources(
    dir: Option<&Path>,
    manifest: Option<&Path>,
) -> Result<Vec<(WorkflowSpecId, PathBuf)>, Failure> {
    let mut out = Vec::new();
    if let Some(manifest) = manifest {
        let text = std::fs::read_to_string(manifest)
            .map_err(|e| format!("cannot read the manifest {}: {e}", manifest.display()))?;
        let base = manifest.parent().unwrap_or(Path::new("."));
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, path) = line.split_once(char::is_whitespace).ok_or_else(|| {
                format!(
                    "{}:{}: expected `UUID PATH`, got {line:?}",
                    manifest.display(),
                    n + 1
                )
            })?;
            let id = parse_id(id).map_err(|e| format!("{}:{}: {e}", manifest.display(), n + 1))?;
            out.push((id, base.join(path.trim())));
        }
    } else if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
            if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                continue;
            }
            let path = entry.path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let id = parse_id(stem).map_err(|e| {
                format!(
                    "{}: files to pack must be named by their UUID ({e})",
                    path.display()
                )
            })?;
            out.push((id, path));
        }
        // Directory order is arbitrary; sorted input gives the same file twice.
        out.sort_by(|a, b| a.1.cmp(&b.1));
    }
    Ok(out)
}

fn pack(
    dir: Option<&Path>,
    manifest: Option<&Path>,
    output: &Path,
    compression: &CompressArgs,
) -> Result<(), Failure> {
    let sources = sources(dir, manifest)?;
    let progress = bar(sources.len() as u64, "packing");
    let mut writer = compression.writer(output)?;
    for (id, path) in &sources {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        writer
            .add(*id, &data)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        progress.inc(1);
    }
    let size = writer.finish()?;
    progress.finish_and_clear();
    eprintln!(
        "packed {} workflows into {} ({size} bytes)",
        sources.len(),
        output.display()
    );
    Ok(())
}

fn generate(count: usize, seed: u64, dir: &Path) -> Result<(), Failure> {
    use knhk_store::generate::{uuid_text, Generator};
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let progress = bar(count as u64, "generating");
    let mut bytes = 0;
    for spec in Generator::new(seed).take(count) {
        let path = dir.join(format!("{}.ttl", uuid_text(&spec.id)));
        std::fs::write(&path, &spec.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        bytes += spec.text.len();
        progress.inc(1);
    }
    progress.finish_and_clear();
    eprintln!(
        "wrote {count} workflow specifications ({bytes} bytes) into {}",
        dir.display()
    );
    Ok(())
}

fn open(file: &Path) -> Result<MmapWorkflowStore, Failure> {
    Ok(MmapWorkflowStore::new(file)?)
}

fn list(file: &Path) -> Result<(), Failure> {
    let store = open(file)?;
    let mut out = std::io::stdout().lock();
    for entry in store.stored_entries() {
        let (id, stored) = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        writeln!(out, "{id}\t{}", stored.len())?;
    }
    Ok(())
}

fn get(file: &Path, id: &str) -> Result<(), Failure> {
    let id = parse_id(id)?;
    let store = open(file)?;
    let data = store
        .read(&id)?
        .ok_or_else(|| format!("{}: workflow {id}: no workflow has this id", file.display()))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&data)?;
    out.flush()?;
    Ok(())
}

fn info(file: &Path) -> Result<(), Failure> {
    let store = open(file)?;
    let (mut payload, mut stored_bytes) = (0_u64, 0_u64);
    for entry in store.stored_entries() {
        let (_, stored) = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        payload += stored.len() as u64;
        stored_bytes += match stored {
            Stored::Plain(data) => data.len(),
            Stored::Zstd(frame) => frame.frame.len(),
        } as u64;
    }
    println!("file:       {}", file.display());
    println!(
        "format:     version {}",
        match store.version() {
            Version::V1 => "1 (entries only: lookups scan; `knhk-store upgrade` adds an index)",
            Version::V2 => "2 (indexed, 40-byte slots; `knhk-store upgrade` compacts the index)",
            Version::V3 => "3 (compact index: one cache line per lookup)",
            Version::V4 => "4 (compact index, zstd-compressed workflows)",
            _ => "(newer than this tool describes)",
        }
    );
    println!("workflows:  {}", store.len());
    println!(
        "size:       {} bytes ({payload} of workflow data)",
        store.size()
    );
    if store.version() == Version::V3 {
        println!(
            "frames:     {}",
            if store.is_aligned() {
                "aligned: each frame and its first 8 bytes in one cache line"
            } else {
                "back to back (`knhk-store upgrade` aligns them)"
            }
        );
    }
    if let Some(format) = store.archive_format() {
        println!("payloads:   archives ({format}), 16-byte aligned");
    }
    if let Some(zstd) = store.compression() {
        let ratio = |part: u64| {
            if payload == 0 {
                0.0
            } else {
                part as f64 / payload as f64
            }
        };
        println!(
            "compressed: {stored_bytes} bytes of frames, {:.3} of the data; file {:.3} of it",
            ratio(stored_bytes),
            ratio(store.size() as u64)
        );
        println!("level:      {}", zstd.level());
        match zstd.dictionary() {
            Some(dictionary) => println!("dictionary: {} bytes", dictionary.len()),
            None => println!("dictionary: none"),
        }
        println!("largest:    {} bytes uncompressed", zstd.largest());
    }
    Ok(())
}

fn verify(file: &Path) -> Result<(), Failure> {
    let store = open(file)?;
    // First every entry, with progress (this reads the file once); then the
    // full check of checksums and index against entries.
    let progress = bar(store.len() as u64, "reading");
    for entry in store.stored_entries() {
        entry.map_err(|e| format!("{}: {e}", file.display()))?;
        progress.inc(1);
    }
    progress.set_message("verifying");
    store.verify()?;
    progress.finish_and_clear();
    println!("{}: ok ({} workflows)", file.display(), store.len());
    Ok(())
}

fn upgrade(input: &Path, output: &Path, compression: &CompressArgs) -> Result<(), Failure> {
    let store = open(input)?;
    let progress = bar(store.len() as u64, "rewriting");
    let mut writer = compression.writer(output)?;
    let ids = store.list_workflows();
    if ids.len() != store.len() {
        // Listing stops at the first damaged entry: name it.
        if let Some(Err(e)) = store.stored_entries().find(Result::is_err) {
            return Err(format!("{}: {e}", input.display()).into());
        }
    }
    let mut data = Vec::new();
    for id in ids {
        store.read_into(&id, &mut data)?;
        writer.add(id, &data)?;
        progress.inc(1);
    }
    let size = writer.finish()?;
    progress.finish_and_clear();
    eprintln!(
        "wrote {} workflows to {} as version {} ({size} bytes)",
        store.len(),
        output.display(),
        if compression.compress { 4 } else { 3 }
    );
    Ok(())
}
