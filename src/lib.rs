//! layerpipe: look inside container images and download their layers through a browser.
//!
//! # Where things live
//!
//! Every module, one line each, in the order a request's data flows: from the edge,
//! through the services that fetch, down to the pure building blocks. Imports should
//! point down this list, and `tests/imports.rs` fails on any that points back up.
//!
//! **The edge**: a request comes in and an answer goes out.
//! - [`runtime`]: which threads serve, one runtime and listener per core or tokio's pool.
//! - [`server`]: accepting connections, the access log.
//! - [`client_idle`]: ending a connection whose client takes nothing.
//! - [`routes`]: the route table and its handlers by area; errors become pages;
//!   [`routes::body`], the body of every response, small or streamed.
//! - [`pages`]: the HTML pages, askama templates that escape every value.
//! - [`api`]: the same pages' data as JSON, with field names kept stable.
//!
//! **The services**: they fetch, cache and decide.
//! - [`explore`]: reads layers and images on a page's behalf: listings and indexes,
//!   previews and saves within their slots, configs and merged views, file hashes.
//! - [`catalog`]: every layer and image seen, for search across images.
//! - [`registry`]: the only code that speaks the distribution API.
//! - [`auth`]: challenges, which realm gets credentials, the token cache.
//! - [`credentials`]: docker's `config.json` and credential helpers.
//! - [`upstream`]: connections to registries, retries, multipart fetch.
//! - [`egress`]: which addresses layerpipe may connect to.
//! - [`tls`]: which certificates are trusted.
//!
//! **The building blocks**: bytes and data in, data out.
//! - [`layer`]: inside a layer: decompression, tar, listings, previews, saves.
//! - [`index`]: layer indexes: one file later costs one `Range` read.
//! - [`image`]: the whole image: history, the merged filesystem, search, sizes, diffs.
//! - [`secrets`]: which names and text look like credentials; values only ever masked.
//! - [`manifest`]: manifests, indexes, descriptors and the config blob.
//! - [`download`]: the layer download's file name, headers and verified body.
//! - [`admission`]: slots for work done only so many at once; beyond them, 503.
//! - [`hashing`]: verifying a blob on a thread beside its stream.
//! - [`reference`](mod@reference), [`digest`], [`range`], [`query`]: the small parsed types.
//! - [`metrics`]: the counters behind `/metrics`.
//! - [`allocator`]: malloc's thresholds, so freed read buffers are reused.
//! - [`config`], [`error`]: the configuration, and the one error type.

pub mod admission;
pub mod allocator;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod client_idle;
pub mod config;
pub mod credentials;
pub mod digest;
pub mod download;
pub mod egress;
pub mod error;
pub mod explore;
pub mod hashing;
pub mod image;
pub mod index;
pub mod layer;
pub mod manifest;
pub mod metrics;
pub mod pages;
pub mod query;
pub mod range;
pub mod reference;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod tls;
pub mod upstream;
