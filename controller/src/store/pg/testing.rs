//! A private PostgreSQL cluster for tests: one per test binary, started on first use from
//! Debian's binaries (`/usr/lib/postgresql/<version>/bin`, the newest installed) in a temporary
//! directory, listening only on a unix socket in that directory (no TCP), with fsync off.
//! Each test gets a fresh, empty database of its own (`t_1`, `t_2`, ...).
//!
//! initdb and the server refuse to run as root, so as root they run as the `postgres` system
//! user (the directory is given to it). The cluster lives as long as the test binary: a
//! watchdog process, in a session of its own, waits for the binary to exit (however it
//! exits: tests passed, failed, panicked or the binary was killed), then stops the server
//! (`pg_ctl stop -m immediate`) and removes the directory.
//!
//! Without PostgreSQL installed a test skips visibly (`cordon_skips`), except under CI=true,
//! where it fails.

use super::PgOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Debian's PostgreSQL binaries.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";

struct Cluster {
    /// The cluster's directory: `data/`, the server's log and its socket.
    dir: PathBuf,
    /// PostgreSQL's binaries.
    bin: PathBuf,
    /// Databases made so far.
    made: AtomicUsize,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// A fresh empty database on this binary's cluster, or None when PostgreSQL is not
/// installed and the test may skip (`test` names it in the skip).
pub async fn database(test: &str) -> Option<PgOptions> {
    let Some(bin) = bin_dir() else {
        if cordon_skips::in_ci() {
            panic!("{test} needs PostgreSQL ({INSTALL_ROOT}/*/bin) and CI=true: refusing to skip");
        }
        cordon_skips::skip(
            test,
            "needs PostgreSQL (apt-get install postgresql; scripts/test.sh does)",
        );
        return None;
    };
    let cluster = CLUSTER
        .get_or_init(|| Cluster::start(&bin))
        .as_ref()
        .unwrap_or_else(|e| panic!("starting the test PostgreSQL cluster: {e}"));
    let n = cluster.made.fetch_add(1, Ordering::SeqCst) + 1;
    let name = format!("t_{n}");
    let admin = cluster.url("postgres");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test cluster");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    drop(client);
    let _ = connection.await;
    let mut options = PgOptions::new(cluster.url(&name));
    options.pool_size = 4;
    Some(options)
}

/// Stops this binary's cluster (every test database goes away with it until
/// [`start_cluster`]): for tests of a database outage, alone in their test binary.
pub fn stop_cluster() {
    cluster().pg_ctl("stop").expect("stopping the test cluster");
}

/// Starts this binary's cluster again after [`stop_cluster`].
pub fn start_cluster() {
    cluster()
        .pg_ctl("start")
        .expect("starting the test cluster");
}

fn cluster() -> &'static Cluster {
    let started = CLUSTER.get().expect("the test cluster was never started");
    started.as_ref().expect("the test cluster")
}

/// The newest installed version's `bin/`, if any.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(INSTALL_ROOT)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s.lines().find(|l| l.starts_with("Uid:"))?;
            uid.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// `program` as the user that may run PostgreSQL: `postgres` when this is root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{what}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

impl Cluster {
    fn start(bin: &Path) -> Result<Self, String> {
        // In /tmp whatever TMPDIR says: the postgres user must reach it, and the socket's path
        // must stay under the 107 bytes a unix socket address holds.
        let dir = tempfile::Builder::new()
            .prefix("cordon-pg-")
            .tempdir_in("/tmp")
            .map_err(|e| format!("making a directory: {e}"))?
            .keep();
        let cluster = Self {
            dir,
            bin: bin.to_path_buf(),
            made: AtomicUsize::new(0),
        };
        let data = cluster.dir.join("data");
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&cluster.dir);
            run(chown, "giving the directory to postgres")?;
        }
        cluster.watch(bin)?;
        let mut initdb = as_server_user(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb, "initdb")?;
        cluster.pg_ctl("start")?;
        Ok(cluster)
    }

    /// Starts (`start`) or stops (`stop`, fast) the server.
    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let data = self.dir.join("data");
        let mut server = as_server_user(&self.bin.join("pg_ctl"));
        server.arg(action).arg("-w").arg("-D").arg(&data);
        if action == "start" {
            let options = format!(
                "-k {} -c listen_addresses='' -c fsync=off -c max_connections=200",
                self.dir.display()
            );
            server.arg("-l").arg(self.dir.join("server.log"));
            server.args(["-o", &options]);
        } else {
            server.args(["-m", "fast"]);
        }
        server.stdin(Stdio::null());
        run(server, &format!("pg_ctl {action}"))
    }

    /// Starts the process that stops the server and removes the directory once this test
    /// binary has exited.
    fn watch(&self, bin: &Path) -> Result<(), String> {
        let stop = match is_root() {
            true => "runuser -u postgres -- \"$2\" stop -D \"$3/data\" -m immediate",
            false => "\"$2\" stop -D \"$3/data\" -m immediate",
        };
        let script = format!(
            "while kill -0 \"$1\" 2>/dev/null; do sleep 0.2; done
             [ -e \"$3/data/postmaster.pid\" ] && {stop} >/dev/null 2>&1
             rm -rf \"$3\""
        );
        Command::new("setsid")
            .args(["sh", "-c", &script, "cordon-pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(bin.join("pg_ctl"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the cluster's watchdog: {e}"))?;
        Ok(())
    }

    /// A connection string for one of the cluster's databases.
    fn url(&self, database: &str) -> String {
        format!(
            "host={} user=postgres dbname={database}",
            self.dir.display()
        )
    }
}

/// The database of `o` as a `[store] url` takes it: `postgresql://`, with the cluster's
/// socket directory as the (percent-encoded) host.
pub fn store_url(o: &PgOptions) -> String {
    let config: tokio_postgres::Config = o.url.parse().expect("a test database's settings");
    let Some(tokio_postgres::config::Host::Unix(dir)) = config.get_hosts().first() else {
        panic!("the test cluster listens on a unix socket");
    };
    let host = dir.display().to_string().replace('/', "%2F");
    let db = config.get_dbname().expect("a database name");
    format!("postgresql://postgres@{host}/{db}")
}
