//! Text for people, shared by the pages: sizes, dates, names of paths.

/// A size in binary units, as people read it: `512 B`, `25.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds since 1970 as `2023-11-14 22:13:20 UTC`.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil: exact for every day of an i64 range that matters.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

/// A path for people: `/`-rooted, invalid UTF-8 and control characters shown as U+FFFD.
pub fn display_path(path: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(path);
    let shown: String = lossy.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    format!("/{shown}")
}

/// A name for people, like [`display_path`] without the leading `/`.
pub fn display_name(name: &[u8]) -> String {
    display_path(name)[1..].to_owned()
}

/// A count of things, whatever integer type holds it.
pub trait Number: Copy {
    /// The count as a `u64`.
    fn get(self) -> u64;
}

impl Number for usize {
    fn get(self) -> u64 {
        self as u64
    }
}

impl Number for u64 {
    fn get(self) -> u64 {
        self
    }
}

/// Templates pass their fields by reference.
impl<N: Number> Number for &N {
    fn get(self) -> u64 {
        (*self).get()
    }
}

impl Number for u32 {
    fn get(self) -> u64 {
        u64::from(self)
    }
}

/// `n` with a comma between each three digits, as people read it: `100,001`.
pub fn thousands(n: impl Number) -> String {
    let digits = n.get().to_string();
    // The first group holds what is left over by threes (all three when none is).
    let lead = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    out.push_str(&digits[..lead]);
    for group in digits.as_bytes()[lead..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// `n` and `word`, agreeing: "1 layer", "2 layers", "100,001 files" (a word whose
/// plural is `+s`).
pub fn count(n: impl Number, word: &str) -> String {
    count_as(n, word, &format!("{word}s"))
}

/// `n` and `one` or `many`, agreeing: "1 entry", "100,001 entries".
pub fn count_as(n: impl Number, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n.get() == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_words() {
        assert_eq!(count(0usize, "file"), "0 files");
        assert_eq!(count(1usize, "file"), "1 file");
        assert_eq!(count(2usize, "layer"), "2 layers");
        assert_eq!(count(100_001u64, "file"), "100,001 files");
        assert_eq!(count_as(1u32, "entry", "entries"), "1 entry");
        assert_eq!(count_as(1000usize, "entry", "entries"), "1,000 entries");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1000u64), "1,000");
        assert_eq!(thousands(65_687u64), "65,687");
        assert_eq!(thousands(100_001usize), "100,001");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(26_470_178), "25.2 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn names_for_people() {
        assert_eq!(display_path(b"a/b\xff\n"), "/a/b\u{fffd}\u{fffd}");
        assert_eq!(display_name(b"x"), "x");
    }
}
