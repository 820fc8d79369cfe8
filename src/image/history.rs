//! An image's history paired with its layers: which build step made each layer, and the
//! steps that made none (ENV, CMD, LABEL…) in their places between them.

use crate::manifest::config::HistoryEntry;

/// One row of an image's build, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a, L> {
    /// A layer, numbered from 0, with the history entry that made it when they pair up.
    Layer {
        /// Its position in the manifest.
        index: usize,
        /// The layer.
        layer: &'a L,
        /// The step that made it.
        history: Option<&'a HistoryEntry>,
    },
    /// A step that made no layer.
    Empty(&'a HistoryEntry),
}

/// An image's steps, and why history is missing from them when it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Timeline<'a, L> {
    /// Layers and empty steps, base first.
    pub steps: Vec<Step<'a, L>>,
    /// Set when history could not be paired with the layers, saying why.
    pub mismatch: Option<String>,
}

/// Pairs `history` with `layers`: the `n`th entry that is not an `empty_layer` made the
/// `n`th layer. When the counts differ the pairing is unknowable, so the layers are shown
/// alone and the timeline says so rather than misaligning them.
pub fn pair<'a, L>(layers: &'a [L], history: &'a [HistoryEntry]) -> Timeline<'a, L> {
    let with_layers = history.iter().filter(|h| !h.empty_layer).count();
    let alone = |mismatch: Option<String>| Timeline {
        steps: layers.iter().enumerate().map(|(index, layer)| Step::Layer { index, layer, history: None }).collect(),
        mismatch,
    };
    if history.is_empty() {
        return alone(None);
    }
    if with_layers != layers.len() {
        return alone(Some(format!(
            "The image config's history has {with_layers} steps that made a layer, but the manifest lists {} \
             layers, so the steps are not shown next to the layers.",
            layers.len()
        )));
    }
    let mut next = layers.iter().enumerate();
    let steps = history
        .iter()
        .map(|h| match h.empty_layer {
            true => Step::Empty(h),
            // The counts match, so there is a layer for every such entry.
            false => {
                next.next().map_or(Step::Empty(h), |(index, layer)| Step::Layer { index, layer, history: Some(h) })
            }
        })
        .collect();
    Timeline { steps, mismatch: None }
}

/// A history entry's command as people read a Dockerfile: `/bin/sh -c #(nop) CMD […]` is
/// `CMD […]`, `/bin/sh -c make` is `RUN make`, and buildkit's `|2 A=1 B=2` build-argument
/// prefix and `# buildkit` suffix are dropped.
pub fn command(created_by: &str) -> String {
    let mut s = created_by.trim();
    s = s.strip_suffix("# buildkit").map_or(s, str::trim_end);
    let run = s.strip_prefix("RUN ");
    let had_run = run.is_some();
    s = run.unwrap_or(s).trim_start();
    s = without_build_args(s);
    if let Some(rest) = s.strip_prefix("/bin/sh -c") {
        let rest = rest.trim_start();
        if let Some(nop) = rest.strip_prefix("#(nop)") {
            return nop.trim().to_owned();
        }
        return format!("RUN {rest}");
    }
    if had_run {
        format!("RUN {s}")
    } else {
        s.to_owned()
    }
}

/// `s` without a leading `|N ARG=value …` (N build arguments), when it has one.
fn without_build_args(s: &str) -> &str {
    let Some(rest) = s.strip_prefix('|') else { return s };
    let mut words = rest.splitn(2, char::is_whitespace);
    let Some(Ok(count)) = words.next().map(str::parse::<usize>) else { return s };
    let mut rest = words.next().unwrap_or("").trim_start();
    for _ in 0..count {
        if !rest.split(char::is_whitespace).next().is_some_and(|w| w.contains('=')) {
            return s;
        }
        rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r.trim_start());
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created_by: &str, empty_layer: bool) -> HistoryEntry {
        HistoryEntry { created_by: Some(created_by.into()), empty_layer, ..HistoryEntry::default() }
    }

    #[test]
    fn commands_read_like_a_dockerfile() {
        let cases = [
            ("/bin/sh -c #(nop)  CMD [\"bash\"]", "CMD [\"bash\"]"),
            ("/bin/sh -c #(nop) ADD file:4b03b5f5 in / ", "ADD file:4b03b5f5 in /"),
            ("/bin/sh -c apt-get update && rm -rf /var/lib/apt", "RUN apt-get update && rm -rf /var/lib/apt"),
            ("RUN /bin/sh -c apk add curl # buildkit", "RUN apk add curl"),
            ("RUN |2 VERSION=1.2 TARGETARCH=amd64 /bin/sh -c make install # buildkit", "RUN make install"),
            ("|1 FOO=bar /bin/sh -c echo $FOO", "RUN echo $FOO"),
            ("COPY . /app # buildkit", "COPY . /app"),
            ("ENV PATH=/usr/local/bin:/usr/bin", "ENV PATH=/usr/local/bin:/usr/bin"),
            ("RUN echo hi", "RUN echo hi"),
            // Not build arguments: left alone.
            ("|x /bin/sh -c true", "|x /bin/sh -c true"),
            ("|3 A=1 /bin/sh -c true", "|3 A=1 /bin/sh -c true"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(command(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn empty_steps_sit_between_the_layers_they_follow() {
        let layers = ["l0", "l1"];
        let history = [entry("ADD a", false), entry("ENV A=1", true), entry("RUN b", false), entry("CMD c", true)];
        let t = pair(&layers, &history);
        assert_eq!(t.mismatch, None);
        assert_eq!(
            t.steps,
            [
                Step::Layer { index: 0, layer: &"l0", history: Some(&history[0]) },
                Step::Empty(&history[1]),
                Step::Layer { index: 1, layer: &"l1", history: Some(&history[2]) },
                Step::Empty(&history[3]),
            ]
        );
    }

    #[test]
    fn counts_that_differ_are_said_not_misaligned() {
        let layers = ["l0", "l1"];
        let history = [entry("ADD a", false), entry("ENV A=1", true)];
        let t = pair(&layers, &history);
        assert!(t.mismatch.as_deref().unwrap().contains("1 steps that made a layer, but the manifest lists 2"));
        assert!(t.steps.iter().all(|s| matches!(s, Step::Layer { history: None, .. })));
        assert_eq!(t.steps.len(), 2);
        let none = pair(&layers, &[]);
        assert_eq!((none.mismatch, none.steps.len()), (None, 2));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_command_cleans_without_panicking(s in ".{0,200}") {
            let _ = command(&s);
        }

        #[test]
        fn pairing_never_loses_a_layer(empties in proptest::collection::vec(any::<bool>(), 0..20), layers in 0usize..20) {
            let history: Vec<HistoryEntry> = empties.iter().map(|&e| HistoryEntry { empty_layer: e, ..Default::default() }).collect();
            let layers: Vec<usize> = (0..layers).collect();
            let t = pair(&layers, &history);
            let shown: Vec<usize> = t.steps.iter().filter_map(|s| match s { Step::Layer { index, .. } => Some(*index), _ => None }).collect();
            prop_assert_eq!(shown, layers);
        }
    }
}
