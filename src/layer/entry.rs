//! What an entry of a layer is, as a person reads it: its name made a clean path inside
//! the layer, its kind with OCI whiteouts recognised, and its mode as `ls -l` shows it.

use super::tar::TypeFlag;

/// The prefix of a whiteout file's name: `.wh.NAME` deletes `NAME` of lower layers.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name of an opaque-directory marker: its directory hides lower layers' contents.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// The kind of an entry, with whiteouts told apart from the files that carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// `.wh.NAME`: deletes `NAME` from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: its directory hides the layers below.
    Opaque,
    /// An old GNU sparse file (its holes are not in the archive).
    Sparse,
    /// Another tar type flag.
    Other(u8),
}

impl Kind {
    /// The kind of an entry with this type flag at this (clean) path.
    pub fn of(flag: TypeFlag, path: &[u8]) -> Kind {
        let name = name(path);
        if flag != TypeFlag::Dir {
            if name == OPAQUE_MARKER {
                return Kind::Opaque;
            }
            if name.starts_with(WHITEOUT_PREFIX) {
                return Kind::Whiteout;
            }
        }
        match flag {
            TypeFlag::File => Kind::File,
            TypeFlag::Dir => Kind::Dir,
            TypeFlag::Symlink => Kind::Symlink,
            TypeFlag::HardLink => Kind::HardLink,
            TypeFlag::CharDevice => Kind::CharDevice,
            TypeFlag::BlockDevice => Kind::BlockDevice,
            TypeFlag::Fifo => Kind::Fifo,
            TypeFlag::Sparse => Kind::Sparse,
            TypeFlag::Other(b) => Kind::Other(b),
        }
    }

    /// Whether the entry's bytes are in the archive and can be shown or saved.
    pub fn has_content(self) -> bool {
        matches!(self, Kind::File)
    }

    /// The type letter `ls -l` shows before the permissions.
    fn letter(self) -> char {
        match self {
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::CharDevice => 'c',
            Kind::BlockDevice => 'b',
            Kind::Fifo => 'p',
            Kind::File | Kind::HardLink | Kind::Whiteout | Kind::Opaque | Kind::Sparse | Kind::Other(_) => '-',
        }
    }
}

/// How an entry's raw name had to be changed to place it inside the layer. Docker
/// refuses to unpack a layer with a name that climbs out; containerd cleans it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameIssue {
    /// The name was already a relative path inside the layer (`./` aside).
    None,
    /// The name was absolute (`/etc/passwd`); shown without the leading `/`.
    Absolute,
    /// The name had `..` climbing above the layer's root; shown where it lands.
    ClimbsOut,
}

/// A raw tar name as a clean relative path (`./a//b/../c/` is `a/c`; the root is
/// empty), and what had to be changed to get there.
pub fn clean(raw: &[u8]) -> (Vec<u8>, NameIssue) {
    let mut issue = if raw.starts_with(b"/") { NameIssue::Absolute } else { NameIssue::None };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    issue = NameIssue::ClimbsOut;
                }
            }
            part => parts.push(part),
        }
    }
    (parts.join(&b'/'), issue)
}

/// The last component of a clean path (the whole path when it has no `/`).
pub fn name(path: &[u8]) -> &[u8] {
    path.iter().rposition(|&b| b == b'/').map_or(path, |i| &path[i + 1..])
}

/// The directory of a clean path (empty for the root and top-level entries).
pub fn parent(path: &[u8]) -> &[u8] {
    path.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &path[..i])
}

/// What a whiteout or opaque marker at `path` acts on: `a/.wh.b` deletes `a/b`, and
/// `a/.wh..wh..opq` makes `a` opaque.
pub fn whiteout_target(kind: Kind, path: &[u8]) -> Option<Vec<u8>> {
    let dir = parent(path);
    let target = match kind {
        Kind::Opaque => return Some(dir.to_vec()),
        Kind::Whiteout => &name(path)[WHITEOUT_PREFIX.len()..],
        _ => return None,
    };
    Some(join(dir, target))
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// The path a symbolic link at `path` points to, when it stays inside the layer:
/// relative targets are taken from the link's directory, absolute ones from the root.
pub fn symlink_target(path: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let joined = if target.starts_with(b"/") { target.to_vec() } else { join(parent(path), target) };
    match clean(&joined) {
        (clean, NameIssue::None | NameIssue::Absolute) => Some(clean),
        (_, NameIssue::ClimbsOut) => None,
    }
}

/// The mode as `ls -l` shows it: `drwxr-xr-x`, with setuid, setgid and sticky bits.
pub fn mode_string(kind: Kind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind.letter());
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    for (shift, set_mask, lower, upper) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')] {
        s.push(bit(0o4 << shift, 'r'));
        s.push(bit(0o2 << shift, 'w'));
        s.push(special(mode & (0o1 << shift) != 0, mode & set_mask != 0, lower, upper));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_flagged() {
        let c = |s: &str| {
            let (path, issue) = clean(s.as_bytes());
            (String::from_utf8(path).unwrap(), issue)
        };
        assert_eq!(c("./usr/bin/env"), ("usr/bin/env".into(), NameIssue::None));
        assert_eq!(c("usr//lib/./x/"), ("usr/lib/x".into(), NameIssue::None));
        assert_eq!(c("./"), ("".into(), NameIssue::None));
        assert_eq!(c("a/../b"), ("b".into(), NameIssue::None));
        assert_eq!(c("/etc/passwd"), ("etc/passwd".into(), NameIssue::Absolute));
        assert_eq!(c("../../etc/shadow"), ("etc/shadow".into(), NameIssue::ClimbsOut));
        assert_eq!(c("a/../../b"), ("b".into(), NameIssue::ClimbsOut));
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        assert_eq!(Kind::of(TypeFlag::File, b"etc/.wh.motd"), Kind::Whiteout);
        assert_eq!(Kind::of(TypeFlag::File, b"var/cache/.wh..wh..opq"), Kind::Opaque);
        assert_eq!(Kind::of(TypeFlag::File, b"etc/motd.wh."), Kind::File);
        assert_eq!(Kind::of(TypeFlag::Dir, b".wh.d"), Kind::Dir);
        assert_eq!(whiteout_target(Kind::Whiteout, b"etc/.wh.motd").unwrap(), b"etc/motd");
        assert_eq!(whiteout_target(Kind::Whiteout, b".wh.top").unwrap(), b"top");
        assert_eq!(whiteout_target(Kind::Opaque, b"var/cache/.wh..wh..opq").unwrap(), b"var/cache");
        assert_eq!(whiteout_target(Kind::File, b"x"), None);
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(Kind::File, 0o755), "-rwxr-xr-x");
        assert_eq!(mode_string(Kind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(Kind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(Kind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(Kind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(Kind::CharDevice, 0o666), "crw-rw-rw-");
        assert_eq!(mode_string(Kind::Dir, 0o1776), "drwxrwxrwT");
    }

    #[test]
    fn symlink_targets_resolve_inside_the_layer() {
        assert_eq!(symlink_target(b"usr/bin/sh", b"dash").unwrap(), b"usr/bin/dash");
        assert_eq!(symlink_target(b"bin", b"usr/bin").unwrap(), b"usr/bin");
        assert_eq!(symlink_target(b"etc/localtime", b"/usr/share/zoneinfo/UTC").unwrap(), b"usr/share/zoneinfo/UTC");
        assert_eq!(symlink_target(b"lib/x", b"../../../etc"), None);
        assert_eq!(name(b"a/b/c"), b"c");
        assert_eq!(parent(b"a/b/c"), b"a/b");
        assert_eq!(parent(b"c"), b"");
    }
}
