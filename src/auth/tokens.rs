//! Bearer tokens: reading a token server's answer, and the cache that keeps each token
//! until just before it expires.
//!
//! The cache is keyed by everything that decides which token a server would hand out
//! (registry, realm, service, scope and the identity of the credentials sent), so one
//! registry's token is never sent to another, nor one user's to another.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use moka::Expiry;
use serde::Deserialize;

use crate::error::Error;

/// A token's lifetime when the server does not say (the distribution token spec's default).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);

/// Longest safety margin taken off a token's lifetime, so it is never sent just as it dies.
const MAX_MARGIN: Duration = Duration::from_secs(30);

/// A bearer token; printed as `***` so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Token {
    header: HeaderValue,
    /// How long to keep it: its lifetime left, minus the safety margin.
    keep_for: Duration,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(***, keep for {:?})", self.keep_for)
    }
}

impl Token {
    /// The `Authorization: Bearer …` value, marked sensitive so hyper never logs it.
    pub fn authorization(&self) -> &HeaderValue {
        &self.header
    }

    /// How long the cache keeps this token.
    pub fn keep_for(&self) -> Duration {
        self.keep_for
    }

    /// Reads a token server's JSON answer, received at `now`.
    ///
    /// Accepts `token` or `access_token`, `expires_in` in seconds (default 60) and
    /// `issued_at` (RFC 3339), which moves the expiry back when the token was minted
    /// before it reached us.
    pub fn from_response(body: &[u8], now: SystemTime) -> Result<Token, String> {
        #[derive(Deserialize)]
        struct Response {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
            issued_at: Option<String>,
        }
        let r: Response = serde_json::from_slice(body).map_err(|e| format!("token response is not valid JSON: {e}"))?;
        let value = r
            .token
            .filter(|t| !t.is_empty())
            .or(r.access_token.filter(|t| !t.is_empty()))
            .ok_or("token response has neither token nor access_token")?;
        let mut header = HeaderValue::try_from(format!("Bearer {value}"))
            .map_err(|_| "token holds characters not allowed in a header")?;
        header.set_sensitive(true);
        let lifetime = r.expires_in.map_or(DEFAULT_EXPIRES_IN, Duration::from_secs);
        let issued_at = r.issued_at.as_deref().and_then(parse_rfc3339).filter(|t| *t <= now).unwrap_or(now);
        let expires_at = issued_at + lifetime;
        let left = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
        let margin = (lifetime / 10).min(MAX_MARGIN);
        Ok(Token { header, keep_for: left.saturating_sub(margin) })
    }
}

/// What a token is for; equal keys may share a token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    /// The registry host, as in references.
    pub registry: String,
    /// The token server's URL.
    pub realm: String,
    /// The `service` parameter.
    pub service: String,
    /// The scope, `repository:<name>:pull`.
    pub scope: String,
    /// The user name sent with Basic auth to the realm, if any.
    pub username: Option<String>,
}

struct KeepFor;

impl Expiry<TokenKey, Token> for KeepFor {
    fn expire_after_create(&self, _key: &TokenKey, token: &Token, _created_at: Instant) -> Option<Duration> {
        Some(token.keep_for)
    }
}

/// Tokens by [`TokenKey`], each dropped when its own lifetime (less a margin) runs out.
#[derive(Clone)]
pub struct TokenCache {
    tokens: moka::future::Cache<TokenKey, Token>,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens.
    pub fn new(capacity: u64) -> TokenCache {
        TokenCache { tokens: moka::future::Cache::builder().max_capacity(capacity).expire_after(KeepFor).build() }
    }

    /// The cached token for `key`, or the result of `fetch`. Concurrent callers missing
    /// the same key wait for one `fetch` instead of each running their own.
    pub async fn get_or_fetch<F>(&self, key: TokenKey, fetch: F) -> Result<Token, Error>
    where
        F: Future<Output = Result<Token, Error>>,
    {
        self.tokens.try_get_with(key, fetch).await.map_err(|e: Arc<Error>| Error::clone(&e))
    }

    /// The cached token for `key`, if there is a live one.
    pub async fn get(&self, key: &TokenKey) -> Option<Token> {
        self.tokens.get(key).await
    }

    /// Forgets the token for `key`, after the registry refused it.
    pub async fn invalidate(&self, key: &TokenKey) {
        self.tokens.invalidate(key).await;
    }
}

/// Parses an RFC 3339 timestamp such as `2024-05-01T12:00:00.5Z` or `…+02:00`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 9)];
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if tz.starts_with('-') {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn token_or_access_token_with_default_lifetime() {
        let t = Token::from_response(br#"{"token":"abc"}"#, at(1000)).unwrap();
        assert_eq!(t.authorization(), "Bearer abc");
        assert!(t.authorization().is_sensitive());
        assert_eq!(t.keep_for(), Duration::from_secs(54));
        let t = Token::from_response(br#"{"access_token":"xyz","expires_in":300}"#, at(1000)).unwrap();
        assert_eq!(t.authorization(), "Bearer xyz");
        assert_eq!(t.keep_for(), Duration::from_secs(270));
        assert_eq!(
            Token::from_response(br#"{"expires_in":3600}"#, at(0)).unwrap_err(),
            "token response has neither token nor access_token"
        );
        assert!(Token::from_response(b"<html>", at(0)).is_err());
        assert!(Token::from_response(b"{\"token\":\"a\\r\\nX: y\"}", at(0)).is_err());
    }

    #[test]
    fn issued_at_shortens_the_lifetime() {
        // 2024-01-01T00:00:00Z is 1704067200.
        let body = br#"{"token":"t","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}"#;
        let t = Token::from_response(body, at(1_704_067_200 + 100)).unwrap();
        assert_eq!(t.keep_for(), Duration::from_secs(170));
        // Already dead: kept for no time at all.
        assert_eq!(Token::from_response(body, at(1_704_067_200 + 1000)).unwrap().keep_for(), Duration::ZERO);
        // An issued_at in the future (clock skew) is ignored.
        assert_eq!(Token::from_response(body, at(1_704_067_200 - 50)).unwrap().keep_for(), Duration::from_secs(270));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(at(0)));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(at(1_704_067_200)));
        assert_eq!(parse_rfc3339("2024-01-01T02:00:00+02:00"), Some(at(1_704_067_200)));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.25Z"), Some(at(1_704_067_200) + Duration::from_millis(250)));
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.123456789123Z"),
            Some(at(1_704_067_200) + Duration::from_nanos(123_456_789))
        );
        for bad in [
            "",
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00.Z",
            "+024-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn concurrent_misses_fetch_once() {
        let cache = TokenCache::new(100);
        let key = TokenKey {
            registry: "r".into(),
            realm: "http://t".into(),
            service: "s".into(),
            scope: "repository:a:pull".into(),
            username: None,
        };
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, key, fetches) = (cache.clone(), key.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(key, async {
                            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(Token::from_response(br#"{"token":"t"}"#, SystemTime::now()).unwrap())
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().authorization(), "Bearer t");
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache.invalidate(&key).await;
        cache.get_or_fetch(key, async { Err(Error::bad_gateway("down")) }).await.unwrap_err();
    }
}
