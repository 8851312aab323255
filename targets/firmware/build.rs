//! Puts `memory.x` where the linker finds it, and writes the version-3
//! store the firmware reads, with knhk-std's writer (on the host).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("memory.x"), include_bytes!("memory.x"))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");

    let path = out.join("store.bin");
    let mut writer = knhk_std::storage::WorkflowStoreWriter::create(&path)?;
    for n in 1..=20_u8 {
        let id = knhk_std::WorkflowSpecId::from_bytes([n; 16]);
        let data: Vec<u8> = (0..n as usize * 3).map(|i| (i as u8) ^ n).collect();
        writer.add(id, &data)?;
    }
    writer.finish()?;
    Ok(())
}
