//! `/check`'s rules, dive's CI mode over HTTP: an image passes when its wasted bytes,
//! its efficiency and its secrets are within the limits a CI job asks for, and fails
//! with one reason per limit passed.
//!
//! - `max_wasted_bytes=N`: bytes that later layers delete or overwrite while earlier
//!   layers still ship them (`image::sizes`), at most N.
//! - `min_efficiency=F`: dive's score, the bytes a container sees over all the bytes
//!   shipped, at least F (from 0 to 1).
//! - `no_secrets=1`: `/secrets` finds nothing.
//!
//! A check with no limit at all is refused: a CI job that passes everything is a typo.

use crate::query;

/// The limits a check asks for; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    /// Most wasted bytes allowed.
    pub max_wasted_bytes: Option<u64>,
    /// Least efficiency allowed, from 0 to 1.
    pub min_efficiency: Option<f64>,
    /// Whether any secret fails the check.
    pub no_secrets: bool,
}

impl Limits {
    /// The limits in a query; a value that is not a number in range is refused, saying
    /// which.
    pub fn parse(pairs: &[(String, String)]) -> Result<Limits, String> {
        let value = |name: &str| query::get(pairs, name).map(str::trim).filter(|v| !v.is_empty());
        let max_wasted_bytes = value("max_wasted_bytes")
            .map(|v| v.parse::<u64>().map_err(|_| format!("max_wasted_bytes must be a number of bytes, not {v:?}")))
            .transpose()?;
        let min_efficiency = value("min_efficiency")
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or_else(|| format!("min_efficiency must be a number from 0 to 1, not {v:?}"))
            })
            .transpose()?;
        let no_secrets = match value("no_secrets") {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(v) => return Err(format!("no_secrets must be 1 or 0, not {v:?}")),
        };
        let limits = Limits { max_wasted_bytes, min_efficiency, no_secrets };
        if limits == Limits::default() {
            return Err("a check needs a limit: max_wasted_bytes=N, min_efficiency=F or no_secrets=1".to_owned());
        }
        Ok(limits)
    }
}

/// What was measured of the image.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Wasted bytes.
    pub wasted: u64,
    /// dive's efficiency.
    pub efficiency: f64,
    /// Secrets found, when they were looked for.
    pub secrets: Option<usize>,
}

/// Why the image fails `limits`: empty when it passes.
pub fn reasons(limits: &Limits, measured: &Measured) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = limits.max_wasted_bytes.filter(|&max| measured.wasted > max) {
        out.push(format!("{} wasted bytes, more than the {max} allowed", measured.wasted));
    }
    if let Some(min) = limits.min_efficiency.filter(|&min| measured.efficiency < min) {
        out.push(format!("efficiency {:.4}, less than the {min} required", measured.efficiency));
    }
    if limits.no_secrets {
        if let Some(n) = measured.secrets.filter(|&n| n > 0) {
            out.push(format!("{n} secret{} found", if n == 1 { "" } else { "s" }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limits_are_parsed_or_refused_with_the_reason() {
        let l = Limits::parse(&pairs(&[("max_wasted_bytes", "100"), ("min_efficiency", "0.9"), ("no_secrets", "1")]));
        assert_eq!(l, Ok(Limits { max_wasted_bytes: Some(100), min_efficiency: Some(0.9), no_secrets: true }));
        assert!(Limits::parse(&pairs(&[])).unwrap_err().contains("needs a limit"));
        assert!(Limits::parse(&pairs(&[("min_efficiency", "1.5")])).unwrap_err().contains("from 0 to 1"));
        assert!(Limits::parse(&pairs(&[("max_wasted_bytes", "-1")])).unwrap_err().contains("number of bytes"));
        assert!(Limits::parse(&pairs(&[("no_secrets", "yes")])).unwrap_err().contains("1 or 0"));
    }

    #[test]
    fn each_limit_passed_is_one_reason() {
        let limits = Limits { max_wasted_bytes: Some(10), min_efficiency: Some(0.5), no_secrets: true };
        let fine = Measured { wasted: 10, efficiency: 0.5, secrets: Some(0) };
        assert!(reasons(&limits, &fine).is_empty());
        let bad = Measured { wasted: 11, efficiency: 0.25, secrets: Some(1) };
        assert_eq!(
            reasons(&limits, &bad),
            [
                "11 wasted bytes, more than the 10 allowed",
                "efficiency 0.2500, less than the 0.5 required",
                "1 secret found"
            ]
        );
    }
}
