//! One layer's secrets scan as it is kept: what the catalog stores per layer digest and
//! what an image scan reuses for a layer it has seen, so the next image sharing the
//! layer reads nothing for it. Values only as [`Masked`].

use super::mask::Masked;

/// The secrets found in one layer (`docs/secrets.md`), as stored: masked values only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSecrets {
    /// Whether every file was read (false: the byte budget or a size cap left some out).
    pub complete: bool,
    /// The findings, in the order the scan made them.
    pub findings: Vec<SecretRow>,
}

/// One stored finding in a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRow {
    /// The file's path in the layer.
    pub path: String,
    /// The line, from 1; 0 when the file's name is the finding.
    pub line: u32,
    /// The rule's id (`src/secrets/rules.rs`).
    pub rule: String,
    /// The value, masked.
    pub value: Masked,
}
