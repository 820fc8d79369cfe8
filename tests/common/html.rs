//! Reading layerpipe's pages in tests: its HTML escaping undone, its `[x]` links found.
//!
//! An image page's layer table offers each layer as `<a href="download?…">[x]</a>`. The
//! links are found by their href and then checked to be `[x]`, so that a page whose link
//! text changed fails loudly instead of looking like a page without downloads.

/// Undoes the page's HTML escaping of attribute values.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The `href`s of every `<a href="download?…">[x]</a>`, in page order, unescaped.
///
/// Panics on a `download?` link whose text is not `[x]`.
pub fn download_links(html: &str) -> Vec<String> {
    const START: &str = "<a href=\"download?";
    html.match_indices(START)
        .map(|(i, _)| {
            let from = i + "<a href=\"".len();
            let len = html[from..].find('"').expect("closing quote");
            assert!(
                html[from + len..].starts_with("\">[x]</a>"),
                "a download link that is not [x]: {}",
                &html[i..(i + 300).min(html.len())]
            );
            unescape(&html[from..from + len])
        })
        .collect()
}
