//! A Dockerfile rebuilt from an image's history: one instruction per history entry, in
//! order, the steps that made no layer (ENV, CMD, LABEL…) included, each beside the
//! layer it made when that is knowable.
//!
//! - The command is read as [`history::command`] reads it: `/bin/sh -c #(nop) X` is `X`,
//!   `/bin/sh -c make` is `RUN make`, buildkit's `|N ARG=v…` prefix is dropped.
//! - buildkit's trailing comments (`# buildkit`, `# buildkit.dockerfile.v0`) are
//!   dropped; other comments are the user's and stay.
//! - An entry with no command keeps its place, as its comment (or a note) after `#`.
//! - Layers pair with entries only when the counts agree ([`history::pair`]'s rule);
//!   otherwise every line stands alone rather than beside the wrong layer.
//!
//! Known gap: it is the build as recorded, not the Dockerfile as written: `ADD file:…`
//! names the content's hash, multi-stage builds show the last stage only, and build
//! arguments appear as their values.

use super::config::HistoryEntry;
use super::history;

/// One instruction of the rebuilt Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The instruction as a Dockerfile writes it (`RUN make`, `ENV A=1`).
    pub instruction: String,
    /// The layer it made, numbered from 0 as in the manifest; `None` for a step that
    /// made none, or when history and layers do not pair up.
    pub layer: Option<usize>,
}

/// The Dockerfile of an image with `layers` layers whose config has `history`.
pub fn rebuild(history: &[HistoryEntry], layers: usize) -> Vec<Line> {
    let pairs = history.iter().filter(|h| !h.empty_layer).count() == layers;
    let mut next = 0;
    history
        .iter()
        .map(|h| {
            let layer = (pairs && !h.empty_layer).then(|| {
                next += 1;
                next - 1
            });
            Line { instruction: instruction(h), layer }
        })
        .collect()
}

/// The whole Dockerfile as text, one instruction a line (a multi-line `RUN` keeps its
/// own line breaks).
pub fn text(lines: &[Line]) -> String {
    lines.iter().map(|l| format!("{}\n", l.instruction)).collect()
}

/// One entry's instruction.
fn instruction(entry: &HistoryEntry) -> String {
    let Some(created_by) = entry.created_by.as_deref().filter(|c| !c.trim().is_empty()) else {
        let note = entry.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
        return format!("# {}", note.unwrap_or("(no command recorded)"));
    };
    let command = history::command(created_by);
    let command = command.strip_prefix("#(nop)").map_or(command.as_str(), str::trim);
    without_buildkit_comment(command).to_owned()
}

/// `command` without a trailing `# buildkit…` comment (one word after the `#`).
fn without_buildkit_comment(command: &str) -> &str {
    match command.rsplit_once("# ") {
        Some((before, tail)) if tail.starts_with("buildkit") && !tail.contains(char::is_whitespace) => {
            before.trim_end()
        }
        _ => command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created_by: Option<&str>, empty_layer: bool) -> HistoryEntry {
        HistoryEntry { created_by: created_by.map(str::to_owned), empty_layer, ..HistoryEntry::default() }
    }

    fn instructions(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.instruction.as_str()).collect()
    }

    #[test]
    fn every_entry_is_a_line_in_dockerfile_form() {
        let history = [
            entry(Some("/bin/sh -c #(nop) ADD file:4b03b5f5 in / "), false),
            entry(Some("/bin/sh -c #(nop)  ENV PATH=/usr/local/bin:/usr/bin"), true),
            entry(Some("RUN |1 MODE=prod /bin/sh -c apk add curl # buildkit"), false),
            entry(Some("COPY main.py /app/ # buildkit.dockerfile.v0"), false),
            entry(Some("/bin/sh -c echo hi # a comment of the user's"), false),
            entry(Some("WORKDIR /app"), true),
            entry(Some("#(nop) LABEL a=b"), true),
            entry(None, true),
            HistoryEntry { comment: Some("imported from a tarball".into()), ..HistoryEntry::default() },
            entry(Some("/bin/sh -c #(nop)  CMD [\"/app/main.py\"]"), true),
        ];
        let lines = rebuild(&history, 5);
        assert_eq!(
            instructions(&lines),
            [
                "ADD file:4b03b5f5 in /",
                "ENV PATH=/usr/local/bin:/usr/bin",
                "RUN apk add curl",
                "COPY main.py /app/",
                "RUN echo hi # a comment of the user's",
                "WORKDIR /app",
                "LABEL a=b",
                "# (no command recorded)",
                "# imported from a tarball",
                "CMD [\"/app/main.py\"]",
            ]
        );
        let layers: Vec<Option<usize>> = lines.iter().map(|l| l.layer).collect();
        assert_eq!(layers, [Some(0), None, Some(1), Some(2), Some(3), None, None, None, Some(4), None]);
        assert!(text(&lines).starts_with("ADD file:4b03b5f5 in /\nENV PATH="));
        assert_eq!(text(&lines).lines().count(), history.len());
    }

    #[test]
    fn layers_pair_only_when_the_counts_agree() {
        let history = [entry(Some("/bin/sh -c make"), false), entry(Some("CMD [\"x\"]"), true)];
        assert_eq!(rebuild(&history, 1).iter().map(|l| l.layer).collect::<Vec<_>>(), [Some(0), None]);
        assert!(rebuild(&history, 3).iter().all(|l| l.layer.is_none()));
        assert_eq!(rebuild(&[], 2), []);
    }
}
