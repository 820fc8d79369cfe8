//! A throwaway PostgreSQL for the catalog's tests: Debian's `postgresql` (initdb and
//! pg_ctl from `/usr/lib/postgresql/N/bin`), a cluster in a temp dir, listening on a free
//! 127.0.0.1 port with trust authentication, stopped and deleted when dropped.
//!
//! initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
//! the package creates, and every command runs through `runuser -u postgres`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; see the module docs.
pub struct RealPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
    _dir: tempfile::TempDir,
}

impl RealPostgres {
    /// Creates a cluster and starts it, waiting until it accepts connections.
    pub fn start() -> RealPostgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("layerpipe-pg-").tempdir().expect("a temp dir");
        let as_root = is_root();
        if as_root {
            run(Command::new("chown").args(["postgres:postgres"]).arg(dir.path()), "chown the cluster's dir");
        }
        let data = dir.path().join("data");
        let mut pg = RealPostgres { bin, data, port: 0, as_root, _dir: dir };
        let initdb = pg.bin.join("initdb");
        pg.run_as_owner(
            Command::new(initdb).arg("-D").arg(&pg.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]),
            "initdb",
        );
        pg.port = free_port();
        let sockets = pg.data.parent().unwrap().to_owned();
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            sockets.display(),
            pg.port
        );
        let log = sockets.join("postgres.log");
        let pg_ctl = pg.bin.join("pg_ctl");
        pg.run_as_owner(
            Command::new(pg_ctl)
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        );
        pg
    }

    /// A connection URL for the database `postgres`, as the superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs SQL with psql, failing the test on an error.
    pub fn psql(&self, sql: &str) -> String {
        let out = run(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-c", sql]),
            "psql",
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn run_as_owner(&self, command: &mut Command, what: &str) {
        if self.as_root {
            let program = command.get_program().to_owned();
            let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
            run(Command::new("runuser").args(["-u", "postgres", "--"]).arg(program).args(args), what);
        } else {
            run(command, what);
        }
    }
}

impl Drop for RealPostgres {
    fn drop(&mut self) {
        let mut stop = Command::new(self.bin.join("pg_ctl"));
        stop.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        let stop = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(stop.get_program()).args(stop.get_args());
            c.output()
        } else {
            stop.output()
        };
        let _ = stop;
    }
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|_| panic!("PostgreSQL not installed: run apt-get install -y postgresql"))
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect("initdb in /usr/lib/postgresql/N/bin: apt-get install -y postgresql")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(command: &mut Command, what: &str) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
