//! The trail at the top of every page about an image: registry › repository › tag (or
//! digest) › layer N (or the merged filesystem), each a link to its page, so a reader
//! deep in a layer is one click from the tag list. The path inside a layer or the merged
//! view continues below it, in the page's own `crumbs.html`.
//!
//! - The registry has no page of its own in layerpipe: it is shown, not linked.
//! - Links are relative to where the page is (its [`Here`]), as every link is, so the
//!   trail works under a path prefix.
//! - A digest is shortened to its first 12 hex digits, as `docker images` shows it; the
//!   full digest is in the link and the title.

use crate::download::DownloadLink;
use crate::layer::link::{Here, LayerPath};
use crate::query::encode;
use crate::reference::{ImageReference, Repository, DOCKER_HUB};

/// One step of the trail: what it names, and its page when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crumb {
    /// The name shown.
    pub name: String,
    /// The page it links to; `None` for the registry.
    pub href: Option<String>,
    /// The whole name, when `name` is shortened (a digest).
    pub title: Option<String>,
}

impl Crumb {
    fn link(name: impl Into<String>, href: String) -> Crumb {
        Crumb { name: name.into(), href: Some(href), title: None }
    }
}

/// The trail of a repository's page (its tags): registry › repository.
pub fn repository(here: Here, repo: &Repository) -> Vec<Crumb> {
    let reference = repo.as_reference();
    let registry = match reference.registry() {
        DOCKER_HUB => "Docker Hub".to_owned(),
        host => host.to_owned(),
    };
    let up = here.image_of(reference);
    // `image_of` gives `UP?image=…`: the tag list is `UP?repo=…` from the same place.
    let tags = format!("{}?repo={}", &up[..up.find('?').unwrap_or(up.len())], encode(&repo.to_string()));
    vec![Crumb { name: registry, href: None, title: None }, Crumb::link(reference.path_as_typed(), tags)]
}

/// The trail of an image's page: registry › repository › tag or digest (`latest` when
/// the reference names neither, as the registry is then asked for it).
pub fn image(here: Here, image: &ImageReference) -> Vec<Crumb> {
    let mut trail = repository(here, &Repository::from(image));
    let href = here.image_of(image);
    trail.push(match (image.tag(), image.digest()) {
        (Some(tag), _) => Crumb::link(tag, href),
        (None, Some(digest)) => {
            let hex = digest.as_str().split_once(':').map_or(digest.as_str(), |(_, hex)| hex);
            let short = format!("@{}", &hex[..hex.len().min(12)]);
            Crumb { name: short, href: Some(href), title: Some(digest.to_string()) }
        }
        (None, None) => Crumb::link("latest", href),
    });
    trail
}

/// The trail of a layer's pages: the image's, then `layer N`, linked to its files.
pub fn layer(here: Here, link: &DownloadLink) -> Vec<Crumb> {
    let mut trail = image(here, &link.image);
    trail.push(Crumb::link(format!("layer {}", link.layer), here.files(link, 1)));
    trail
}

/// The trail of the merged view's pages: the image's, then the merged root.
pub fn merged(here: Here, reference: &ImageReference) -> Vec<Crumb> {
    let mut trail = image(here, reference);
    trail.push(Crumb::link("merged filesystem", here.merged(reference, &LayerPath::root(), true)));
    trail
}

/// The trail of a page about the whole image (sizes, secrets, config…): the image's,
/// then the page's own name, linked to `href`.
pub fn image_page(here: Here, reference: &ImageReference, name: &str, href: String) -> Vec<Crumb> {
    let mut trail = image(here, reference);
    trail.push(Crumb::link(name, href));
    trail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(trail: &[Crumb]) -> Vec<&str> {
        trail.iter().map(|c| c.name.as_str()).collect()
    }

    fn hrefs(trail: &[Crumb]) -> Vec<Option<&str>> {
        trail.iter().map(|c| c.href.as_deref()).collect()
    }

    #[test]
    fn a_tag_trails_registry_repository_and_tag() {
        let reference: ImageReference = "127.0.0.1:5000/team/app:v1".parse().unwrap();
        let trail = image(Here::root(), &reference);
        assert_eq!(names(&trail), ["127.0.0.1:5000", "team/app", "v1"]);
        assert_eq!(
            hrefs(&trail),
            [None, Some("./?repo=127.0.0.1%3A5000%2Fteam%2Fapp"), Some("./?image=127.0.0.1%3A5000%2Fteam%2Fapp%3Av1")]
        );
    }

    #[test]
    fn docker_hub_is_named_and_a_bare_name_means_latest() {
        let reference: ImageReference = "ubuntu".parse().unwrap();
        assert_eq!(names(&image(Here::root(), &reference)), ["Docker Hub", "ubuntu", "latest"]);
    }

    #[test]
    fn a_digest_is_shortened_with_the_whole_in_its_title() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let reference: ImageReference = format!("team/app@{digest}").parse().unwrap();
        let trail = image(Here::root(), &reference);
        let last = trail.last().unwrap();
        assert_eq!(last.name, "@abababababab");
        assert_eq!(last.title.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn a_layer_deep_in_a_folder_links_back_up() {
        let link = DownloadLink {
            image: "127.0.0.1:5000/team/app:v1".parse().unwrap(),
            digest: format!("sha256:{}", "cd".repeat(32)).parse().unwrap(),
            layer: 2,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
        };
        let here = Here::dir(&LayerPath::from_clean(b"usr/bin"));
        let trail = layer(here, &link);
        assert_eq!(names(&trail), ["127.0.0.1:5000", "team/app", "v1", "layer 2"]);
        assert_eq!(trail[1].href.as_deref(), Some("../../../?repo=127.0.0.1%3A5000%2Fteam%2Fapp"));
        assert!(trail[3].href.as_deref().unwrap().starts_with("../../../files?image="), "{trail:?}");
    }

    #[test]
    fn the_merged_view_ends_at_its_root() {
        let reference: ImageReference = "team/app:v1".parse().unwrap();
        let trail = merged(Here::root(), &reference);
        assert_eq!(names(&trail)[3], "merged filesystem");
        assert_eq!(trail[3].href.as_deref(), Some("./layers/?image=team%2Fapp%3Av1"));
    }
}
