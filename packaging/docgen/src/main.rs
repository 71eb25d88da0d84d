//! cordon-docgen OUT_DIR: writes the completions and manual pages the packages ship.

use anyhow::Context;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: cordon-docgen OUT_DIR")?
        .into();
    let written =
        cordon_docgen::generate(&out).with_context(|| format!("writing into {}", out.display()))?;
    println!("{} files in {}", written.len(), out.display());
    Ok(())
}
