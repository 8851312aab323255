//! A child process for the crash test: writes a store of many workflows to
//! the path given, slowly, so that the test can kill it mid-way.
//!
//! `store-writer-child PATH COUNT` prints `started` once the writer is
//! under way, then writes COUNT workflows and finishes.

use std::io::Write;

use knhk_workflow_engine::storage::WorkflowStoreWriter;
use knhk_workflow_engine::WorkflowSpecId;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: store-writer-child PATH COUNT")?;
    let count: u32 = args
        .next()
        .ok_or("usage: store-writer-child PATH COUNT")?
        .parse()?;
    let mut writer = WorkflowStoreWriter::create(&path)?;
    let payload = vec![b'w'; 1024];
    for n in 0..count {
        let mut id = [0_u8; 16];
        id[..4].copy_from_slice(&n.to_le_bytes());
        id[15] = 0xAB;
        writer.add(WorkflowSpecId::from_bytes(id), &payload)?;
        if n == 100 {
            println!("started");
            std::io::stdout().flush()?;
        }
        if n % 100 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    writer.finish()?;
    Ok(())
}
