//! The URLs of a layer's pages, read and written.
//!
//! Which blob a page is about travels in the same query as a download link
//! (`image`, `digest`, `layer`, `mt`), checked by [`DownloadLink::from_query`]. A path
//! inside the layer travels in the URL's path, `fs/usr/bin/` or `save/etc/motd`, each
//! name percent-encoded: names are bytes, and only the path carries them unchanged (the
//! query is decoded as UTF-8).
//!
//! Every link written is relative ([`Here`]), so the pages work unchanged under a
//! reverse proxy's prefix.

use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::query::{encode, encode_bytes, percent_decode, Plus};
use crate::reference::{ImageReference, Repository};

/// Longest path accepted in a URL.
const MAX_PATH_BYTES: usize = 16 * 1024;

/// A path inside a layer: relative, without `.`, `..` or empty names (the root is
/// empty). Built from a URL, which is checked, or from a listing, which is clean.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerPath(Vec<u8>);

impl LayerPath {
    /// The layer's root.
    pub fn root() -> LayerPath {
        LayerPath(Vec::new())
    }

    /// A path from a listing, whose paths are clean already.
    pub fn from_clean(path: &[u8]) -> LayerPath {
        LayerPath(path.to_vec())
    }

    /// Reads the part of a URL path after `fs/` or `save/`: percent-decoded, split on
    /// `/`. A trailing `/` (or nothing at all) asks for a directory, the `bool`.
    /// `.`, `..`, empty names and NUL are refused rather than resolved: the links
    /// layerpipe writes never have them.
    pub fn from_url(encoded: &str) -> Result<(LayerPath, bool), Error> {
        let bytes = percent_decode(encoded, Plus::Itself)
            .ok_or_else(|| Error::bad_request("bad %-escape in the URL's path"))?;
        if bytes.len() > MAX_PATH_BYTES {
            return Err(Error::bad_request(format!("the path is longer than {MAX_PATH_BYTES} bytes")));
        }
        let (path, dir) = match bytes.strip_suffix(b"/") {
            Some(path) => (path, true),
            None => (&bytes[..], bytes.is_empty()),
        };
        if !path.is_empty() {
            for name in path.split(|&b| b == b'/') {
                if matches!(name, b"" | b"." | b"..") || name.contains(&0) {
                    return Err(Error::bad_request("the path in the URL has an empty, '.', '..' or NUL name"));
                }
            }
        }
        Ok((LayerPath(path.to_vec()), dir))
    }

    /// The path's bytes (empty for the root).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The names from the root down.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|n| !n.is_empty())
    }

    /// How many names deep it is (0 for the root).
    pub fn depth(&self) -> usize {
        self.names().count()
    }

    /// The path `depth` names deep on the way to this one.
    pub fn ancestor(&self, depth: usize) -> LayerPath {
        let names: Vec<&[u8]> = self.names().take(depth).collect();
        LayerPath(names.join(&b'/'))
    }

    /// The last name (empty for the root).
    pub fn name(&self) -> &[u8] {
        super::entry::name(&self.0)
    }

    /// This path with `name` below it.
    pub fn join(&self, name: &[u8]) -> LayerPath {
        LayerPath(super::entry::join(&self.0, name))
    }

    /// The percent-encoded names joined by `/`, for a URL path.
    pub fn to_url(&self) -> String {
        self.names().map(encode_bytes).collect::<Vec<_>>().join("/")
    }

    /// The path for people: `/`-rooted, invalid UTF-8 shown as U+FFFD.
    pub fn display(&self) -> String {
        format!("/{}", String::from_utf8_lossy(&self.0))
    }
}

/// Whether `link` names a blob alone, as explore's `REPO@DIGEST` links do: its image is
/// pinned to the blob's own digest, so there is no image page to go back to, only the
/// repository's tags.
pub fn names_blob_alone(link: &DownloadLink) -> bool {
    link.image.digest() == Some(&link.digest)
}

/// The query naming a blob: `image=…&digest=…&layer=N&mt=…`.
pub fn blob_query(link: &DownloadLink) -> String {
    format!(
        "image={}&digest={}&layer={}&mt={}",
        encode(&link.image.to_string()),
        encode(link.digest.as_str()),
        link.layer,
        encode(&link.media_type)
    )
}

/// Where a page is, for writing relative links from it: how many directories below the
/// application's root its URL is (`files` is at the root, `fs/a/b/` and `fs/a/b/c` are
/// three below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Here {
    depth: usize,
}

impl Here {
    /// A page at the application's root (`/`, `files`).
    pub fn root() -> Here {
        Here { depth: 0 }
    }

    /// The page of directory `dir`, `fs/dir/`.
    pub fn dir(dir: &LayerPath) -> Here {
        Here { depth: 1 + dir.depth() }
    }

    /// The page of file `file`, `fs/dir/file`.
    pub fn file(file: &LayerPath) -> Here {
        Here { depth: file.depth().max(1) }
    }

    /// The way up to the application's root.
    fn up(self) -> String {
        if self.depth == 0 {
            "./".to_owned()
        } else {
            "../".repeat(self.depth)
        }
    }

    /// The image's page (for a blob named alone, its repository's tags).
    pub fn image(self, link: &DownloadLink) -> String {
        if names_blob_alone(link) {
            return format!("{}?repo={}", self.up(), encode(&Repository::from(&link.image).to_string()));
        }
        format!("{}?image={}", self.up(), encode(&link.image.to_string()))
    }

    /// The layer's download.
    pub fn download(self, link: &DownloadLink) -> String {
        format!("{}{}", self.up(), link.href())
    }

    /// The layer's file list, page `page` (from 1).
    pub fn files(self, link: &DownloadLink, page: usize) -> String {
        let page = if page > 1 { format!("&page={page}") } else { String::new() };
        format!("{}files?{}{page}", self.up(), blob_query(link))
    }

    /// Where a layer's file list's search form submits to (its fields make the query).
    pub fn files_search(self) -> String {
        format!("{}files", self.up())
    }

    /// The page of a directory (`dir`) or a file.
    pub fn fs(self, link: &DownloadLink, path: &LayerPath, dir: bool) -> String {
        let slash = if dir && !path.is_root() { "/" } else { "" };
        format!("{}fs/{}{slash}?{}", self.up(), path.to_url(), blob_query(link))
    }

    /// The download of one file.
    pub fn save(self, link: &DownloadLink, path: &LayerPath) -> String {
        format!("{}save/{}?{}", self.up(), path.to_url(), blob_query(link))
    }

    /// The page of `image` itself (its layers, or an index's platforms).
    pub fn image_of(self, image: &ImageReference) -> String {
        format!("{}?image={}", self.up(), encode(&image.to_string()))
    }

    /// The page of the platform manifest `digest` of the index `index`: it says which
    /// index it came from (`&index=`), so its page can link back.
    pub fn platform_of(self, index: &ImageReference, digest: &Digest) -> String {
        let platform = index.with_digest(digest.clone());
        format!("{}&index={}", self.image_of(&platform), encode(&index.to_string()))
    }

    /// Where the search form of the whole-image pages submits to: the merged root,
    /// without a query (a GET form writes its own).
    pub fn merged_search(self) -> String {
        format!("{}layers/", self.up())
    }

    /// The merged filesystem's page of a directory (`dir`) or an entry, `layers/PATH`.
    pub fn merged(self, image: &ImageReference, path: &LayerPath, dir: bool) -> String {
        let slash = if dir && !path.is_root() { "/" } else { "" };
        format!("{}layers/{}{slash}?image={}", self.up(), path.to_url(), encode(&image.to_string()))
    }

    /// Layer `layer` (from 1) of the image, each entry marked added, modified or removed
    /// against the layers below.
    pub fn changes(self, image: &ImageReference, layer: u32) -> String {
        format!("{}changes?image={}&layer={layer}", self.up(), encode(&image.to_string()))
    }

    /// The image's sizes page.
    pub fn sizes(self, image: &ImageReference) -> String {
        format!("{}sizes?image={}", self.up(), encode(&image.to_string()))
    }

    /// The image's secrets page.
    pub fn secrets(self, image: &ImageReference) -> String {
        format!("{}secrets?image={}", self.up(), encode(&image.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_are_decoded_and_checked() {
        let p = |s: &str| LayerPath::from_url(s).map(|(p, dir)| (p.as_bytes().to_vec(), dir));
        assert_eq!(p("").unwrap(), (b"".to_vec(), true));
        assert_eq!(p("usr/bin/").unwrap(), (b"usr/bin".to_vec(), true));
        assert_eq!(p("etc/motd").unwrap(), (b"etc/motd".to_vec(), false));
        assert_eq!(p("a%20b/c+d%FF").unwrap(), (b"a b/c+d\xff".to_vec(), false));
        for bad in ["..", "a/../b", "a/./b", "a//b", "/a", "%2E%2E/etc", "a%00", "%zz", "%4"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_round_trip_through_urls() {
        let path = LayerPath::from_clean(b"we ird/na%me/\xff\xfe/\"<x>\"");
        let (back, dir) = LayerPath::from_url(&path.to_url()).unwrap();
        assert_eq!((back, dir), (path.clone(), false));
        assert!(path.to_url().bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)));
        assert_eq!(path.depth(), 4);
        assert_eq!(path.ancestor(2).as_bytes(), b"we ird/na%me");
        assert_eq!(path.name(), b"\"<x>\"");
    }

    #[test]
    fn links_are_relative_to_where_the_page_is() {
        let link = DownloadLink {
            image: "r.io/a/b:v1".parse().unwrap(),
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            layer: 2,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let q = blob_query(&link);
        assert_eq!(link.href(), format!("download?{q}"));
        let dir = LayerPath::from_clean(b"usr/bin");
        assert_eq!(Here::root().fs(&link, &dir, true), format!("./fs/usr/bin/?{q}"));
        assert_eq!(Here::root().fs(&link, &LayerPath::root(), true), format!("./fs/?{q}"));
        assert_eq!(Here::dir(&dir).image(&link), "../../../?image=r.io%2Fa%2Fb%3Av1");
        assert_eq!(Here::dir(&LayerPath::root()).files(&link, 2), format!("../files?{q}&page=2"));
        let file = LayerPath::from_clean(b"usr/bin/env");
        assert_eq!(Here::file(&file).save(&link, &file), format!("../../../save/usr/bin/env?{q}"));
        assert_eq!(Here::file(&LayerPath::from_clean(b"top")).download(&link), format!("../download?{q}"));
        assert_eq!(
            Here::dir(&dir).merged(&link.image, &file, false),
            "../../../layers/usr/bin/env?image=r.io%2Fa%2Fb%3Av1"
        );
        assert_eq!(Here::root().merged(&link.image, &LayerPath::root(), true), "./layers/?image=r.io%2Fa%2Fb%3Av1");
        assert_eq!(Here::file(&file).sizes(&link.image), "../../../sizes?image=r.io%2Fa%2Fb%3Av1");
        // A blob named alone (explore's REPO@DIGEST) goes back to its repository's tags.
        let alone = DownloadLink { image: link.image.with_digest(link.digest.clone()), ..link };
        assert!(names_blob_alone(&alone));
        assert_eq!(Here::dir(&dir).image(&alone), "../../../?repo=r.io%2Fa%2Fb");
    }
}
