//! layerpipe: look inside container images and download their layers through a browser.
//!
//! A request flows one way: [`server`] accepts it, [`routes`] picks the handler, the
//! [`registry`] client fetches from the registry (authenticating with [`auth`], reaching
//! only what [`egress`] allows), and the answer is a [`page`] or a [`download`].

pub mod auth;
pub mod body;
pub mod config;
pub mod digest;
pub mod download;
pub mod egress;
pub mod error;
pub mod manifest;
pub mod page;
pub mod query;
pub mod reference;
pub mod registry;
pub mod routes;
pub mod server;
