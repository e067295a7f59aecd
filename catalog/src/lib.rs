//! The province catalog (应用目录) of onecard: the source of truth for which resident-service
//! applications exist, who runs them, whether they are filed and online, which channels and
//! venues may call them, at what rate, and the card registry and consents they act upon.
//!
//! Storage is SQLite (embedded, default) or PostgreSQL through sqlx; the admin, issuer, holder
//! and sync HTTP API is in [`api`]; gateways consume a signed [`snapshot::Snapshot`] and the
//! change [`feed`]; [`apply`] reads and writes the declarative TOML; [`cli`] holds the
//! `onecard catalog` subcommands.
#![forbid(unsafe_code)]

pub mod api;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod declarative;
pub mod diff;
pub mod error;
pub mod feed;
pub mod ids;
pub mod model;
pub mod roles;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod validate;
pub mod workflow;

pub use catalog::Catalog;
pub use error::{Blame, Error, Result};
pub use snapshot::{SignedSnapshot, Snapshot, SnapshotError};
pub use store::Store;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod repo_tests;
