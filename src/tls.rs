//! Which certificates layerpipe trusts, and what to tell a user when a registry's
//! certificate is not trusted.
//!
//! Every TLS connection trusts, together:
//! - the Mozilla roots built into layerpipe (`webpki-roots`), so a bare container with no
//!   CA bundle still reaches Docker Hub, GHCR and the other public registries;
//! - the operating system's bundle, `/etc/ssl/certs/ca-certificates.crt` when it exists
//!   (what curl and docker use on Debian and Ubuntu, including CAs an operator added with
//!   `update-ca-certificates`);
//! - for a listed registry with `ca_file`, that PEM bundle, on that registry's
//!   connections only (its own, its token realm's and its redirects'): one registry's
//!   private CA is never trusted for another host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// Where Debian, Ubuntu and Alpine keep the system's CA bundle (curl's default there).
pub const OS_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A registry's `ca_file`: the certificates read from it, every one usable as a root.
#[derive(Clone, Debug)]
pub struct CaBundle {
    path: PathBuf,
    certificates: Vec<CertificateDer<'static>>,
}

impl CaBundle {
    /// Reads a PEM bundle; an error says what is wrong with the file (unreadable, no
    /// certificate in it, or a certificate that cannot serve as a root).
    pub fn load(path: &Path) -> Result<CaBundle, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut certificates = Vec::new();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            certificates.push(certificate.map_err(|e| format!("{} is not a valid PEM file: {e}", path.display()))?);
        }
        if certificates.is_empty() {
            return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()));
        }
        // Checked here so that a bad certificate stops start-up instead of being skipped.
        let mut store = RootCertStore::empty();
        for (n, certificate) in certificates.iter().enumerate() {
            store
                .add(certificate.clone())
                .map_err(|e| format!("certificate {} in {} is not usable as a CA: {e}", n + 1, path.display()))?;
        }
        Ok(CaBundle { path: path.to_owned(), certificates })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The roots every connection trusts: webpki's and the OS bundle's (see the module docs).
pub fn base_roots() -> RootCertStore {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Ok(pem) = std::fs::read(OS_BUNDLE) {
        // A certificate the OS ships but webpki cannot parse is skipped, as curl skips it.
        roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    }
    roots
}

/// A client TLS config trusting `roots` and, when given, `extra` as well.
pub fn client_config(roots: &RootCertStore, extra: Option<&CaBundle>) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(with_extra(roots, extra))
        .with_no_client_auth()
}

fn with_extra(roots: &RootCertStore, extra: Option<&CaBundle>) -> RootCertStore {
    let mut roots = roots.clone();
    if let Some(extra) = extra {
        // Every certificate was checked by `CaBundle::load`.
        roots.add_parsable_certificates(extra.certificates.iter().cloned());
    }
    roots
}

/// If `error` (or an error it wraps) is a rejected server certificate, why, in words.
pub fn certificate_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(why));
        }
        // tokio-rustls wraps rustls' error in an io::Error (hyper-rustls another around
        // that), and an io::Error's `source` skips the error it wraps: step into it.
        source = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn describe(why: &CertificateError) -> String {
    match why {
        CertificateError::UnknownIssuer => "unknown issuer".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it names another host".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet".into(),
        CertificateError::Revoked => "it is revoked".into(),
        CertificateError::BadSignature => "its signature is bad".into(),
        CertificateError::BadEncoding => "it is malformed".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_named_with_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(CaBundle::load(&missing).unwrap_err().contains("cannot read"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(CaBundle::load(&empty).unwrap_err().contains("no PEM certificate"));
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        assert!(CaBundle::load(&junk).is_err());
        let not_a_cert = dir.path().join("not-a-cert.pem");
        std::fs::write(&not_a_cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(CaBundle::load(&not_a_cert).unwrap_err().contains("not usable as a CA"));
    }

    #[test]
    fn a_ca_made_here_loads() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        let bundle = CaBundle::load(&path).unwrap();
        assert_eq!(bundle.certificates.len(), 1);
        let base = base_roots();
        assert_eq!(with_extra(&base, Some(&bundle)).len(), base.len() + 1);
        assert_eq!(with_extra(&base, None).len(), base.len());
        let _ = client_config(&base, Some(&bundle));
    }

    #[test]
    fn certificate_errors_are_found_inside_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        // Twice wrapped, as hyper-rustls does.
        let io = std::io::Error::other(io);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io);
        assert_eq!(certificate_failure(boxed.as_ref()).as_deref(), Some("unknown issuer"));
        let other = std::io::Error::other("refused");
        assert_eq!(certificate_failure(&other), None);
    }
}
