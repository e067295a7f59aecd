//! # onecard-sdk: write a onecard plugin in ordinary Rust
//!
//! A city department writes one plugin per scenario (park entry, transit fares, hospital
//! settlement, ...). The plugin is a WebAssembly component built for `wasm32-wasip2`; the onecard
//! gateway authenticates the caller, checks the catalog, verifies the card, validates the
//! parameters against the action's JSON Schema and only then calls the plugin, on a fresh
//! sandboxed instance per request.
//!
//! A plugin implements [`Plugin`] and exports it with [`export_plugin!`]. Everything outside the
//! plugin's own memory goes through the host capability modules: [`card`], [`http`], [`kv`],
//! [`payments`], [`log`] and [`clock`]. There is no filesystem, network, environment or ambient
//! clock: a plugin is deterministic given its request and the answers of its host calls.
//!
//! ```
//! use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};
//! use serde::Deserialize;
//!
//! pub struct Library;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Borrow {
//!     book: String,
//! }
//!
//! impl Plugin for Library {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("library", "1.0.0")
//!             .action(
//!                 ActionSpec::new("borrow", r#"{"type":"object","required":["book"],
//!                     "properties":{"book":{"type":"string"}},"additionalProperties":false}"#)
//!                     .description("Borrow a book with the reader's card")
//!                     .assurance(Assurance::RealCard)
//!                     .needs_card(),
//!             )
//!             .capability("kv")
//!     }
//!
//!     fn handle(request: Request) -> Result<Response, HandleError> {
//!         match request.action.as_str() {
//!             "borrow" => {
//!                 let params: Borrow = request.params()?;
//!                 let holder = &request.card()?.holder_ref;
//!                 let key = format!("loan:{}", params.book);
//!                 if !onecard_sdk::kv::compare_and_swap(&key, None, holder.as_bytes(), None)? {
//!                     return Err(HandleError::refused("BOOK_ON_LOAN", "the book is already lent"));
//!                 }
//!                 Response::json(&serde_json::json!({ "lent": params.book }))
//!             }
//!             other => Err(HandleError::unknown_action(other)),
//!         }
//!     }
//! }
//!
//! onecard_sdk::export_plugin!(Library);
//!
//! // The same code runs natively against in-memory backends, for unit tests:
//! # fn main() {
//! use onecard_sdk::testing::Harness;
//! let mut harness = Harness::new();
//! let request = harness.request("borrow", r#"{"book":"红楼梦"}"#).with_card("holder-1");
//! assert!(harness.call::<Library>(&request).is_ok());
//! let again = harness.request("borrow", r#"{"book":"红楼梦"}"#).with_card("holder-2");
//! assert_eq!(harness.call::<Library>(&again).unwrap_err().code(), "BOOK_ON_LOAN");
//! # }
//! ```
//!
//! Build the component with `onecard plugin build` (`cargo build --release --target wasm32-wasip2`
//! linking a core module, then `onecard-componentize`, which leaves WASI out: docs/PLUGINS.md);
//! the `.wasm` it writes in `target/wasm32-wasip2/release/` is what the department files with the
//! catalog, by SHA-256.
//!
//! The contract itself is the WIT package `onecard:plugin@1.0.0` in this crate's `wit/` folder.
#![deny(unsafe_code)]

#[doc(hidden)]
pub mod bindings;
mod errors;
mod host;
mod plugin;
pub mod testing;
mod types;

pub use errors::{CardError, HttpError, KvError, PaymentError};
pub use host::{card, clock, http, kv, log, payments};
pub use plugin::Plugin;
pub use types::{
    ActionSpec, Assurance, CardStatus, CardView, HandleError, PluginInfo, Refusal, Request,
    Response,
};

/// The WIT package version this SDK builds plugins against.
pub const WIT_VERSION: &str = "1.0.0";

/// Glue used by [`export_plugin!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::Guest;
    pub use crate::bindings::export_world;
    pub use crate::plugin::handle_guarded;
}

/// Export a [`Plugin`] implementation as the component's `describe` and `handle`.
///
/// Use it once per plugin crate, at the crate root. On non-wasm targets it expands to nothing,
/// so the same crate compiles natively for unit tests with [`testing::Harness`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct OnecardPluginExport;
            impl $crate::__private::Guest for OnecardPluginExport {
                fn describe() -> $crate::PluginInfo {
                    <$plugin as $crate::Plugin>::describe()
                }
                fn handle(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Response, $crate::HandleError> {
                    $crate::__private::handle_guarded::<$plugin>(request)
                }
            }
            $crate::__private::export_world!(OnecardPluginExport);
        };
    };
}
