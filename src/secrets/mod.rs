//! Secrets in an image: which file names and which text look like credentials, and how
//! a found value may be shown.
//!
//! A pure building block: [`rules`] is the rule set as data, [`scan`] applies it to a
//! file's bytes or to the image config, [`mask`] is the only form a value leaves in,
//! [`plan`] chooses which files an image scan reads within its byte budget.
//! Reading the layers (through their indexes, within a byte budget) and storing the
//! findings per layer digest belong to the services above; see `docs/secrets.md`.

pub mod layer;
pub mod mask;
pub mod plan;
pub mod rules;
pub mod scan;

pub use layer::{LayerSecrets, SecretRow};
pub use mask::Masked;
pub use rules::name_rule;
pub use scan::{scan_bytes, scan_config, scan_text, ConfigFinding, ConfigPlace, Finding};
