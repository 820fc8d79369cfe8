//! An image's config blob (OCI image spec, "Image Configuration"): what a container
//! runs with, and the history of the build, one entry per Dockerfile step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest config blob layerpipe reads. Configs are a few KiB; images with thousands of
/// history entries and labels stay well under this.
pub const MAX_SIZE: u64 = 4 * 1024 * 1024;

/// The parts of an image config that pages show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageConfig {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: Option<String>,
    /// When the image was made (RFC 3339, as the builder wrote it).
    #[serde(default)]
    pub created: Option<String>,
    /// What a container runs with.
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// One entry per build step, base image first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// What a container of the image runs with (the config's `config` object).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `KEY=value` pairs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// The program run.
    #[serde(default, deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    /// Its arguments (or the program, without an entrypoint).
    #[serde(default, deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    /// The working directory.
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    /// The user it runs as.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    /// Ports, as `80/tcp`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// Labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// One step of the build.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct HistoryEntry {
    /// When the step ran.
    #[serde(default)]
    pub created: Option<String>,
    /// The command, as the builder recorded it.
    #[serde(default)]
    pub created_by: Option<String>,
    /// A builder's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// True for steps that made no layer (ENV, CMD, LABEL…).
    #[serde(default)]
    pub empty_layer: bool,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parses a config blob.
pub fn parse(bytes: &[u8]) -> Result<ImageConfig, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the registry sent an invalid image config: {e}"))
}
