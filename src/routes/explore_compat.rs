//! explore's URL forms (jonjohnsonjr/dagdotdev, the code behind oci.dag.dev), so that
//! bookmarks and shared links into an explore deployment keep working on layerpipe.
//! Each form is parsed into what layerpipe's own pages take, then answered with a 302
//! to that page: one set of pages, two ways in.
//!
//! | explore's form | layerpipe's page |
//! |---|---|
//! | `/size/REPO@DIGEST[?mt=&size=]` | `files?…`: the blob's files by size |
//! | `/fs/REPO@DIGEST/[PATH][?mt=&size=]` | `fs/PATH?…`: a folder, or a file's preview |
//! | `/layers/IMAGE/[PATH]` | `layers/PATH?image=IMAGE`: the merged filesystem |
//! | `/sizes/IMAGE` | `sizes?image=IMAGE` |
//! | `/?blob=REPO@DIGEST[&mt=]` | `files?…`: a layer's files, or the blob's own page |
//! | `/?history=IMAGE`, `/?referrers=IMAGE` | `?image=IMAGE`, which shows both |
//!
//! - REPO carries its registry as in explore (`cgr.dev/chainguard/static`), Docker Hub
//!   when it has none; IMAGE is `REPO:TAG` or `REPO@DIGEST`.
//! - A blob named alone has no image and no layer number: its link names the image
//!   `REPO@DIGEST` (the blob's own digest, which the layer pages show as a blob of the
//!   repository) and layer 1, which only numbers the file a download is saved as.
//! - Without `mt`, the blob's first bytes pick it (gzip, zstd, tar, JSON or other), as
//!   the layer pages sniff a layer's compression; explore's `size` is not needed.
//! - layerpipe's own `/fs/PATH?image=…` and `/layers/PATH?image=…` always carry
//!   `image=`, and explore's never do: that query tells them apart.
//! - Every `Location` is relative to the request's own path, so the redirect works
//!   under a reverse proxy's prefix.
//!
//! Known gap: in `/layers/IMAGE/PATH`, a Docker Hub `NAME:TAG` whose tag is all digits
//! (`node:18/etc/`) reads like a registry `HOST:PORT`; it is taken as the image only
//! when nothing later in the path can end one.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;

use super::body::Body;
use super::App;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::layer::decompress::Compression;
use crate::layer::link::{Here, LayerPath};
use crate::query;
use crate::reference::{check_registry_host, ImageReference};

/// Bytes read to sniff a blob: a tar header's `ustar` magic ends at 262.
const SNIFF_BYTES: usize = 512;

/// The media types sniffing chooses between.
const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const JSON: &str = "application/json";
const OTHER: &str = "application/octet-stream";

/// A blob named explore's way, `REPO@DIGEST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BlobName {
    /// `REPO@DIGEST`: the repository holding the blob, pinned to the blob's digest.
    pub reference: ImageReference,
    /// The blob's digest.
    pub digest: Digest,
    /// The media type from `mt`, if the link had one.
    pub media_type: Option<String>,
}

/// What one of explore's URLs asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ExploreRequest {
    /// `/size/REPO@DIGEST` and `/?blob=REPO@DIGEST`: the blob's files by size (or, for a
    /// blob that is not a layer, its own page).
    Files(BlobName),
    /// `/fs/REPO@DIGEST/PATH`: a folder (`dir`) or an entry of the blob.
    Browse { blob: BlobName, path: LayerPath, dir: bool },
    /// `/layers/IMAGE/PATH`: a folder (`dir`) or an entry of the merged filesystem.
    Merged { image: ImageReference, path: LayerPath, dir: bool },
    /// `/sizes/IMAGE`.
    Sizes(ImageReference),
    /// `/?history=IMAGE` and `/?referrers=IMAGE`: the image page, which shows both.
    Image(ImageReference),
}

/// Whether a request is in one of explore's forms (and not in layerpipe's own): the
/// cheap test the route table makes before [`ExploreRequest::parse`].
pub(super) fn is_explore(path: &str, pairs: &[(String, String)]) -> bool {
    if query::get(pairs, "image").is_some() {
        return false;
    }
    match path {
        "/" => {
            query::get(pairs, "repo").is_none() && ["blob", "history", "referrers"].iter().any(|n| nonempty(pairs, n))
        }
        _ => ["/size/", "/sizes/", "/fs/", "/layers/"].iter().any(|p| path.starts_with(p)),
    }
}

fn nonempty(pairs: &[(String, String)], name: &str) -> bool {
    query::get(pairs, name).is_some_and(|v| !v.trim().is_empty())
}

impl ExploreRequest {
    /// Reads a request [`is_explore`] accepted: its path (still percent-encoded) and query.
    pub(super) fn parse(path: &str, pairs: &[(String, String)]) -> Result<ExploreRequest, Error> {
        let media_type = query::get(pairs, "mt").filter(|mt| !mt.is_empty()).map(str::to_owned);
        if path == "/" {
            let value = |name| query::get(pairs, name).map(str::trim).filter(|v| !v.is_empty());
            if let Some(blob) = value("blob") {
                return Ok(ExploreRequest::Files(blob_name(blob, media_type)?));
            }
            let image = value("history").or_else(|| value("referrers")).unwrap_or_default();
            return Ok(ExploreRequest::Image(image.parse()?));
        }
        let (route, rest) = path[1..].split_once('/').unwrap_or((&path[1..], ""));
        let (whole, dir) = LayerPath::from_url(rest)?;
        let names = names(&whole)?;
        let form = |shape: &str| format!("explore's form is /{route}/{shape}");
        match route {
            "size" | "fs" => {
                let end = names.iter().position(|n| n.contains('@')).ok_or_else(|| {
                    let shape = if route == "fs" { "REPO@DIGEST/PATH" } else { "REPO@DIGEST" };
                    Error::bad_request(format!(
                        "{}, with the blob's digest (layerpipe's own /{route}/ links carry ?image=)",
                        form(shape)
                    ))
                })?;
                let blob = blob_name(&names[..=end].join("/"), media_type)?;
                let (path, dir) = below(&names[end + 1..], dir);
                if route == "size" {
                    if !path.is_root() {
                        return Err(Error::bad_request(format!("{}, without a path after it", form("REPO@DIGEST"))));
                    }
                    return Ok(ExploreRequest::Files(blob));
                }
                Ok(ExploreRequest::Browse { blob, path, dir })
            }
            "layers" => {
                let end = image_end(&names).ok_or_else(|| {
                    Error::bad_request(format!(
                        "{}, where IMAGE is REPO:TAG or REPO@DIGEST (layerpipe's own /layers/ links carry ?image=)",
                        form("IMAGE/PATH")
                    ))
                })?;
                let image = names[..=end].join("/").parse()?;
                let (path, dir) = below(&names[end + 1..], dir);
                Ok(ExploreRequest::Merged { image, path, dir })
            }
            _ => {
                if names.is_empty() {
                    return Err(Error::bad_request(format!(
                        "{}, where IMAGE is REPO:TAG or REPO@DIGEST",
                        form("IMAGE")
                    )));
                }
                Ok(ExploreRequest::Sizes(names.join("/").parse()?))
            }
        }
    }

    /// The layerpipe URL that answers it, relative to layerpipe's root (`./…`), with the
    /// media type to use for a blob that had none.
    fn target(&self, sniffed: Option<&str>) -> Result<String, Error> {
        let here = Here::root();
        Ok(match self {
            ExploreRequest::Files(blob) => here.files(&link(blob, sniffed)?, 1),
            ExploreRequest::Browse { blob, path, dir } => here.fs(&link(blob, sniffed)?, path, *dir),
            ExploreRequest::Merged { image, path, dir } => here.merged(image, path, *dir),
            ExploreRequest::Sizes(image) => here.sizes(image),
            ExploreRequest::Image(image) => here.image_of(image),
        })
    }

    /// The blob whose media type must be sniffed: one named without `mt`.
    fn unknown_blob(&self) -> Option<&BlobName> {
        match self {
            ExploreRequest::Files(blob) | ExploreRequest::Browse { blob, .. } => {
                blob.media_type.is_none().then_some(blob)
            }
            _ => None,
        }
    }
}

/// The decoded names of a path as UTF-8 (references are ASCII; file names in the part
/// after one are put back as bytes by [`below`], so only text is accepted here).
fn names(path: &LayerPath) -> Result<Vec<&str>, Error> {
    path.names()
        .map(|n| std::str::from_utf8(n).map_err(|_| Error::bad_request("the URL's path is not UTF-8")))
        .collect()
}

/// The path made of `names`; no names is the root, a folder.
fn below(names: &[&str], dir: bool) -> (LayerPath, bool) {
    (LayerPath::from_clean(names.join("/").as_bytes()), dir || names.is_empty())
}

/// `REPO@DIGEST` read as a blob's name.
fn blob_name(text: &str, media_type: Option<String>) -> Result<BlobName, Error> {
    let reference: ImageReference = text.parse()?;
    let digest = reference
        .digest()
        .cloned()
        .ok_or_else(|| Error::bad_request(format!("{text:?} names no blob: explore's blob links are REPO@DIGEST")))?;
    Ok(BlobName { reference, digest, media_type })
}

/// Which of `names` ends the image in `/layers/IMAGE/PATH`: the first that carries a
/// tag or digest and makes, with those before it, a reference. A first name that may be
/// a registry `HOST:PORT` (with more after it) is passed over, unless nothing else can
/// end the image and it may also be `NAME:TAG`.
fn image_end(names: &[&str]) -> Option<usize> {
    let ends = |i: usize| {
        names[i].contains([':', '@'])
            && names[..=i].join("/").parse::<ImageReference>().is_ok_and(|r| r.tag().is_some() || r.digest().is_some())
    };
    let may_be_host =
        |i: usize| i == 0 && names.len() > 1 && !names[0].contains('@') && check_registry_host(names[0]).is_ok();
    // Only a bare `NAME:DIGITS` may be either; a dotted name, `localhost` or an IPv6
    // literal before the `:` is a host for sure.
    let surely_host = |i: usize| {
        let host = names[0].split(':').next().unwrap_or_default();
        may_be_host(i) && (host.contains('.') || host == "localhost" || host.starts_with('['))
    };
    (0..names.len())
        .find(|&i| !may_be_host(i) && ends(i))
        .or_else(|| (0..names.len()).find(|&i| !surely_host(i) && ends(i)))
}

/// The download link layerpipe's layer pages take for `blob`: the image `REPO@DIGEST`,
/// layer 1, its media type (or the sniffed one), checked as any link is.
fn link(blob: &BlobName, sniffed: Option<&str>) -> Result<DownloadLink, Error> {
    let media_type = blob.media_type.as_deref().or(sniffed).unwrap_or(OTHER);
    let pairs = [
        ("image".to_owned(), blob.reference.to_string()),
        ("digest".to_owned(), blob.digest.to_string()),
        ("layer".to_owned(), "1".to_owned()),
        ("mt".to_owned(), media_type.to_owned()),
    ];
    DownloadLink::from_query(&pairs)
}

/// The media type a blob's first bytes suggest: a gzip or zstd layer by the magic
/// number, a plain tar by its header's `ustar`, JSON by its first character; anything
/// else is plain bytes (its own page offers the download).
pub(super) fn sniff(head: &[u8]) -> &'static str {
    match Compression::sniff(head) {
        Compression::Gzip => GZIP_LAYER,
        Compression::Zstd => ZSTD_LAYER,
        Compression::None if head.get(257..262) == Some(b"ustar") => TAR_LAYER,
        Compression::None => match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => JSON,
            _ => OTHER,
        },
    }
}

/// The way from a request's path up to layerpipe's root: `./` at the root, one `../`
/// for each folder below it (`/size/a/b@d` is two down).
fn up_from(path: &str) -> String {
    match path.matches('/').count() {
        0 | 1 => "./".to_owned(),
        n => "../".repeat(n - 1),
    }
}

/// 302 to `location`, a relative link of layerpipe's own (percent-encoded: a valid header).
fn found(location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::try_from(location).expect("percent-encoded links are visible ASCII");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

impl App {
    /// One of explore's URLs (`path` as requested, still encoded): a 302 to the layerpipe
    /// page that answers it.
    pub(super) async fn explore(&self, path: &str, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let request = ExploreRequest::parse(path, pairs)?;
        let sniffed = match request.unknown_blob() {
            Some(blob) => Some(self.sniff_blob(blob).await?),
            None => None,
        };
        let target = request.target(sniffed)?;
        let from_root = target.strip_prefix("./").unwrap_or(&target);
        Ok(found(&format!("{}{from_root}", up_from(path))))
    }

    /// The media type [`sniff`] gives the blob's first bytes, asked for as a range.
    async fn sniff_blob(&self, blob: &BlobName) -> Result<&'static str, Error> {
        let mut range = HeaderMap::new();
        range.insert(header::RANGE, HeaderValue::from_static("bytes=0-511"));
        let response = self.registry.blob(&blob.reference, &blob.digest, &Method::GET, range).await?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(OTHER); // an empty blob
        }
        let idle = self.config().timeouts.idle_read();
        let mut body = response.into_body();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        // A registry that ignores the range sends the whole blob: it is cut off here.
        while head.len() < SNIFF_BYTES {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Error::bad_gateway(format!("reading the start of blob {}: {e}", blob.digest)))
                }
                Err(_) => {
                    return Err(Error::gateway_timeout(format!(
                        "the registry sent nothing of blob {} for {idle:?}",
                        blob.digest
                    )))
                }
            };
            if let Ok(data) = frame.into_data() {
                let data: Bytes = data;
                head.extend_from_slice(&data[..data.len().min(SNIFF_BYTES - head.len())]);
            }
        }
        Ok(sniff(&head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0b342bf7e74f5fbef621a6d413a2a56088d405057e0e165e383904fe37fe28a2";

    fn pairs(q: &str) -> Vec<(String, String)> {
        query::parse(q).unwrap()
    }

    fn parse(path: &str, q: &str) -> Result<ExploreRequest, Error> {
        assert!(is_explore(path, &pairs(q)), "{path}?{q}");
        ExploreRequest::parse(path, &pairs(q))
    }

    /// Where a request redirects, as the route would (no sniffing: `sniffed` stands in).
    fn location(path: &str, q: &str, sniffed: Option<&str>) -> String {
        let target = parse(path, q).unwrap().target(sniffed).unwrap();
        format!("{}{}", up_from(path), target.strip_prefix("./").unwrap())
    }

    #[test]
    fn the_seeds_links_become_layerpipes_pages() {
        let mt = "mt=application%2Fvnd.docker.image.rootfs.diff.tar.gzip&size=26470178";
        let blob = format!("smoshysmosh%2Fcomposer%40sha256%3A{HEX}");
        let query = format!(
            "image={blob}&digest=sha256%3A{HEX}&layer=1&mt=application%2Fvnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(
            location(&format!("/size/smoshysmosh/composer@sha256:{HEX}"), mt, None),
            format!("../../files?{query}")
        );
        assert_eq!(
            location(&format!("/fs/smoshysmosh/composer@sha256:{HEX}/"), mt, None),
            format!("../../../fs/?{query}")
        );
        // With a registry host in front, one folder further down.
        let host = format!("/size/127.0.0.1:5000/smoshysmosh/composer@sha256:{HEX}");
        assert!(location(&host, mt, None).starts_with("../../../files?image=127.0.0.1%3A5000%2Fsmoshysmosh"));
    }

    #[test]
    fn blobs_keep_their_path_and_take_the_sniffed_type_without_mt() {
        let path = format!("/fs/cgr.dev/chainguard/static@sha256:{HEX}/etc/os%20release");
        let ExploreRequest::Browse { blob, path: inside, dir } = parse(&path, "").unwrap() else { panic!() };
        assert_eq!(blob.reference.to_string(), format!("cgr.dev/chainguard/static@sha256:{HEX}"));
        assert_eq!((inside.as_bytes(), dir, blob.media_type), (&b"etc/os release"[..], false, None));
        let to = location(&path, "", Some(ZSTD_LAYER));
        assert!(to.starts_with("../../../../../fs/etc/os%20release?image=cgr.dev"), "{to}");
        assert!(to.ends_with("&layer=1&mt=application%2Fvnd.oci.image.layer.v1.tar%2Bzstd"), "{to}");
        // No path at all is the root folder.
        let root = format!("/fs/ubuntu@sha256:{HEX}");
        assert!(
            matches!(parse(&root, "").unwrap(), ExploreRequest::Browse { dir: true, ref path, .. } if path.is_root())
        );
        let blob = format!("blob=ubuntu%40sha256%3A{HEX}");
        assert!(location("/", &blob, Some(JSON)).starts_with("./files?image=ubuntu%40sha256"));
        assert!(location("/", &format!("{blob}&mt=a%2Fb"), Some(JSON)).ends_with("&mt=a%2Fb"));
    }

    #[test]
    fn images_end_where_a_tag_or_digest_does() {
        let merged = |path: &str| match parse(path, "").unwrap() {
            ExploreRequest::Merged { image, path, dir } => {
                (image.to_string(), String::from_utf8(path.as_bytes().to_vec()).unwrap(), dir)
            }
            other => panic!("{other:?}"),
        };
        let m = |i: &str, p: &str, d| (i.to_owned(), p.to_owned(), d);
        assert_eq!(merged("/layers/ubuntu:22.04/"), m("ubuntu:22.04", "", true));
        assert_eq!(merged("/layers/ubuntu:22.04"), m("ubuntu:22.04", "", true));
        assert_eq!(merged("/layers/ubuntu:22.04/usr/lib/a@b:c"), m("ubuntu:22.04", "usr/lib/a@b:c", false));
        assert_eq!(merged("/layers/127.0.0.1:5000/team/app:v1/etc/"), m("127.0.0.1:5000/team/app:v1", "etc", true));
        let digest = format!("localhost:5000/app@sha256:{HEX}");
        assert_eq!(merged(&format!("/layers/{digest}/x:y")), m(&digest, "x:y", false));
        assert_eq!(merged("/layers/node:18/etc/"), m("node:18", "etc", true));
        assert_eq!(
            location("/layers/ubuntu:22.04/usr/bin/", "", None),
            "../../../../layers/usr/bin/?image=ubuntu%3A22.04"
        );
        assert_eq!(location("/sizes/ghcr.io/o/a:v1", "", None), "../../../sizes?image=ghcr.io%2Fo%2Fa%3Av1");
        assert_eq!(location("/sizes/ghcr.io/o/a:v1/", "", None), "../../../../sizes?image=ghcr.io%2Fo%2Fa%3Av1");
        assert_eq!(location("/", "history=ubuntu%3A22.04", None), "./?image=ubuntu%3A22.04");
        assert_eq!(location("/", "referrers=ubuntu%3A22.04", None), "./?image=ubuntu%3A22.04");
    }

    #[test]
    fn layerpipes_own_forms_are_left_alone() {
        for (path, q) in [
            ("/fs/usr/bin/", "image=a%3A1&digest=x"),
            ("/layers/etc/", "image=a%3A1"),
            ("/", "image=a%3A1"),
            ("/", "repo=a&blob=x"),
            ("/", ""),
            ("/sizes", "image=a"),
            ("/files", "blob=x"),
        ] {
            assert!(!is_explore(path, &pairs(q)), "{path}?{q}");
        }
    }

    #[test]
    fn malformed_forms_are_bad_requests() {
        for (path, q) in [
            ("/size/ubuntu", ""),
            ("/size/ubuntu:22.04", ""),
            (&*format!("/size/ubuntu@sha256:{HEX}/etc"), ""),
            ("/fs/usr/bin/", ""),
            ("/fs/ubuntu@sha256:abc/", ""),
            ("/layers/etc/passwd", ""),
            ("/layers/", ""),
            ("/layers/127.0.0.1:5000/team/app/etc/", ""),
            ("/layers/localhost:5000/app", ""),
            ("/sizes/", ""),
            ("/", "blob=ubuntu%3A22.04"),
            ("/", "history=%3C%3E"),
            ("/fs/a/%2E%2E/b@sha256:x", ""),
        ] {
            let e = parse(path, q).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{path}?{q}: {}", e.message());
        }
        let bad_mt = format!("/size/ubuntu@sha256:{HEX}");
        let e = parse(&bad_mt, "mt=nope").unwrap().target(None).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn sniffing_names_layers_json_and_other_bytes() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), GZIP_LAYER);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), ZSTD_LAYER);
        assert_eq!(sniff(&tar), TAR_LAYER);
        assert_eq!(sniff(b"  \n{\"a\":1}"), JSON);
        assert_eq!(sniff(b"[1]"), JSON);
        assert_eq!(sniff(b"hello"), OTHER);
        assert_eq!(sniff(b""), OTHER);
    }
}
