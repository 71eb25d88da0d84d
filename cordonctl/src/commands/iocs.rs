//! `cordonctl iocs import`: an indicator list from a file, checked line by line here first
//! (one bad line refuses the whole file, naming the line, before anything is sent), then
//! sent in parts that fit the admin service's message limit.

use crate::chunks;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::{clean, outln};
use clap::Subcommand;
use cordon_proto::ImportIocsRequest;
use cordon_proto::limits::MAX_IOCS;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum IocsCmd {
    /// Imports indicators from a file, one per line (blank lines and # comments skipped).
    Import {
        /// The indicator file.
        file: PathBuf,
        /// sha256, ip or domain.
        #[arg(long)]
        kind: String,
        /// The list's name (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// Mark the list as a block list (sha256 only): agents deny the exec of its files,
        /// in the kernel, and report each denial. A list stays a block list once marked.
        #[arg(long)]
        block: bool,
    },
}

/// What the parts of an import added up to.
#[derive(Default)]
struct Totals {
    added: u32,
    present: u32,
    size: u64,
    warnings: Vec<String>,
}

pub async fn run(admin: &mut AdminClient, cmd: IocsCmd) -> Result<(), CtlError> {
    let IocsCmd::Import {
        file,
        kind,
        name,
        block,
    } = cmd;
    let text = std::fs::read_to_string(&file).map_err(CtlError::read(&file))?;
    let values = ioc_values(&file, &text, &kind)?;
    let list = name.unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(|| "iocs".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut t = Totals::default();
    for values in chunks::split(values, String::len, MAX_IOCS) {
        let request = ImportIocsRequest {
            kind: kind.clone(),
            list: list.clone(),
            values,
            block,
        };
        let r = call(admin.import_iocs(request))
            .await
            .map_err(|e| CtlError::Partial {
                done: t.added + t.present,
                source: Box::new(e),
            })?;
        (t.added, t.present, t.size) = (
            t.added + r.added,
            t.present + r.already_present,
            r.list_size,
        );
        t.warnings.extend(r.warnings);
    }
    for w in &t.warnings {
        eprintln!("warning: {}", clean(w));
    }
    let blocked = if block {
        " (block list: its files are denied at exec)"
    } else {
        ""
    };
    outln!(
        "{kind} list {list}: {} added, {} already present, {} in all{blocked}",
        t.added,
        t.present,
        t.size
    );
    Ok(())
}

/// The indicators of a file, one per line (blank lines and # comments skipped), each checked
/// with the controller's own normalisation.
fn ioc_values(file: &Path, text: &str, kind: &str) -> Result<Vec<String>, CtlError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, v)| {
            cordon_detect::iocs::normalise(kind, v)
                .map(|_| v.to_string())
                .map_err(|why| CtlError::Input(format!("{}:{line}: {why}", file.display())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_line_refuses_the_file_naming_it() {
        let text = "# hashes\n\n1.2.3.4\n  5.6.7.8 \nnot-an-ip\n";
        let err = ioc_values(Path::new("x.txt"), text, "ip").unwrap_err();
        assert!(err.to_string().starts_with("x.txt:5: "), "{err}");
        let ok = ioc_values(Path::new("x.txt"), "1.2.3.4\n# c\n::1\n", "ip").unwrap();
        assert_eq!(ok, ["1.2.3.4", "::1"]);
    }
}
