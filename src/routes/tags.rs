//! A repository's tags: `/?repo=REPO[&last=TAG]`.

use http::Response;

use super::body::Body;
use super::respond::{answer, Format};
use super::App;
use crate::api;
use crate::error::Error;
use crate::pages;
use crate::query;
use crate::reference::Repository;

/// Tags a page lists. distribution's own default page is 100, and a hundred short links
/// stay a small page; registries that ignore `n` are paged by the client.
pub const TAGS_PER_PAGE: usize = 100;

/// Longest `last` passed on: distribution's longest tag.
const MAX_LAST_LEN: usize = 128;

impl App {
    /// `/?repo=REPO[&last=TAG]`: the repository's tags after `last`, a page at a time.
    pub(super) async fn tags_page(
        &self,
        repo: &str,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let repo: Repository = repo.parse()?;
        let last = query::get(pairs, "last").filter(|l| !l.is_empty());
        if last.is_some_and(|l| l.len() > MAX_LAST_LEN) {
            return Err(Error::bad_request(format!("last must be a tag of at most {MAX_LAST_LEN} characters")));
        }
        let page = self.registry.tags(repo.as_reference(), TAGS_PER_PAGE, last).await?;
        Ok(answer(format, || pages::tags(&repo, last, &page), || api::tags(&repo, last, &page)))
    }
}
