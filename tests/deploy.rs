//! The deployment files in `deploy/` that can be checked on this machine without a
//! Docker engine, a systemd-run machine or a cluster (see deploy/README.md):
//!
//! - `layerpipe.service`: `systemd-analyze verify` (no unknown keys or bad values) and
//!   `systemd-analyze security --offline` (the sandbox stays tight);
//! - `Dockerfile`: its `HEALTHCHECK` command, run as it is against layerpipe; its user
//!   and group made by its own `groupadd`/`useradd` lines (run on a scratch copy of
//!   `/etc`), and the binary started as its `USER`, with the config owned and moded as its
//!   `COPY` says, reading that config and serving;
//! - `kubernetes.yaml`: parsed (PyYAML), its config parsed by layerpipe's own parser;
//! - all three: the layer index store has a writable place of its own, and layerpipe's
//!   default `index.dir` under each one's environment is that place.
//!
//! `nginx.conf` is checked by tests/nginx.rs. Needs `systemd-analyze` (package `systemd`),
//! `bash`, `/usr/bin/python3` with PyYAML (package `python3-yaml`), `useradd`, `groupadd`
//! (package `passwd`) and `setpriv` (package `util-linux`), and root, to change users.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use layerpipe::config::Config;
use layerpipe::routes::App;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// The highest `systemd-analyze security` exposure allowed, in its tenths (20 is 2.0,
/// "OK"; the unit scores about 1.1).
const MAX_EXPOSURE: u32 = 20;

/// How long the health check command may take.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Debian's Python, for its YAML parser (package `python3-yaml`).
const PYTHON: &str = "/usr/bin/python3";

/// How long layerpipe may take to start and open its index store.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

fn systemd_analyze() -> &'static str {
    if !Path::new(SYSTEMD_ANALYZE).is_file() {
        panic!("systemd-analyze not installed: run apt-get install -y systemd");
    }
    SYSTEMD_ANALYZE
}

/// `deploy/layerpipe.service` with its binary path pointed at this build's layerpipe
/// (`verify` insists that ExecStart's program exists), in a temp dir.
fn unit_for_this_build() -> (tempfile::TempDir, PathBuf) {
    let unit = std::fs::read_to_string(deploy_file("layerpipe.service")).expect("read deploy/layerpipe.service");
    const BINARY: &str = "/usr/local/bin/layerpipe";
    assert!(unit.contains(&format!("ExecStart={BINARY} ")), "ExecStart runs {BINARY}");
    let dir = tempfile::Builder::new().prefix("layerpipe-unit-").tempdir().expect("temp dir");
    let path = dir.path().join("layerpipe.service");
    std::fs::write(&path, unit.replace(BINARY, env!("CARGO_BIN_EXE_layerpipe"))).expect("write the unit");
    (dir, path)
}

#[test]
fn systemd_unit_verifies_cleanly() {
    let (_dir, unit) = unit_for_this_build();
    let output = Command::new(systemd_analyze())
        .arg("verify")
        .arg("--man=no")
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Unknown keys and bad values are only warnings ("…, ignoring."): none is allowed.
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify layerpipe.service:\n{said}");
}

#[test]
fn systemd_unit_sandbox_exposure_is_low() {
    let (_dir, unit) = unit_for_this_build();
    let output = Command::new(systemd_analyze())
        .arg("security")
        .arg("--offline=yes")
        .arg(format!("--threshold={MAX_EXPOSURE}"))
        .arg("--no-pager")
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze security");
    let said = String::from_utf8_lossy(&output.stdout);
    let overall = said.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("(no overall level)");
    assert!(
        output.status.success(),
        "exposure above {MAX_EXPOSURE} tenths: {overall}\n{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{overall}");
}

/// The `HEALTHCHECK … CMD [...]` of `deploy/Dockerfile`, as the argument vector Docker runs.
fn dockerfile_healthcheck() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(deploy_file("Dockerfile")).expect("read deploy/Dockerfile");
    // Instructions continue over lines ending in a backslash.
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.starts_with("HEALTHCHECK ")).expect("a HEALTHCHECK instruction");
    let (_, command) = line.split_once(" CMD ").expect("HEALTHCHECK … CMD");
    serde_json::from_str(command.trim())
        .unwrap_or_else(|e| panic!("CMD is not an exec-form JSON array ({e}): {command}"))
}

/// Runs the health check against 127.0.0.1:`port` instead of 8042; whether it passed.
async fn run_healthcheck(command: &[String], port: u16) -> bool {
    let args: Vec<String> = command.iter().map(|a| a.replace("127.0.0.1/8042", &format!("127.0.0.1/{port}"))).collect();
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]));
    // Polled, not waited on: the runtime must go on serving the layerpipe being checked.
    let deadline = tokio::time::Instant::now() + HEALTHCHECK_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("poll the health check") {
            return status.success();
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the health check did not finish within {HEALTHCHECK_TIMEOUT:?}: {args:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfile_healthcheck_tells_healthy_from_not() {
    let command = dockerfile_healthcheck();
    assert!(command.iter().any(|a| a.contains("127.0.0.1/8042")), "it checks port 8042: {command:?}");
    assert!(command.iter().any(|a| a.contains("/healthz")), "it asks /healthz: {command:?}");

    // layerpipe, as the container runs it (defaults; nothing asks a registry).
    let app = Arc::new(App::new(Arc::new(Config::default())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind layerpipe");
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(layerpipe::server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    assert!(run_healthcheck(&command, port).await, "healthy layerpipe on port {port}: the check must pass");

    // Something that answers, but not 200.
    let unhealthy = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let unhealthy_port = unhealthy.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = unhealthy.accept().await {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        }
    });
    assert!(!run_healthcheck(&command, unhealthy_port).await, "a 503 must fail the check");

    // Nothing listening.
    let closed = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(!run_healthcheck(&command, closed_port).await, "a closed port must fail the check");
    let _ = stop.send(());
}

// ---------------------------------------------------------------------------------------
// The layer index store: a writable place of its own in each deployment.

/// Where layerpipe opens its index store when its config leaves `index.dir` to the
/// default, with `XDG_CACHE_HOME` (and nothing else) in its environment: the real
/// binary, started without a config, and the one folder it then creates in
/// `xdg_cache_home` (which must be empty).
fn default_store_with_xdg_cache_home(xdg_cache_home: &Path) -> PathBuf {
    std::fs::create_dir_all(xdg_cache_home).expect("create XDG_CACHE_HOME");
    let binary = env!("CARGO_BIN_EXE_layerpipe");
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0"])
        // No HOME: the default must come from XDG_CACHE_HOME alone, as in the image and
        // under systemd's DynamicUser.
        .env_clear()
        .env("XDG_CACHE_HOME", xdg_cache_home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    let stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let deadline = Instant::now() + START_TIMEOUT;
    let made = loop {
        let made: Vec<PathBuf> = std::fs::read_dir(xdg_cache_home)
            .expect("read XDG_CACHE_HOME")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        if !made.is_empty() || Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            break made;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = reader.join().expect("the log reader").join("\n");
    assert_eq!(made.len(), 1, "layerpipe should create one folder in {}: {made:?}\n{log}", xdg_cache_home.display());
    assert!(made[0].is_dir(), "{made:?}");
    assert!(!log.contains("cannot open the index store"), "{log}");
    made.into_iter().next().unwrap()
}

/// `path`, absolute, as a path under `root` (a temp dir standing in for `/`).
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.strip_prefix('/').unwrap_or_else(|| panic!("{path} should be absolute")))
}

/// The `Key=Value` settings of a unit file, in order (comments and sections skipped).
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Where systemd puts `CacheDirectory=` of a system service (systemd.exec(5)).
const SYSTEMD_CACHE_ROOT: &str = "/var/cache";

#[test]
fn systemd_unit_gives_the_index_store_its_cache_directory() {
    let unit = std::fs::read_to_string(deploy_file("layerpipe.service")).expect("read deploy/layerpipe.service");
    let settings = unit_settings(&unit);
    let all = |key: &str| -> Vec<&str> { settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect() };
    // The sandbox makes everything else read-only: the cache directory is the exception
    // systemd makes, and the only one.
    assert_eq!(all("ProtectSystem"), ["strict"]);
    assert!(all("ReadWritePaths").is_empty() && all("StateDirectory").is_empty(), "{settings:?}");
    assert_eq!(all("CacheDirectory"), ["layerpipe"]);
    assert_eq!(all("CacheDirectoryMode"), ["0700"], "indexes list private images' files: the service's alone");
    let cache_directory = format!("{SYSTEMD_CACHE_ROOT}/layerpipe");
    let xdg: Vec<&str> = all("Environment").into_iter().filter_map(|e| e.strip_prefix("XDG_CACHE_HOME=")).collect();
    assert_eq!(xdg.len(), 1, "one Environment=XDG_CACHE_HOME=…: {settings:?}");

    // layerpipe's default index.dir under that environment is the cache directory.
    let root = tempfile::Builder::new().prefix("layerpipe-unit-root-").tempdir().expect("temp dir");
    let store = default_store_with_xdg_cache_home(&under(root.path(), xdg[0]));
    assert_eq!(store, under(root.path(), &cache_directory), "the default index.dir is CacheDirectory=");
}

/// The instructions of a Dockerfile, continuation lines joined.
fn dockerfile_instructions(dockerfile: &str) -> Vec<String> {
    dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dockerfile_gives_the_index_store_a_directory_of_the_users_own() {
    let dockerfile = std::fs::read_to_string(deploy_file("Dockerfile")).expect("read deploy/Dockerfile");
    // The runtime stage: everything after the last FROM.
    let instructions = dockerfile_instructions(&dockerfile);
    let last_from = instructions.iter().rposition(|i| i.starts_with("FROM ")).expect("a FROM");
    let runtime = &instructions[last_from..];
    let args = |name: &str| -> Vec<&str> {
        runtime.iter().filter_map(|i| i.strip_prefix(name)?.strip_prefix(' ')).map(str::trim).collect()
    };
    let user = args("USER");
    assert_eq!(user.len(), 1, "one USER: {user:?}");
    let (uid, gid) = user[0].split_once(':').expect("USER uid:gid");
    let xdg: Vec<&str> = args("ENV").into_iter().filter_map(|e| e.strip_prefix("XDG_CACHE_HOME=")).collect();
    assert_eq!(xdg.len(), 1, "one ENV XDG_CACHE_HOME=…: {runtime:?}");
    let store = format!("{}/layerpipe", xdg[0]);
    // A VOLUME there, and the directory made the user's (0700) before it: Docker copies a
    // VOLUME's ownership from the image into a new volume, so it stays writable.
    assert_eq!(args("VOLUME"), [store.as_str()], "the store is the image's one VOLUME");
    let made = format!("install -d -o {uid} -g {gid} -m 0700 {store}");
    let run = runtime.iter().position(|i| i.starts_with("RUN ") && i.contains(&made));
    let volume = runtime.iter().position(|i| i.starts_with("VOLUME "));
    assert!(run.is_some() && run < volume, "`RUN {made}` before the VOLUME: {runtime:?}");

    // layerpipe's default index.dir with that ENV (and no usable HOME) is that directory.
    let root = tempfile::Builder::new().prefix("layerpipe-image-root-").tempdir().expect("temp dir");
    assert_eq!(default_store_with_xdg_cache_home(&under(root.path(), xdg[0])), under(root.path(), &store));
}

// ---------------------------------------------------------------------------------------
// The image's user reads its own config (issue 22: `useradd --user-group` gave the group a
// system GID, not the 10001 the image runs as, and the config is group-readable only).

/// The runtime stage of `deploy/Dockerfile`: its instructions after the last `FROM`.
fn dockerfile_runtime_stage() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(deploy_file("Dockerfile")).expect("read deploy/Dockerfile");
    let instructions = dockerfile_instructions(&dockerfile);
    let last_from = instructions.iter().rposition(|i| i.starts_with("FROM ")).expect("a FROM");
    instructions[last_from..].to_vec()
}

/// The arguments of each instruction `name` in `stage`.
fn instruction_args<'a>(stage: &'a [String], name: &str) -> Vec<&'a str> {
    stage.iter().filter_map(|i| i.strip_prefix(name)?.strip_prefix(' ')).map(str::trim).collect()
}

/// A scratch `/etc` with the image's users and groups: this machine's (Debian, as the
/// image is) with the Dockerfile's `groupadd` and `useradd` commands run on it, as they
/// are written, through `--prefix`.
struct ImageAccounts {
    dir: tempfile::TempDir,
}

impl ImageAccounts {
    fn made_by(stage: &[String]) -> ImageAccounts {
        let dir = tempfile::Builder::new().prefix("layerpipe-image-etc-").tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        for file in ["passwd", "group", "shadow", "gshadow", "login.defs"] {
            std::fs::copy(Path::new("/etc").join(file), dir.path().join("etc").join(file))
                .unwrap_or_else(|e| panic!("copy /etc/{file} (needs root): {e}"));
        }
        let commands: Vec<&str> = instruction_args(stage, "RUN")
            .into_iter()
            .filter(|run| run.contains("useradd") || run.contains("groupadd"))
            .flat_map(|run| run.split("&&"))
            .map(str::trim)
            .collect();
        assert!(commands.iter().any(|c| c.starts_with("useradd ")), "the Dockerfile makes its user: {stage:?}");
        for command in commands {
            let mut words = command.split_whitespace();
            let program = words.next().unwrap();
            assert!(["useradd", "groupadd"].contains(&program), "only useradd and groupadd there: {command}");
            let output = Command::new(program)
                .arg("--prefix")
                .arg(dir.path())
                .args(words)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("run {program} (package passwd): {e}"));
            assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        }
        ImageAccounts { dir }
    }

    /// The fields of the line naming `name` (or numbered `name`, at `id_field`) in `file`.
    fn entry(&self, file: &str, name: &str, id_field: usize) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("etc").join(file)).unwrap();
        text.lines()
            .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
            .find(|fields| fields[0] == name || fields.get(id_field).is_some_and(|id| id == name))
    }

    /// The uid of a user, by name or number.
    fn uid(&self, user: &str) -> u32 {
        let entry = self.entry("passwd", user, 2).unwrap_or_else(|| panic!("no user {user} in the image"));
        entry[2].parse().unwrap()
    }

    /// The primary gid of a user, by name or number.
    fn primary_gid(&self, user: &str) -> u32 {
        let entry = self.entry("passwd", user, 2).unwrap_or_else(|| panic!("no user {user} in the image"));
        entry[3].parse().unwrap()
    }

    /// The gid of a group, by name or number (a number no group has is itself).
    fn gid(&self, group: &str) -> u32 {
        match self.entry("group", group, 2) {
            Some(entry) => entry[2].parse().unwrap(),
            None => group.parse().unwrap_or_else(|_| panic!("no group {group} in the image")),
        }
    }
}

/// What the image runs, and as whom: `USER`, the config's `COPY`, `ENV`, `CMD`.
struct ImageRun {
    uid: u32,
    gid: u32,
    /// The config in the image, its source in this repository, owner, group and mode.
    config: (String, PathBuf, u32, u32, u32),
    xdg_cache_home: String,
    cmd: Vec<String>,
}

impl ImageRun {
    fn of(stage: &[String], accounts: &ImageAccounts) -> ImageRun {
        let user = instruction_args(stage, "USER");
        assert_eq!(user.len(), 1, "one USER: {user:?}");
        let (user, group) = user[0].split_once(':').expect("USER user:group");
        let cmd: Vec<String> = serde_json::from_str(instruction_args(stage, "CMD")[0]).expect("CMD as a JSON array");
        let config_at = cmd.iter().position(|a| a == "--config").expect("CMD --config");
        let in_image = cmd[config_at + 1].clone();
        let copy = instruction_args(stage, "COPY")
            .into_iter()
            .find(|c| c.ends_with(&format!(" {in_image}")))
            .unwrap_or_else(|| panic!("a COPY to {in_image}: {stage:?}"));
        let mut owner = None;
        let mut mode = None;
        let mut paths = Vec::new();
        for word in copy.split_whitespace() {
            if let Some(chown) = word.strip_prefix("--chown=") {
                owner = Some(chown.split_once(':').expect("--chown=user:group"));
            } else if let Some(chmod) = word.strip_prefix("--chmod=") {
                mode = Some(u32::from_str_radix(chmod, 8).expect("an octal --chmod"));
            } else {
                paths.push(word);
            }
        }
        let (file_user, file_group) = owner.expect("the config's COPY sets its owner");
        let xdg: Vec<&str> =
            instruction_args(stage, "ENV").into_iter().filter_map(|e| e.strip_prefix("XDG_CACHE_HOME=")).collect();
        ImageRun {
            uid: accounts.uid(user),
            gid: accounts.gid(group),
            config: (
                in_image,
                Path::new(env!("CARGO_MANIFEST_DIR")).join(paths[0]),
                accounts.uid(file_user),
                accounts.gid(file_group),
                mode.expect("the config's COPY sets its mode"),
            ),
            xdg_cache_home: xdg[0].to_owned(),
            cmd,
        }
    }
}

#[test]
fn dockerfile_user_and_group_are_10001() {
    let stage = dockerfile_runtime_stage();
    let accounts = ImageAccounts::made_by(&stage);
    let run = ImageRun::of(&stage, &accounts);
    assert_eq!((run.uid, run.gid), (10001, 10001), "USER");
    // The user's own group is the one the image runs as, so files of that group are its.
    assert_eq!(accounts.primary_gid("layerpipe"), 10001, "the layerpipe user's group");
    assert_eq!(accounts.gid("layerpipe"), 10001, "the layerpipe group");
    let (_, _, _, group, mode) = run.config;
    assert!(group == run.gid && mode & 0o040 != 0, "the config is readable by the image's group");
    assert_eq!(mode & 0o007, 0, "the config (it may hold passwords) is not world-readable");
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn dockerfile_user_reads_its_config_and_serves() {
    assert!(is_root(), "this test changes users (setpriv): run it as root");
    let stage = dockerfile_runtime_stage();
    let accounts = ImageAccounts::made_by(&stage);
    let run = ImageRun::of(&stage, &accounts);

    // The image's files, under a temp dir standing in for `/`: the config as the COPY
    // makes it, and the index store's directory as the RUN install makes it.
    let root = tempfile::Builder::new().prefix("layerpipe-image-root-").tempdir().expect("temp dir");
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    };
    chmod(root.path(), 0o755);
    let (in_image, source, owner, group, mode) = &run.config;
    let config = under(root.path(), in_image);
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    for dir in config.parent().unwrap().ancestors().take_while(|d| d.starts_with(root.path())) {
        chmod(dir, 0o755); // as COPY makes missing folders
    }
    std::fs::copy(source, &config).unwrap();
    std::os::unix::fs::chown(&config, Some(*owner), Some(*group)).unwrap();
    chmod(&config, *mode);
    let xdg_cache_home = under(root.path(), &run.xdg_cache_home);
    let store = xdg_cache_home.join("layerpipe");
    std::fs::create_dir_all(&store).unwrap();
    chmod(&xdg_cache_home, 0o755);
    std::os::unix::fs::chown(&store, Some(run.uid), Some(run.gid)).unwrap();
    chmod(&store, 0o700);

    // The image's command, as its user and group and no other group (Docker's USER
    // uid:gid), on a free port of 127.0.0.1 rather than 0.0.0.0:8042.
    let args: Vec<String> = run
        .cmd
        .iter()
        .map(|a| match a.as_str() {
            a if a == in_image => config.to_str().unwrap().to_owned(),
            "0.0.0.0:8042" => "127.0.0.1:0".to_owned(),
            a => a.to_owned(),
        })
        .collect();
    let mut child = Command::new("setpriv")
        .args(["--reuid", &run.uid.to_string(), "--regid", &run.gid.to_string(), "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_layerpipe"))
        .args(&args)
        .env_clear()
        .env("XDG_CACHE_HOME", &xdg_cache_home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv (package util-linux)");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + START_TIMEOUT;
    let address: Option<SocketAddr> = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break None };
        let Ok(line) = lines.recv_timeout(left) else { break None };
        let found = line.split("listen=").nth(1).map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap());
        log.push(line);
        if found.is_some() {
            break found;
        }
    };
    let status = address.map(|address| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(START_TIMEOUT)).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    });
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    log.extend(lines.try_iter());
    let log = log.join("\n");
    assert!(address.is_some(), "layerpipe as {}:{} did not start:\n{log}", run.uid, run.gid);
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"), "/healthz:\n{log}");
    assert!(!log.contains("cannot open the index store"), "the index store is the user's:\n{log}");
}

/// Every document of `deploy/kubernetes.yaml`, as JSON, parsed by PyYAML.
fn kubernetes_documents() -> Vec<serde_json::Value> {
    if !Path::new(PYTHON).is_file() {
        panic!("{PYTHON} not installed: run apt-get install -y python3-yaml");
    }
    const TO_JSON: &str = "import json, sys, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)";
    let output = Command::new(PYTHON)
        .args(["-c", TO_JSON])
        .stdin(std::fs::File::open(deploy_file("kubernetes.yaml")).expect("open deploy/kubernetes.yaml"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "deploy/kubernetes.yaml does not parse (or PyYAML is missing: apt-get install -y python3-yaml):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

/// A Kubernetes quantity in bytes: plain, or with a binary (Ki, Mi, Gi, Ti) or decimal
/// (k, M, G, T) suffix.
fn quantity_bytes(quantity: &str) -> u64 {
    const SUFFIXES: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = SUFFIXES
        .iter()
        .find_map(|(suffix, unit)| Some((quantity.strip_suffix(suffix)?, *unit)))
        .unwrap_or((quantity, 1));
    number.parse::<u64>().unwrap_or_else(|_| panic!("not a quantity: {quantity}")) * unit
}

#[test]
fn quantities_are_read_as_kubernetes_reads_them() {
    assert_eq!(quantity_bytes("1536Mi"), 1536 << 20);
    assert_eq!(quantity_bytes("2Gi"), 2 << 30);
    assert_eq!(quantity_bytes("500M"), 500_000_000);
    assert_eq!(quantity_bytes("4096"), 4096);
}

/// The key nginx hashes by in `deploy/nginx.conf`'s replica example.
fn nginx_example_hash_key() -> String {
    let conf = std::fs::read_to_string(deploy_file("nginx.conf")).expect("read deploy/nginx.conf");
    let hashes: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("#|")?.trim().strip_prefix("hash "))
        .filter_map(|h| h.strip_suffix(" consistent;"))
        .collect();
    assert_eq!(hashes.len(), 1, "one `hash KEY consistent;` in the replica example");
    hashes[0].to_owned()
}

#[test]
fn kubernetes_manifest_gives_the_index_store_a_volume_and_hashes_by_digest() {
    let documents = kubernetes_documents();
    let kind = |kind: &str| -> Vec<&serde_json::Value> { documents.iter().filter(|d| d["kind"] == kind).collect() };

    // The config the Secret holds, read by layerpipe's own parser (docker_config apart:
    // its file exists only in the pod, and is checked below).
    let secrets = kind("Secret");
    let named = |name: &str| *secrets.iter().find(|s| s["metadata"]["name"] == name).expect("a Secret by that name");
    let secret = named("layerpipe-config");
    let json = secret["stringData"]["layerpipe.json"].as_str().expect("stringData layerpipe.json");
    let mut json: serde_json::Value = serde_json::from_str(json).expect("the Secret's config is JSON");
    let docker_config = json.as_object_mut().and_then(|o| o.remove("docker_config"));
    let docker_config = Path::new(docker_config.as_ref().and_then(|d| d.as_str()).expect("docker_config")).to_owned();
    let config = layerpipe::config::Config::parse(&json.to_string()).expect("the Secret's config parses");
    let index_dir = config.index.store_dir().expect("the Secret's config keeps an index store").to_owned();
    assert_eq!(index_dir, Path::new("/var/cache/layerpipe"));

    // docker_config is the imagePullSecret's `.dockerconfigjson`, mounted as a folder
    // (so that updates reach the pod), and it parses as a docker config.
    let credentials = named("layerpipe-registry-credentials");
    assert_eq!(credentials["type"], "kubernetes.io/dockerconfigjson");
    let text = credentials["stringData"][".dockerconfigjson"].as_str().expect(".dockerconfigjson");
    layerpipe::credentials::docker_config::DockerConfig::parse(text.as_bytes()).expect("a docker config.json");
    let pod_spec = &kind("Deployment")[0]["spec"]["template"]["spec"];
    let volume = pod_spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["secret"]["secretName"] == "layerpipe-registry-credentials"))
        .expect("a volume of the credentials Secret");
    let item = &volume["secret"]["items"][0];
    assert_eq!(item["key"], ".dockerconfigjson");
    let mount = pod_spec["containers"][0]["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == volume["name"]))
        .expect("the credentials volume is mounted");
    assert!(mount.get("subPath").is_none(), "a subPath mount never sees the Secret's updates");
    let mounted = Path::new(mount["mountPath"].as_str().unwrap()).join(item["path"].as_str().unwrap());
    assert_eq!(mounted, docker_config);

    // The Deployment mounts a volume of its own there, and only there can it write.
    let deployment = kind("Deployment");
    assert_eq!(deployment.len(), 1);
    let pod = &deployment[0]["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
    let writable: Vec<&serde_json::Value> = mounts.iter().filter(|m| m["readOnly"] != true).collect();
    assert_eq!(writable.len(), 1, "one writable mount, the index store's: {mounts:?}");
    assert_eq!(writable[0]["mountPath"].as_str().map(Path::new), Some(index_dir.as_path()));
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == writable[0]["name"])
        .expect("the index store's volume");
    // An emptyDir, bounded: the kubelet evicts the pod beyond sizeLimit, so it leaves half
    // of index.max_bytes again for index files written before the oldest are removed.
    let size_limit = quantity_bytes(volume["emptyDir"]["sizeLimit"].as_str().expect("an emptyDir with a sizeLimit"));
    let max_bytes = config.index.max_bytes;
    assert!(size_limit >= max_bytes + max_bytes / 2, "sizeLimit {size_limit} for index.max_bytes {max_bytes}");
    let requested = container["resources"]["requests"]["ephemeral-storage"].as_str().map(quantity_bytes);
    assert!(requested >= Some(size_limit), "the pod requests the ephemeral storage its emptyDir may take");

    // More than one replica: the Ingress that proxies to them picks the pod by the key
    // the nginx example uses, the layer's digest.
    assert!(deployment[0]["spec"]["replicas"].as_u64() > Some(1));
    let key = nginx_example_hash_key();
    assert_eq!(key, "$arg_digest");
    let proxying: Vec<&serde_json::Value> = kind("Ingress")
        .into_iter()
        .filter(|i| i["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/permanent-redirect").is_none())
        .collect();
    assert_eq!(proxying.len(), 1);
    assert_eq!(proxying[0]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-hash-by"], key.as_str());
}
