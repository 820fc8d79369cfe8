//! A page's size budget. A layer can have a million entries and names of kilobytes
//! (any registry can serve such a layer), so a table page must not grow with them:
//! names are shortened in tables, and a table page ends after [`ROWS_PER_PAGE`] rows or
//! when the next row could pass [`TABLE_BUDGET`], whichever comes first.

use std::borrow::Cow;

/// Most bytes of any one page. The table of a page gets `TABLE_BUDGET`; the rest of
/// it (frame, heading, notes, breadcrumbs, page links) is bounded by the longest URL
/// path layerpipe reads (16 KiB) and the few breadcrumbs shown, well under the other
/// half.
pub const PAGE_BUDGET: usize = 12 * 1024 * 1024;

/// Most bytes of table rows on one page: 10,000 rows of names of ordinary length fit
/// (about 650 bytes each, counted as [`row_cost`] counts).
pub const TABLE_BUDGET: usize = 8 * 1024 * 1024;

/// Most rows on one page of a file list or a folder.
pub const ROWS_PER_PAGE: usize = 10_000;

/// Most characters of a name shown in a table; longer ones lose their middle. The
/// entry's own page shows it whole.
pub const MAX_SHOWN_CHARS: usize = 200;

/// Breadcrumbs shown at each end of a deep path; those between collapse into `…`.
pub const CRUMBS_AT_EACH_END: usize = 4;

/// `s` with at most [`MAX_SHOWN_CHARS`] characters: a longer one keeps its start and
/// its end around a `…`. Counted in characters, so no character is ever cut.
pub fn shorten(s: &str) -> Cow<'_, str> {
    shorten_to(s, MAX_SHOWN_CHARS)
}

/// `s` with at most `max` characters (at least 2), shortened as [`shorten`] does.
pub fn shorten_to(s: &str, max: usize) -> Cow<'_, str> {
    let max = max.max(2);
    let count = s.chars().count();
    if count <= max {
        return Cow::Borrowed(s);
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(count - tail).collect();
    Cow::Owned(format!("{start}…{end}"))
}

/// The most bytes a row can take on a page, given its link's length and the raw bytes
/// of the names it shows. An upper bound, cheap enough to take for every entry of a
/// listing.
pub fn row_cost(href_bytes: usize, shown: &[&[u8]]) -> usize {
    // The row's own markup, the longest size and mode cells, and a ⚠ with its reason.
    const MARKUP: usize = 320;
    // Three `&` → `&amp;` in the link's query.
    let href = href_bytes.saturating_add(12);
    let names = shown.iter().map(|name| shown_bound(name)).fold(0, usize::saturating_add);
    MARKUP.saturating_add(href).saturating_add(names)
}

/// The most bytes a name takes in a table: shortened to [`MAX_SHOWN_CHARS`] (escaped,
/// at most 6 bytes each, and the `…`), and never more than each of its bytes escaped
/// (at most 6) or replaced by U+FFFD (3).
fn shown_bound(name: &[u8]) -> usize {
    shown_bound_to(name, MAX_SHOWN_CHARS)
}

/// The most bytes a name takes in a table, as for a name shortened to `max` characters.
pub fn shown_bound_to(name: &[u8], max: usize) -> usize {
    let whole = name
        .iter()
        .map(|&b| match b {
            b'"' => 6,
            b'&' | b'\'' => 5,
            b'<' | b'>' => 4,
            b if !(0x20..0x7f).contains(&b) => 3,
            _ => 1,
        })
        .fold(0, usize::saturating_add);
    whole.min(max.saturating_mul(6).saturating_add(3))
}

/// Where each page of a table starts, for rows costing `costs`: a page ends after
/// [`ROWS_PER_PAGE`] rows or before the row that would pass [`TABLE_BUDGET`]. There is
/// always a first page, and a page always holds at least one row.
pub fn page_starts(costs: impl Iterator<Item = usize>) -> Vec<usize> {
    page_starts_by(costs, ROWS_PER_PAGE)
}

/// [`page_starts`] with at most `rows_per_page` rows a page, for tables whose rows are
/// heavier than a file list's.
pub fn page_starts_by(costs: impl Iterator<Item = usize>, rows_per_page: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let (mut rows, mut bytes) = (0usize, 0usize);
    for (i, cost) in costs.enumerate() {
        if rows > 0 && (rows >= rows_per_page || bytes.saturating_add(cost) > TABLE_BUDGET) {
            starts.push(i);
            (rows, bytes) = (0, 0);
        }
        rows += 1;
        bytes = bytes.saturating_add(cost);
    }
    starts
}

/// The rows of page `page` (from 1) of a table that `starts` cuts `total` rows into;
/// `None` when there is no such page.
pub fn page_range(starts: &[usize], total: usize, page: usize) -> Option<std::ops::Range<usize>> {
    let start = *starts.get(page.checked_sub(1)?)?;
    let end = starts.get(page).copied().unwrap_or(total);
    Some(start..end)
}

/// Bytes `bytes` take percent-encoded.
pub fn encoded_len(bytes: &[u8]) -> usize {
    bytes.iter().map(|&b| if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') { 1 } else { 3 }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_lose_their_middle_by_characters() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(150) + &"ü".repeat(150);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_SHOWN_CHARS);
        assert!(short.starts_with("éé") && short.ends_with("üü") && short.contains('…'));
        let exact = "x".repeat(MAX_SHOWN_CHARS);
        assert_eq!(shorten(&exact), exact);
    }

    #[test]
    fn pages_end_at_the_row_count_or_the_byte_budget() {
        assert_eq!(page_starts(std::iter::empty()), vec![0]);
        assert_eq!(page_starts(std::iter::repeat_n(1, 25_000)), vec![0, 10_000, 20_000]);
        let big = TABLE_BUDGET / 3;
        assert_eq!(page_starts(std::iter::repeat_n(big, 7)), vec![0, 3, 6]);
        // A row over the budget still gets a page of its own.
        assert_eq!(page_starts([usize::MAX, 1].into_iter()), vec![0, 1]);
        let starts = page_starts(std::iter::repeat_n(big, 7));
        assert_eq!(page_range(&starts, 7, 3), Some(6..7));
        assert_eq!(page_range(&starts, 7, 4), None);
        assert_eq!(page_range(&starts, 7, 0), None);
    }
}
