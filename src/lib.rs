//! layerpipe: look inside container images and download their layers through a browser.
//!
//! A request flows one way: [`server`] accepts it, [`routes`] picks the handler, the
//! [`registry`] client fetches from the registry (authenticating with [`auth`], reaching
//! only what [`egress`] allows, through [`upstream`]), and the answer is a [`page`] or a
//! [`download`]. [`metrics`] counts what happens.

pub mod allocator;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod digest;
pub mod download;
pub mod egress;
pub mod error;
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
pub mod server;
pub mod tls;
pub mod upstream;
