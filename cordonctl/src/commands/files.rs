//! `cordonctl files`: fetch one file from a host (`fetch AGENT PATH`: the agent copies it,
//! the controller checks its SHA-256 and keeps it), list the files fetched, and download one
//! (`get ID -o PATH`: written with mode 0600, never over an existing file unless `--force`,
//! and its SHA-256 checked again against the stored one).

use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::{call, submit};
use crate::text::time;
use clap::Subcommand;
use cordon_proto::*;
use ring::digest::{Context, SHA256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum FilesCmd {
    /// Fetches one regular file from a host (the agent refuses anything else, and its own
    /// files), and prints the fetched file's id, size and SHA-256.
    Fetch {
        /// Agent id (or an unambiguous prefix).
        agent: String,
        /// Absolute path on the host.
        path: String,
        /// The most bytes to take (0: the agent's limit, 100 MiB unless configured).
        #[arg(long, default_value_t = 0)]
        max_bytes: u64,
        /// Seconds to wait for the file.
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Lists fetched files, newest first.
    List {
        /// Only files from this agent (id or prefix).
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Downloads a fetched file (its bytes may be malware: handle with care).
    Get {
        /// The fetched file's id (the fetch command's).
        id: String,
        /// Where to write it (mode 0600).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Replace the file at the output path if there is one.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: FilesCmd) -> Result<(), CtlError> {
    match cmd {
        FilesCmd::Fetch {
            agent,
            path,
            max_bytes,
            wait,
        } => fetch(admin, agent, path, max_bytes, wait).await,
        FilesCmd::List { agent, json } => {
            let req = ListFetchedFilesRequest {
                agent_id: agent.unwrap_or_default(),
                limit: 0,
            };
            let files = call(admin.list_fetched_files(req)).await?.files;
            if json {
                return crate::json::print_lines(&files);
            }
            for f in &files {
                println!(
                    "{}  {}  {:>10}  {}  {}  {}",
                    f.id,
                    f.agent_id,
                    f.size,
                    f.sha256,
                    time(f.fetched_at_ms),
                    crate::term::clean(&f.path)
                );
            }
            Ok(())
        }
        FilesCmd::Get { id, output, force } => get(admin, id, &output, force).await,
    }
}

async fn fetch(
    admin: &mut AdminClient,
    agent: String,
    path: String,
    max_bytes: u64,
    wait: u64,
) -> Result<(), CtlError> {
    let action = action::Kind::FetchFile(FetchFile { path, max_bytes });
    let (rec, _) = submit(admin, agent, action, wait).await?;
    let Some(command_result::Output::Fetched(f)) =
        rec.result.as_ref().and_then(|r| r.output.as_ref())
    else {
        return Err(CtlError::Command("the agent sent no file".into()));
    };
    println!("{}  {} bytes  sha256 {}", rec.command_id, f.size, f.sha256);
    Ok(())
}

/// Downloads file `id` to `output` and checks what was written against the stored hash; on
/// any failure the output file is removed.
async fn get(
    admin: &mut AdminClient,
    id: String,
    output: &Path,
    force: bool,
) -> Result<(), CtlError> {
    let out = create(output, force)?;
    let done = download(admin, &id, out, output).await;
    match &done {
        Ok((written, hash)) => println!(
            "wrote {written} bytes to {}; sha256 {hash} matches the stored hash",
            output.display()
        ),
        Err(_) => {
            let _ = std::fs::remove_file(output);
        }
    }
    done.map(|_| ())
}

/// Streams file `id` into `out`; the bytes written and their SHA-256, if it is the stored one.
async fn download(
    admin: &mut AdminClient,
    id: &str,
    mut out: std::fs::File,
    output: &Path,
) -> Result<(u64, String), CtlError> {
    let req = DownloadFileRequest { id: id.to_string() };
    let mut stream = call(admin.download_file(req)).await?;
    let write = |source| CtlError::Write {
        path: output.to_path_buf(),
        source,
    };
    let refused = |s: tonic::Status| CtlError::Refused {
        message: cordon_proto::status::describe(&s),
        code: s.code(),
    };
    let (mut hash, mut written, mut stored) = (Context::new(&SHA256), 0u64, None);
    while let Some(chunk) = stream.message().await.map_err(refused)? {
        stored = stored.or(chunk.file);
        hash.update(&chunk.data);
        out.write_all(&chunk.data).map_err(write)?;
        written += chunk.data.len() as u64;
    }
    out.sync_all().map_err(write)?;
    let file =
        stored.ok_or_else(|| CtlError::Command(format!("file {id} came without its record")))?;
    let got = hex::encode(hash.finish());
    if got != file.sha256 || written != file.size {
        return Err(CtlError::Command(format!(
            "the download does NOT match the stored file ({written} of {} bytes, sha256 {got}, \
             stored {}); {} removed",
            file.size,
            file.sha256,
            output.display()
        )));
    }
    Ok((written, got))
}

/// Opens `path` for writing with mode 0600: a new file, or with `force` one replacing what is
/// there (never through a symlink).
fn create(path: &Path, force: bool) -> Result<std::fs::File, CtlError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let file = o.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => CtlError::Input(format!(
            "{} exists: pass --force to replace it",
            path.display()
        )),
        _ => CtlError::Write {
            path: path.to_path_buf(),
            source,
        },
    })?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| CtlError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(file)
}
