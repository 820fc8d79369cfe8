//! A repository's tags, a page at a time, each leading to its image's page.

use askama::Template;

use super::{render, Frame};
use crate::layer::link::Here;
use crate::query::encode;
use crate::reference::Repository;
use crate::registry::TagPage;

/// One tag and its image page.
struct TagRow {
    name: String,
    href: String,
    /// The diff page that asks what to compare this tag with.
    compare: String,
}

#[derive(Template)]
#[template(path = "tags.html", config = "src/pages/askama.toml")]
struct Tags {
    frame: Frame,
    repo: String,
    /// The tag this page starts after, when it is not the first page.
    after: Option<String>,
    tags: Vec<TagRow>,
    /// The first page, from a later one.
    first: Option<String>,
    next: Option<String>,
}

/// The page of `repo`'s tags after `last` (the first page without it).
pub fn tags(repo: &Repository, last: Option<&str>, page: &TagPage) -> String {
    let name = repo.to_string();
    let list = |last: Option<&str>| {
        let after = last.map_or(String::new(), |l| format!("&last={}", encode(l)));
        format!("./?repo={}{after}", encode(&name))
    };
    let tags = page
        .tags
        .iter()
        .map(|tag| {
            let image = encode(&repo.image_text(tag));
            TagRow { name: tag.clone(), href: format!("./?image={image}"), compare: format!("./diff?a={image}") }
        })
        .collect();
    render(&Tags {
        frame: Frame {
            title: format!("{name} tags"),
            image: name.clone(),
            command: Some(super::commands::tags(repo)),
            trail: super::breadcrumbs::repository(Here::root(), repo),
        },
        after: last.map(str::to_owned),
        first: last.map(|_| list(None)),
        next: page.next.as_deref().map(|next| list(Some(next))),
        repo: name,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(tags: &[&str], next: Option<&str>) -> TagPage {
        TagPage { tags: tags.iter().map(|t| t.to_string()).collect(), next: next.map(str::to_owned) }
    }

    #[test]
    fn tags_link_to_their_images_and_the_next_page() {
        let repo: Repository = "127.0.0.1:5000/team/app".parse().unwrap();
        let html = tags(&repo, None, &page(&["v1", "v2"], Some("v2")));
        assert!(html.contains("<table id=\"tags\">"), "{html}");
        assert!(html.contains("<a href=\"./?image=127.0.0.1%3A5000%2Fteam%2Fapp%3Av1\">v1</a>"), "{html}");
        assert!(html.contains("<a href=\"./?repo=127.0.0.1%3A5000%2Fteam%2Fapp&amp;last=v2\" rel=\"next\">"), "{html}");
        assert!(!html.contains("rel=\"first\""), "{html}");
        let last = tags(&repo, Some("v2"), &page(&["v3"], None));
        assert!(last.contains("<a href=\"./?repo=127.0.0.1%3A5000%2Fteam%2Fapp\" rel=\"first\">"), "{last}");
        assert!(!last.contains("rel=\"next\""), "{last}");
        assert!(last.contains("after <code>v2</code>"), "{last}");
    }

    #[test]
    fn no_tags_says_so_and_strings_are_escaped() {
        let repo: Repository = "team/app".parse().unwrap();
        let html = tags(&repo, None, &page(&[], None));
        assert!(html.contains("<p id=\"no-tags\">"), "{html}");
        assert!(!html.contains("<table id=\"tags\">"), "{html}");
        let evil = tags(&repo, Some("<b>"), &page(&["\"><script>"], None));
        assert!(!evil.contains("<script>") && !evil.contains("<b>"), "{evil}");
        assert!(evil.contains("&quot;&gt;&lt;script&gt;</a>"), "{evil}");
    }
}
