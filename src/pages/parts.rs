//! The widgets several pages share: the links around a long table's pages, the
//! breadcrumbs to a path, and an entry's type and mode as the listings show them. They
//! are the layer pages' and the whole-image pages' alike, so they live here rather than
//! in either.

use super::budget::{self, shorten};
use super::text::display_name;
use crate::download::DownloadLink;
use crate::layer::entry::{self, Kind};
use crate::layer::link::{Here, LayerPath};
use crate::layer::listing::EntryRef;

/// Where the other pages of a long table are (`page_nav.html`).
pub(super) struct PageNav {
    pub(super) page: usize,
    pub(super) pages: usize,
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
}

impl PageNav {
    /// The links around page `page` of `pages`, `href` making each; none for one page.
    pub(super) fn new(page: usize, pages: usize, href: impl Fn(usize) -> String) -> Option<PageNav> {
        (pages > 1).then(|| PageNav {
            page,
            pages,
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
        })
    }
}

/// An entry's type, as the listing's type column says it.
pub(super) fn kind_text(e: &EntryRef<'_>) -> String {
    let link = || display_name(e.link());
    match e.entry.kind {
        Kind::File => "file".to_owned(),
        Kind::Dir => "dir".to_owned(),
        Kind::Symlink => format!("symlink → {}", shorten(&link())),
        Kind::HardLink => format!("hard link → {}", shorten(&link())),
        Kind::CharDevice => format!("char device {},{}", e.entry.device.0, e.entry.device.1),
        Kind::BlockDevice => format!("block device {},{}", e.entry.device.0, e.entry.device.1),
        Kind::Fifo => "fifo".to_owned(),
        Kind::Whiteout => "deleted (whiteout)".to_owned(),
        Kind::Opaque => "opaque dir (hides lower layers)".to_owned(),
        Kind::Sparse => "sparse file".to_owned(),
        Kind::Other(flag) => format!("tar type {}", (flag as char).escape_default()),
    }
}

/// The mode: octal (on hover) and `-rwxr-xr-x`.
pub(super) fn mode(e: &EntryRef<'_>) -> (String, String) {
    (format!("{:04o}", e.entry.mode), entry::mode_string(e.entry.kind, e.entry.mode))
}

/// One step of the breadcrumbs: a name, linked unless it is where the page is.
pub(super) struct Crumb {
    pub(super) name: String,
    pub(super) href: Option<String>,
}

/// The breadcrumbs to a path (`crumbs.html`): `/ › usr › bin`, each a link but the last.
/// (`›`, not `/`, between them: the root is `/` itself, and `/usr` would read as one
/// link.)
pub(super) struct Crumbs {
    /// The root's link; none when the page is the root's.
    pub(super) root: Option<String>,
    pub(super) names: Vec<Crumb>,
}

impl Crumbs {
    /// The breadcrumbs to `path` in the layer `link` names, each to its folder's page.
    pub(super) fn new(link: &DownloadLink, here: Here, path: &LayerPath) -> Crumbs {
        Crumbs::to(path, |dir| here.fs(link, dir, true))
    }

    /// The breadcrumbs to `path`, `href` linking each folder on the way.
    pub(super) fn to(path: &LayerPath, href: impl Fn(&LayerPath) -> String) -> Crumbs {
        let depth = path.depth();
        let ends = budget::CRUMBS_AT_EACH_END;
        let mut names = Vec::new();
        for (i, name) in path.names().enumerate() {
            // A deep path shows its first and last folders, so the crumbs stay small.
            if i >= ends && i + ends < depth {
                if i == ends {
                    names.push(Crumb { name: "…".to_owned(), href: None });
                }
                continue;
            }
            names.push(Crumb {
                name: shorten(&display_name(name)).into_owned(),
                href: (i + 1 < depth).then(|| href(&path.ancestor(i + 1))),
            });
        }
        Crumbs { root: (depth > 0).then(|| href(&LayerPath::root())), names }
    }
}
