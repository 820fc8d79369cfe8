//! Listing a repository's tags (`GET /v2/NAME/tags/list?n=N&last=T`), a page at a time,
//! with the registry's `Link` header telling where the next page starts.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use serde::Deserialize;

use super::{status_error, RegistryClient};
use crate::error::Error;
use crate::reference::ImageReference;
use crate::upstream::Transport;

/// Largest tag list response read. Registries that ignore `n` send every tag at once:
/// this is ~50,000 tags of typical length.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// One page of a repository's tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagPage {
    /// The tags, in the registry's order (lexical, for distribution).
    pub tags: Vec<String>,
    /// The `last` to ask for the next page with, when there is one.
    pub next: Option<String>,
}

impl RegistryClient {
    /// Up to `n` tags of `repository`'s repository after tag `last`. Some registries
    /// (distribution 2.8 among them) ignore `n` and `last` and send every tag in no
    /// order; their list is paged here instead, in lexical order as distribution 3 does.
    pub async fn tags(&self, repository: &ImageReference, n: usize, last: Option<&str>) -> Result<TagPage, Error> {
        let registry = self.config.registry(repository.registry());
        let mut path = format!("/v2/{}/tags/list?n={n}", repository.repository());
        if let Some(last) = last {
            path.push_str("&last=");
            path.push_str(&crate::query::encode(last));
        }
        let response = self
            .get(&registry, repository.repository(), Transport::Pooled, &Method::GET, &path, HeaderMap::new())
            .await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(&response, &format!("repository {} not found", repository.repository())));
        }
        let link = response.headers().get(header::LINK).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = self.read_limited(repository.registry(), response, MAX_RESPONSE, "tag list").await?;
        let page = parse(&body, link.as_deref()).map_err(|e| self.invalid(repository.registry(), e))?;
        Ok(if page.tags.len() > n { page_locally(page.tags, n, last) } else { page })
    }
}

/// The page of `n` tags after `last` of a registry's whole list.
fn page_locally(mut tags: Vec<String>, n: usize, last: Option<&str>) -> TagPage {
    tags.sort_unstable();
    tags.dedup();
    let start = last.map_or(0, |last| tags.partition_point(|t| t.as_str() <= last));
    let rest = &tags[start..];
    let shown = rest[..rest.len().min(n)].to_vec();
    let next = (rest.len() > n).then(|| shown.last().cloned()).flatten();
    TagPage { tags: shown, next }
}

/// A tag list response and its `Link` header.
fn parse(body: &[u8], link: Option<&str>) -> Result<TagPage, String> {
    #[derive(Deserialize)]
    struct Raw {
        tags: Option<Vec<String>>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("the registry sent an invalid tag list: {e}"))?;
    Ok(TagPage { tags: raw.tags.unwrap_or_default(), next: link.and_then(next_last) })
}

/// The `last` parameter of a `Link: <…?n=2&last=b>; rel="next"` header.
fn next_last(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim().split_once('=').is_some_and(|(k, v)| k.trim() == "rel" && v.trim().trim_matches('"') == "next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let query = target.split_once('?')?.1;
        let pairs = crate::query::parse(query).ok()?;
        is_next.then(|| crate::query::get(&pairs, "last").map(str::to_owned)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(next_last(r#"</v2/a/tags/list?n=2&last=v1.2>; rel="next""#).as_deref(), Some("v1.2"));
        assert_eq!(next_last(r#"<https://r.io/v2/a/tags/list?last=x%2By&n=5>; rel=next"#).as_deref(), Some("x+y"));
        assert_eq!(next_last(r#"</v2/a/tags/list?n=2&last=b>; rel="prev""#), None);
        assert_eq!(next_last("garbage"), None);
        assert_eq!(next_last(r#"</v2/a/tags/list?n=2>; rel="next""#), None);
    }

    #[test]
    fn whole_lists_are_paged_here_in_lexical_order() {
        let all: Vec<String> = ["c", "a", "e", "b", "d"].map(String::from).to_vec();
        let first = page_locally(all.clone(), 2, None);
        assert_eq!((first.tags.as_slice(), first.next.as_deref()), (&["a".to_owned(), "b".to_owned()][..], Some("b")));
        let last = page_locally(all.clone(), 2, Some("d"));
        assert_eq!((last.tags.as_slice(), last.next), (&["e".to_owned()][..], None));
        let after_c = page_locally(all.clone(), 2, Some("c"));
        assert_eq!((after_c.tags.as_slice(), after_c.next), (&["d".to_owned(), "e".to_owned()][..], None));
        assert_eq!(page_locally(all, 2, Some("z")).tags, Vec::<String>::new());
    }

    #[test]
    fn tag_lists_parse_with_or_without_tags() {
        let page = parse(br#"{"name":"a","tags":["1","2"]}"#, None).unwrap();
        assert_eq!(page, TagPage { tags: vec!["1".into(), "2".into()], next: None });
        assert!(parse(br#"{"name":"a","tags":null}"#, None).unwrap().tags.is_empty());
        assert!(parse(b"[", None).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_link_header_parses_without_panicking(link in ".{0,200}") {
            let _ = next_last(&link);
        }
    }
}
