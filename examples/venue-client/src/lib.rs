//! # onecard-venue-client — what a venue copies
//!
//! A venue (a park turnstile, a metro gate, a hospital counter) or a channel app calls the
//! onecard gateway over HTTP: `POST /v1/apps/{app}/actions/{action}` with the scanned card
//! token, the action's parameters and an idempotency key, signed with the channel's key. This
//! crate is that caller, small enough to read in one sitting:
//!
//! - [`VenueClient`] signs the request ([`onecard_gateway::auth::RequestSigner`]: the five
//!   `X-Onecard-*` headers over the canonical request, see `onecard_gateway::auth` for the
//!   protocol in full, with test vectors for other languages), sends it and reads the answer;
//! - [`Decision`] is the answer: allowed with the plugin's result, or refused with a stable
//!   code, a message and the request id to quote to the operator;
//! - [`DemoIssuer`] mints a card token the way the card platform does — only for demos and tests:
//!   a real venue scans the token from the holder's phone or card and never holds an issuer key.
//!
//! The binary `onecard-venue-client` wraps these in a command line (`--help`).
#![forbid(unsafe_code)]

mod client;
mod decision;
mod demo_token;
mod error;

pub use client::{Invoke, VenueClient};
pub use decision::Decision;
pub use demo_token::DemoIssuer;
pub use error::ClientError;
