//! Docker credential helpers: `docker-credential-NAME get`, the server on stdin, and
//! `{"ServerURL","Username","Secret"}` on stdout (docker-credential-helpers' protocol).
//! A helper that says it has nothing ("credentials not found") means anonymous.
//!
//! A helper runs in a process group of its own, and the whole group is killed when it
//! takes longer than [`TIMEOUT`] (or its caller goes away): helpers are often scripts
//! that start other programs (`aws`, `gcloud`), and killing the script alone would leave
//! those running, one more each time the helper hangs.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::docker_config::HelperName;
use super::secret::Secret;
use super::Credential;

/// How long a helper may take (ECR's helper makes an AWS call).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes read from a helper's stdout.
const MAX_OUTPUT: u64 = 64 * 1024;

/// The user name helpers give for an identity token (docker's convention).
const TOKEN_USERNAME: &str = "<token>";

/// Asks helper `name` for `server`'s credentials. The program is found on `PATH`, or in
/// `dir` when given (tests). `Ok(None)`: the helper has none. An error is a sentence
/// without anything the helper printed (it could be a secret).
pub async fn get(name: &HelperName, server: &str, dir: Option<&Path>) -> Result<Option<Credential>, String> {
    get_within(name, server, dir, TIMEOUT).await
}

/// [`get`], with `timeout` for [`TIMEOUT`].
async fn get_within(
    name: &HelperName,
    server: &str,
    dir: Option<&Path>,
    timeout: Duration,
) -> Result<Option<Credential>, String> {
    let program = match dir {
        Some(dir) => dir.join(name.program()),
        None => name.program().into(),
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", name.program()))?;
    // Declared after `child`, so dropped before it: the group is killed while the
    // helper is not yet reaped, and its id cannot have been reused.
    let mut group = ProcessGroup(child.id());
    let run = async {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        // A helper that exits without reading its stdin is answered by its exit status.
        let _ = stdin.write_all(server.as_bytes()).await;
        drop(stdin);
        let mut output = Vec::new();
        let stdout = child.stdout.take().expect("stdout was piped");
        stdout.take(MAX_OUTPUT).read_to_end(&mut output).await.map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, output))
    };
    let answered = tokio::time::timeout(timeout, run).await;
    if let Ok(Ok(_)) = answered {
        // Reaped by `wait`: its id may now name another process.
        group.disarm();
    }
    let (status, output) = answered
        .map_err(|_| format!("{} did not answer within {} s", name.program(), timeout.as_secs_f64()))?
        .map_err(|e| format!("{} failed: {e}", name.program()))?;
    if !status.success() {
        // The helpers' own words for "nothing stored" (docker-credential-helpers'
        // ErrCredentialsNotFound), on stdout.
        if String::from_utf8_lossy(&output).contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("{} get failed ({status})", name.program()));
    }
    parse_answer(&output).map(Some).map_err(|e| format!("{}: {e}", name.program()))
}

/// A helper's process group, killed (every process in it) when dropped armed: on a
/// timeout, an error, or the caller dropping the future.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    /// Leaves the group alone from now on.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()).filter(|&id| id > 0) {
            // SAFETY: kill(2) takes plain integers; a negative pid names the process
            // group, which `process_group(0)` made with the helper's own id.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// A helper's JSON answer as a credential.
pub fn parse_answer(output: &[u8]) -> Result<Credential, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(output).map_err(|_| "its answer is not {\"Username\",\"Secret\"}")?;
    if answer.username == TOKEN_USERNAME {
        return Ok(Credential::IdentityToken(Secret::new(answer.secret)));
    }
    if answer.username.is_empty() {
        return Err("its answer has no Username".into());
    }
    Ok(Credential::Basic { username: answer.username, password: Secret::new(answer.secret) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(
            parse_answer(br#"{"ServerURL":"r.io","Username":"AWS","Secret":"pw"}"#),
            Ok(Credential::Basic { username: "AWS".into(), password: Secret::new("pw".into()) })
        );
        assert_eq!(
            parse_answer(br#"{"Username":"<token>","Secret":"refresh"}"#),
            Ok(Credential::IdentityToken(Secret::new("refresh".into())))
        );
        assert!(parse_answer(br#"{"Username":"","Secret":"x"}"#).is_err());
        let e = parse_answer(b"secret-ish garbage").unwrap_err();
        assert!(!e.contains("secret-ish"), "{e}");
    }

    #[test]
    fn helper_names_never_make_paths() {
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x;rm"] {
            assert!(HelperName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HelperName::parse("ecr-login").unwrap().program(), "docker-credential-ecr-login");
    }

    #[tokio::test]
    async fn a_helper_is_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("docker-credential-unit");
        std::fs::write(
            &script,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 3\n\
             case \"$server\" in r.io) echo '{\"Username\":\"u\",\"Secret\":\"s\"}';;\n\
             *) echo 'credentials not found in native keychain'; exit 1;; esac\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let name = HelperName::parse("unit").unwrap();
        let found = get(&name, "r.io", Some(dir.path())).await.unwrap();
        assert_eq!(found, Some(Credential::Basic { username: "u".into(), password: Secret::new("s".into()) }));
        assert_eq!(get(&name, "other.io", Some(dir.path())).await, Ok(None));
        let missing = HelperName::parse("missing").unwrap();
        assert!(get(&missing, "r.io", Some(dir.path())).await.unwrap_err().contains("cannot run"));
    }

    /// Whether process `pid` is gone (or a zombie, dead and waiting for its parent).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state follows the command, which is in parentheses and may hold spaces.
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn a_helper_that_hangs_is_killed_with_the_programs_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("started");
        let script = dir.path().join("docker-credential-hangs");
        // Starts a child that would outlive it, says which, and hangs itself.
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 300 &\necho $! > {started}.tmp\nmv {started}.tmp {started}\nsleep 300\n",
                started = started.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let name = HelperName::parse("hangs").unwrap();
        let e = get_within(&name, "r.io", Some(dir.path()), Duration::from_secs(2)).await.unwrap_err();
        assert!(e.contains("did not answer within 2 s"), "{e}");
        let child = std::fs::read_to_string(&started).expect("the helper started its child");
        let child = child.trim();
        // SIGKILL is delivered at once, but the process takes a moment to exit.
        for _ in 0..500 {
            if gone(child) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Not left behind by the test either.
        let _ = std::process::Command::new("kill").arg("-9").arg(child).status();
        panic!("the helper's child {child} still runs after the helper timed out");
    }
}
