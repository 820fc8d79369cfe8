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

/// Shortest time a token is kept: less, and a token server answering `expires_in: 0` (or
/// with a clock behind ours) would be asked once per registry request.
pub const MIN_KEEP: Duration = Duration::from_secs(10);

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
    /// Accepts `token` or `access_token`, `expires_in` in seconds (see [`lifetime`] for
    /// what stands for the default 60) and `issued_at` (RFC 3339), which moves the expiry
    /// back when the token was minted before it reached us. The token is kept for its
    /// life left less a margin, but never less than [`MIN_KEEP`].
    pub fn from_response(body: &[u8], now: SystemTime) -> Result<Token, String> {
        #[derive(Deserialize)]
        struct Response {
            token: Option<String>,
            access_token: Option<String>,
            // Any JSON value: an odd one is the default lifetime, not a refused token.
            #[serde(default)]
            expires_in: serde_json::Value,
            // Any JSON value too: only an RFC 3339 string is used.
            #[serde(default)]
            issued_at: serde_json::Value,
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
        let lifetime = lifetime(&r.expires_in);
        let issued_at = r.issued_at.as_str().and_then(parse_rfc3339).filter(|t| *t <= now).unwrap_or(now);
        // Counted as lifetime minus age, never as `issued_at + lifetime`: a server may say
        // `expires_in` up to u64::MAX seconds, past what a SystemTime can hold.
        let age = now.duration_since(issued_at).unwrap_or(Duration::ZERO);
        let left = lifetime.saturating_sub(age);
        let margin = (lifetime / 10).min(MAX_MARGIN);
        Ok(Token { header, keep_for: left.saturating_sub(margin).max(MIN_KEEP) })
    }
}

/// A token's stated lifetime: `expires_in` when it is a whole number of seconds from 0
/// up (`300` or `300.0`), else [`DEFAULT_EXPIRES_IN`] (missing, `null`, negative,
/// fractional such as `0.5`, a string).
pub fn lifetime(expires_in: &serde_json::Value) -> Duration {
    if let Some(secs) = expires_in.as_u64() {
        return Duration::from_secs(secs);
    }
    match expires_in.as_f64() {
        // Below 2^64 so the cast is exact for whole numbers (f64 holds them up to 2^53
        // exactly, and larger ones are whole anyway).
        Some(secs) if secs >= 0.0 && secs.fract() == 0.0 && secs < 18_446_744_073_709_551_616.0 => {
            Duration::from_secs(secs as u64)
        }
        _ => DEFAULT_EXPIRES_IN,
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
///
/// Works on bytes and matches whole fields, never slicing the string by position: a
/// token server's text may hold multibyte characters anywhere.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    /// A field of ASCII digits only (no sign, no spaces), as a number.
    fn num(digits: &[u8]) -> Option<i64> {
        digits.iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
    }
    let (date_time, rest) = s.as_bytes().split_at_checked(19)?;
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T' | b't' | b' ', h0, h1, b':', i0, i1, b':', s0, s1] =
        *date_time
    else {
        return None;
    };
    let (year, month, day) = (num(&[y0, y1, y2, y3])?, num(&[m0, m1])?, num(&[d0, d1])?);
    let (hour, minute, second) = (num(&[h0, h1])?, num(&[i0, i1])?, num(&[s0, s1])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (nanos, zone) = match rest {
        [b'.', fraction @ ..] => {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            // Nanoseconds: the first nine digits, scaled up when there are fewer.
            let kept = &fraction[..digits.min(9)];
            let nanos = num(kept)? * 10i64.pow(9 - kept.len() as u32);
            (u32::try_from(nanos).ok()?, &fraction[digits..])
        }
        _ => (0, rest),
    };
    let offset = match *zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h0, h1, b':', m0, m1] => {
            let (hours, minutes) = (num(&[h0, h1])?, num(&[m0, m1])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = (hours * 60 + minutes) * 60;
            if sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
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
        // Already dead, or a token server's clock behind ours: kept the minimum, not
        // fetched again for every request.
        assert_eq!(Token::from_response(body, at(1_704_067_200 + 1000)).unwrap().keep_for(), MIN_KEEP);
        // An issued_at in the future (clock skew) is ignored.
        assert_eq!(Token::from_response(body, at(1_704_067_200 - 50)).unwrap().keep_for(), Duration::from_secs(270));
    }

    #[test]
    fn odd_lifetimes_are_the_default_and_short_ones_kept_the_minimum() {
        let keep = |expires_in: &str| {
            let body = format!(r#"{{"token":"t"{expires_in}}}"#);
            Token::from_response(body.as_bytes(), at(1000)).map(|t| t.keep_for())
        };
        // Registries send these; each is the spec's default of 60 s (less 6 s of margin).
        for odd in
            [r#","expires_in":-1"#, r#","expires_in":0.5"#, r#","expires_in":null"#, r#","expires_in":"300""#, ""]
        {
            assert_eq!(keep(odd), Ok(Duration::from_secs(54)), "{odd}");
        }
        // A whole number written as a float is that many seconds.
        assert_eq!(keep(r#","expires_in":300.0"#), Ok(Duration::from_secs(270)));
        assert_eq!(keep(r#","expires_in":1e300"#), Ok(Duration::from_secs(54)));
        // Zero, or a few seconds: kept long enough to serve more than one request.
        assert_eq!(keep(r#","expires_in":0"#), Ok(MIN_KEEP));
        assert_eq!(keep(r#","expires_in":3"#), Ok(MIN_KEEP));
        // An issued_at that is not a string is ignored like one that does not parse.
        assert_eq!(keep(r#","expires_in":300,"issued_at":12"#), Ok(Duration::from_secs(270)));
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

    #[test]
    fn a_lifetime_too_long_to_add_to_a_time_is_kept_not_a_panic() {
        let body = br#"{"token":"t","expires_in":18446744073709551615,"issued_at":"2024-01-01T00:00:00Z"}"#;
        let t = Token::from_response(body, at(1_704_067_200 + 100)).unwrap();
        assert_eq!(t.keep_for(), Duration::from_secs(u64::MAX - 100) - MAX_MARGIN);
        let t = Token::from_response(br#"{"token":"t","expires_in":18446744073709551615}"#, at(1000)).unwrap();
        assert_eq!(t.keep_for(), Duration::from_secs(u64::MAX) - MAX_MARGIN);
    }

    #[test]
    fn a_multibyte_character_in_the_offset_is_rejected_not_a_panic() {
        // "+0é00" is six bytes, with the 'é' across bytes 2 and 3.
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+0\u{e9}00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.5+0\u{e9}00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00\u{e9}"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:0\u{e9}Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+24:00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+02:60"), None);
    }

    /// Year, month and day of a day count since 1970-01-01 (Hinnant's inverse), so the
    /// round-trip property checks the parser against an independent formatter.
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    /// `secs` since the epoch written as local time at `offset_minutes` east of UTC.
    fn format_rfc3339(secs: i64, offset_minutes: i64) -> String {
        let local = secs + offset_minutes * 60;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let t = local.rem_euclid(86_400);
        let zone = match offset_minutes {
            0 => "Z".to_owned(),
            m => format!("{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
        };
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{zone}", t / 3600, t / 60 % 60, t % 60)
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_body_is_a_token_or_an_error_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = Token::from_response(&body, at(1_700_000_000));
            }

            #[test]
            fn any_lifetime_and_issued_at_give_a_token_kept_at_most_its_lifetime(
                expires_in in any::<u64>(),
                issued_at in prop_oneof![
                    "\\PC{0,40}",
                    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?\\PC{0,8}",
                ],
                now in any::<u32>(),
            ) {
                let body = serde_json::json!({"token": "t", "expires_in": expires_in, "issued_at": issued_at});
                let t = Token::from_response(body.to_string().as_bytes(), at(u64::from(now)))
                    .map_err(TestCaseError::fail)?;
                prop_assert!(t.keep_for() <= Duration::from_secs(expires_in).max(MIN_KEEP));
                prop_assert!(t.keep_for() >= MIN_KEEP);
            }

            #[test]
            fn any_timestamp_parses_or_fails_never_a_panic(
                // Valid dates and times, so that the tail is what gets parsed.
                stem in "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]",
                // Zone-like tails too: a multibyte character where an offset's digits go.
                rest in prop_oneof!["\\PC{0,10}", "(\\.[0-9]{1,3})?[+-][0-9]{0,2}[\\x{80}-\\x{7ff}][0-9:]{0,3}"],
                any in "\\PC{0,40}",
            ) {
                let _ = parse_rfc3339(&format!("{stem}{rest}"));
                let _ = parse_rfc3339(&any);
            }

            #[test]
            fn formatted_times_parse_back(
                // From 1970 to the end of 9999, and offsets up to ±23:59.
                secs in 0i64..253_402_300_800,
                offset_minutes in -1439i64..=1439,
            ) {
                let text = format_rfc3339(secs, offset_minutes);
                // A local time past the end of 9999 cannot be written in four digits.
                prop_assume!(text.as_bytes().get(4) == Some(&b'-'));
                prop_assert_eq!(parse_rfc3339(&text), Some(at(secs as u64)), "{}", text);
            }
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
