//! The equivalent command each page shows, as explore does: the `crane` (or `dive`,
//! `trufflehog`) line that gets the same data from a shell, ready to copy. Commands are
//! text on the page (escaped like any value), never run by layerpipe.
//!
//! Every argument that is not plainly safe for a POSIX shell is single-quoted, so a
//! path with spaces or quotes copies as one argument.

use crate::download::DownloadLink;
use crate::layer::link::LayerPath;
use crate::manifest::LayerFormat;
use crate::reference::{ImageReference, Repository};

/// `arg` as one POSIX shell word.
pub fn quoted(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The image page: its manifest.
pub fn image(reference: &ImageReference) -> String {
    format!("crane manifest {}", quoted(&reference.to_string()))
}

/// The config page.
pub fn config(reference: &ImageReference) -> String {
    format!("crane config {}", quoted(&reference.to_string()))
}

/// The Dockerfile rebuilt from history.
pub fn dockerfile(reference: &ImageReference) -> String {
    format!("crane config {} | jq -r '.history[].created_by'", quoted(&reference.to_string()))
}

/// A repository's tags.
pub fn tags(repo: &Repository) -> String {
    format!("crane ls {}", quoted(&repo.to_string()))
}

/// The blob of a layer, by digest in its repository.
fn blob(link: &DownloadLink) -> String {
    format!("crane blob {}", quoted(&format!("{}@{}", Repository::from(&link.image), link.digest)))
}

/// `tar` reading the layer from a pipe with `action` (`tv`, `xO`), decompressing as its
/// media type says (GNU tar does not sniff a pipe).
fn tar(link: &DownloadLink, action: &str) -> String {
    match link.format() {
        LayerFormat::Gzip => format!("tar -{action}zf -"),
        LayerFormat::Zstd => format!("tar --zstd -{action}f -"),
        LayerFormat::Tar | LayerFormat::Other => format!("tar -{action}f -"),
    }
}

/// A layer's file list (and its folders, which `tar -t` lists as paths).
pub fn layer_files(link: &DownloadLink) -> String {
    format!("{} | {}", blob(link), tar(link, "tv"))
}

/// One file of a layer, to standard output.
pub fn layer_file(link: &DownloadLink, path: &LayerPath) -> String {
    let path = String::from_utf8_lossy(path.as_bytes()).into_owned();
    format!("{} | {} {}", blob(link), tar(link, "xO"), quoted(&path))
}

/// A blob that is not a layer.
pub fn blob_only(link: &DownloadLink) -> String {
    blob(link)
}

/// The merged filesystem a container sees.
pub fn merged(reference: &ImageReference) -> String {
    format!("crane export {} - | tar -tvf -", quoted(&reference.to_string()))
}

/// Sizes, wasted bytes and efficiency, and each layer's changes: dive's views.
pub fn dive(reference: &ImageReference) -> String {
    format!("dive {}", quoted(&reference.to_string()))
}

/// Two images' filesystems compared by name (the page compares bytes too).
pub fn diff(a: &ImageReference, b: &ImageReference) -> String {
    let list = |r: &ImageReference| format!("<(crane export {} - | tar -t | sort)", quoted(&r.to_string()));
    format!("diff {} {}", list(a), list(b))
}

/// Secrets in every layer, deleted files included.
pub fn secrets(reference: &ImageReference) -> String {
    format!("trufflehog docker --image {}", quoted(&reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(mt: &str) -> DownloadLink {
        DownloadLink {
            image: "127.0.0.1:5000/team/app:v1".parse().unwrap(),
            digest: "sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap(),
            layer: 2,
            media_type: mt.to_owned(),
        }
    }

    #[test]
    fn arguments_are_quoted_only_when_a_shell_would_split_or_expand_them() {
        assert_eq!(quoted("team/app:v1@sha256:ab"), "team/app:v1@sha256:ab");
        assert_eq!(quoted("etc/my file"), "'etc/my file'");
        assert_eq!(quoted("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(quoted(""), "''");
    }

    #[test]
    fn each_layer_command_decompresses_as_its_media_type_says() {
        let digest = "127.0.0.1:5000/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000001";
        let gz = link("application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(layer_files(&gz), format!("crane blob {digest} | tar -tvzf -"));
        let zst = link("application/vnd.oci.image.layer.v1.tar+zstd");
        let path = LayerPath::from_clean(b"etc/os release");
        assert_eq!(layer_file(&zst, &path), format!("crane blob {digest} | tar --zstd -xOf - 'etc/os release'"));
        let tar = link("application/vnd.oci.image.layer.v1.tar");
        assert_eq!(layer_files(&tar), format!("crane blob {digest} | tar -tvf -"));
    }
}
