//! No file in `src/` grows past 700 lines before its tests: a newcomer reads a file
//! whole, and a file that big has usually taken a second job (issue 21). A file over
//! 500 lines says why in its opening paragraph.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;
const EXPLAIN_OVER: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines before the file's `#[cfg(test)]` module (all, without one).
fn lines_before_tests(text: &str) -> usize {
    text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).count()
}

#[test]
fn no_source_file_is_over_700_lines_before_its_tests() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 50, "src/ was not found: {files:?}");
    let mut over = Vec::new();
    let mut unexplained = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = lines_before_tests(&text);
        let header: String = text.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join(" ");
        if lines > MAX_LINES {
            over.push(format!("{} ({lines})", file.display()));
        } else if lines > EXPLAIN_OVER && !header.contains("lines") {
            unexplained.push(format!("{} ({lines})", file.display()));
        }
    }
    assert!(over.is_empty(), "over {MAX_LINES} lines before their tests: {over:?}");
    assert!(unexplained.is_empty(), "over {EXPLAIN_OVER} lines with no word on why in their header: {unexplained:?}");
}

#[test]
fn lines_are_counted_up_to_the_tests() {
    assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
    assert_eq!(lines_before_tests("a\nb\n"), 2);
}
