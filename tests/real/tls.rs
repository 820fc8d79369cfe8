//! A second `docker-registry` process serving a [`RealRegistry`]'s storage over HTTPS,
//! with a certificate from a CA the test makes ([`TestCa`]), and optionally htpasswd
//! Basic auth instead of tokens. Images are pushed to the plain registry (which has the
//! push credentials) and read back through this one: both read the same files, and
//! distribution keeps no cache of its storage unless configured to.
//!
//! ```ignore
//! let plain = RealRegistry::start();
//! let image = plain.push_oci_image("tls/app", "v1").await;
//! let ca = TestCa::new();
//! let tls = TlsRegistry::serve(&plain, &ca, Some(HTPASSWD_USER));
//! // layerpipe lists tls.host() with endpoint tls.endpoint() and ca_file ca.pem_path()
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::{spawn_registry, tail, PushedImage, RealRegistry, START_TIMEOUT};

/// The user htpasswd auth knows.
pub const HTPASSWD_USER: &str = "e2e-puller";
/// [`HTPASSWD_USER`]'s password.
pub const HTPASSWD_PASSWORD: &str = "e2e-pull-password";
/// [`HTPASSWD_PASSWORD`] hashed with bcrypt at cost 4 (distribution accepts bcrypt only;
/// the lowest cost keeps each request's check cheap). Made with Python's
/// `crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`.
const HTPASSWD_HASH: &str = "$2b$04$iPSaq2VHQrfp6Yv85ZMdJ.cnEZnn/4JDTvImeM72qS7YhT5GIjjKy";

/// A CA made for one test, and a server certificate it signed for `127.0.0.1`, all
/// written as PEM files in a temp dir.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// A fresh CA, and a certificate for `127.0.0.1` and `localhost` signed by it.
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new().prefix("layerpipe-ca-").tempdir().expect("temp dir for the CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        // A name of its own: two test CAs with one name would look like one CA whose
        // signature is bad, not like an unknown one.
        let name = format!("layerpipe e2e private CA {}", dir.path().display());
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("server key");
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        let server = params.signed_by(&key, &ca, &ca_key).expect("server certificate");
        fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        fs::write(dir.path().join("server.pem"), server.pem()).expect("write server.pem");
        fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("write server.key");
        TestCa { dir }
    }

    /// The CA's certificate, what `ca_file` should name.
    pub fn pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn server_certificate(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// A registry over HTTPS on 127.0.0.1; see the module docs. Killed when dropped.
pub struct TlsRegistry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl TlsRegistry {
    /// Serves `plain`'s storage over HTTPS with `ca`'s server certificate: anonymous, or
    /// with htpasswd Basic auth for [`HTPASSWD_USER`] when `htpasswd` is set.
    pub fn serve(plain: &RealRegistry, ca: &TestCa, htpasswd: bool) -> TlsRegistry {
        let dir = tempfile::Builder::new().prefix("layerpipe-tls-registry-").tempdir().expect("temp dir");
        let users = dir.path().join("htpasswd");
        fs::write(&users, format!("{HTPASSWD_USER}:{HTPASSWD_HASH}\n")).expect("write htpasswd");
        let auth = if htpasswd {
            format!("auth:\n  htpasswd:\n    realm: layerpipe-e2e\n    path: {}\n", users.display())
        } else {
            String::new()
        };
        let log = dir.path().join("registry.log");
        let (child, addr) = spawn_registry(
            "the TLS registry",
            &dir.path().join("config.yml"),
            &log,
            |addr| {
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  \
                     secret: layerpipe-e2e-not-secret\n  tls:\n    certificate: {cert}\n    key: {key}\n{auth}",
                    storage = plain.storage_dir().display(),
                    cert = ca.server_certificate().display(),
                    key = ca.server_key().display(),
                )
            },
            |child, addr| wait_listening(child, addr, &log),
        );
        TlsRegistry { child, addr, dir }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `image`'s reference, with this registry's host instead of the plain one's.
    pub fn reference(&self, image: &PushedImage) -> String {
        let (_, rest) = image.reference.split_once('/').expect("a reference with a host");
        format!("{}/{rest}", self.host())
    }

    /// The registry's access log so far: one line per request it served.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("registry.log"))
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the registry's log says it listens on `addr` (proof that this process,
/// not another one, holds the port), or it exits.
fn wait_listening(child: &mut Child, addr: SocketAddr, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let needle = format!("listening on {addr}");
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited: {status}"));
        }
        if fs::read_to_string(log).unwrap_or_default().contains(&needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no \"{needle}\" in the log within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
