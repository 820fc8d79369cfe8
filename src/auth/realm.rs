//! A registry's token realm: whether layerpipe asks it for tokens at all, and whether the
//! registry's configured Basic credentials go with that request.
//!
//! The realm is whatever URL the registry's challenge names, so without a rule a
//! registry (or whoever can change its `/v2/` answer) could send the credentials
//! anywhere. The rule:
//!
//! - A realm over plain `http` is used only for a registry whose endpoint is plain `http`
//!   (a listed one: unlisted registries are reached over https only). Credentials sent to
//!   a registry over https never travel in clear text to its realm.
//! - Credentials go only to a realm on the registry's own domain: its host is the
//!   registry's host (as written in references) or its endpoint's host, a subdomain of
//!   either, or a host under the same parent domain, the host minus its first label, when
//!   that parent still has two labels or more. So `auth.docker.io` gets Docker Hub's
//!   credentials (`docker.io`, endpoint `registry-1.docker.io`), `gitlab.com` those of
//!   `registry.gitlab.com`, and `ghcr.io`'s go to `ghcr.io` (and its subdomains) only,
//!   since its parent `io` is one label. IP addresses have no domain: only the same
//!   address qualifies. Ports do not matter.
//! - A realm elsewhere is still asked for a token, without credentials: public images
//!   keep working, private ones get the registry's refusal.
//!
//! Without the public-suffix list, a registry whose host sits right under a two-label
//! public suffix (`example.co.uk`) shares its credentials with that suffix's other names.

use std::net::IpAddr;

use http::uri::{Authority, Uri};

/// Whether a realm may have the registry's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The realm is on the registry's domain.
    Send,
    /// The realm is elsewhere: ask it for a token without credentials.
    Withhold,
}

/// Judges `realm` for the registry known in references as `registry_host` (a host with an
/// optional port) and reached at `endpoint`. An error is the reason to refuse the realm.
pub fn judge(realm: &Uri, registry_host: &str, endpoint: &Uri) -> Result<Credentials, String> {
    if realm.scheme_str() == Some("http") && endpoint.scheme_str() != Some("http") {
        return Err(format!(
            "{registry_host} names a token realm over plain http; only registries listed with an http endpoint may"
        ));
    }
    let realm_host =
        realm.host().map(normalize).ok_or_else(|| format!("{registry_host} names a realm without a host"))?;
    let own = [registry_host.parse::<Authority>().ok().map(|a| normalize(a.host())), endpoint.host().map(normalize)];
    if own.iter().flatten().any(|own| same_domain(&realm_host, own)) {
        Ok(Credentials::Send)
    } else {
        Ok(Credentials::Withhold)
    }
}

/// Lowercase, without IPv6 brackets or a final dot.
fn normalize(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// `host` is `own`, below it, or below its parent (when the parent has two labels or more).
fn same_domain(host: &str, own: &str) -> bool {
    if host == own {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() || own.parse::<IpAddr>().is_ok() {
        return false;
    }
    let within = |base: &str| host == base || host.strip_suffix(base).is_some_and(|sub| sub.ends_with('.'));
    match own.split_once('.') {
        Some((_, parent)) if parent.contains('.') => within(own) || within(parent),
        _ => within(own),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(realm: &str, registry_host: &str, endpoint: &str) -> Result<Credentials, String> {
        judge(&realm.parse().unwrap(), registry_host, &endpoint.parse().unwrap())
    }

    #[test]
    fn credentials_go_to_the_registry_s_own_domain() {
        use Credentials::*;
        for (realm, host, endpoint) in [
            ("https://auth.docker.io/token", "docker.io", "https://registry-1.docker.io"),
            ("https://auth.docker.io/token", "registry-1.docker.io", "https://registry-1.docker.io"),
            ("https://Auth.Docker.IO./token", "docker.io", "https://registry-1.docker.io"),
            ("https://gitlab.com/jwt/auth", "registry.gitlab.com", "https://registry.gitlab.com"),
            ("https://ghcr.io/token", "ghcr.io", "https://ghcr.io"),
            ("https://auth.ghcr.io/token", "ghcr.io", "https://ghcr.io"),
            ("https://login.corp.example/token", "registry.corp.example", "https://registry.corp.example"),
            // The configured endpoint's host counts as the registry's own.
            ("https://auth.mirror.example/t", "docker.io", "https://hub.mirror.example"),
            ("http://127.0.0.1:5001/token", "127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("http://[::1]:5001/token", "[::1]:5000", "http://[::1]:5000"),
            ("http://localhost:5001/token", "localhost:5000", "http://localhost:5000"),
        ] {
            assert_eq!(judged(realm, host, endpoint), Ok(Send), "{realm} for {host}");
        }
        for (realm, host, endpoint) in [
            ("https://evil.example/token", "docker.io", "https://registry-1.docker.io"),
            ("https://docker.io.evil.example/token", "docker.io", "https://registry-1.docker.io"),
            ("https://evildocker.io/token", "docker.io", "https://registry-1.docker.io"),
            // `io` is one label: no sharing with the rest of .io.
            ("https://other.io/token", "ghcr.io", "https://ghcr.io"),
            ("https://other.example/token", "corp.example", "https://corp.example"),
            ("http://127.0.0.2:5001/token", "127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("http://localhost:5001/token", "127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("http://10.0.0.10:5001/token", "10.0.0.1:5000", "http://10.0.0.1:5000"),
        ] {
            assert_eq!(judged(realm, host, endpoint), Ok(Withhold), "{realm} for {host}");
        }
    }

    #[test]
    fn plain_http_realms_only_for_plain_http_registries() {
        let e = judged("http://auth.docker.io/token", "docker.io", "https://registry-1.docker.io").unwrap_err();
        assert!(e.contains("plain http"), "{e}");
        assert!(judged("http://127.0.0.1:1/token", "127.0.0.1:5000", "https://127.0.0.1:5000").is_err());
        assert_eq!(judged("https://r.local/t", "r.local:5000", "http://r.local:5000"), Ok(Credentials::Send));
    }
}
