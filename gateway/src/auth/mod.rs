//! Channel authentication (step 1 of the request path): proves that a request comes from a
//! channel the province authorized, was signed by one of its current keys, is fresh, and is
//! not a replay.
//!
//! # The protocol (what a venue or channel app implements)
//!
//! Every request carries five headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Onecard-Channel` | the channel number, 10 digits (e.g. `3300000001`) |
//! | `X-Onecard-Key-Id` | the id of the channel key that signs (catalog key id: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit) |
//! | `X-Onecard-Timestamp` | Unix time of signing, seconds, decimal digits only |
//! | `X-Onecard-Nonce` | 16–64 characters of `A-Z a-z 0-9 - _`, never reused by the channel (random 128 bits recommended) |
//! | `X-Onecard-Signature` | the signature of the canonical request, standard base64 (RFC 4648 §4) with padding |
//!
//! ## Canonical request
//!
//! Seven lines joined by a single line feed (`0x0A`), **no** trailing line feed, UTF-8 (in
//! practice ASCII):
//!
//! ```text
//! METHOD
//! PATH_AND_QUERY
//! CHANNEL
//! KEY_ID
//! TIMESTAMP
//! NONCE
//! BODY_HASH
//! ```
//!
//! 1. `METHOD`: the HTTP method, upper case (`POST`).
//! 2. `PATH_AND_QUERY`: the request target's path exactly as sent on the wire (no decoding, no
//!    dot-segment or slash normalisation). If the query (the part after the first `?`) has at
//!    least one non-empty parameter, append `?` and the parameters: split the query on `&`,
//!    drop empty pieces, keep each piece exactly as sent (still percent-encoded, `name=value`
//!    or a bare `name`), sort the pieces by their bytes in ascending order (a plain string
//!    sort of ASCII; duplicates kept), and join them with `&`. With no parameter, no `?`.
//!    Example: `/v1/apps/parks/actions/enter?venue=v1&b=2&a=1` → `/v1/apps/parks/actions/enter?a=1&b=2&venue=v1`.
//! 3. `CHANNEL`, `KEY_ID`, `TIMESTAMP`, `NONCE`: the header values exactly as sent.
//! 4. `BODY_HASH`: lower-case hex of the hash of the body bytes exactly as sent (the empty
//!    string when there is no body): **SM3** for SM2 and HMAC-SM3 keys, **SHA-256** for
//!    Ed25519 and HMAC-SHA256 keys.
//!
//! ## Signature
//!
//! Over the canonical request's bytes, with the key named by `X-Onecard-Key-Id`:
//!
//! - **Ed25519** (RFC 8032, pure): the 64-byte signature.
//! - **SM2** (GB/T 32918.2, SM2DSA with SM3): signer id `1234567812345678`
//!   ([`SM2_SIGNER_ID`]), i.e. SM3 over `Z_A ‖ message`; the signature DER-encoded as
//!   `SEQUENCE { r INTEGER, s INTEGER }` (strict DER).
//! - **HMAC-SHA256** / **HMAC-SM3** (RFC 2104): the 32-byte tag, keyed by the decoded shared
//!   secret.
//!
//! ## Test vector
//!
//! Secret `0123456789abcdef0123456789abcdef` (the ASCII bytes), channel `3300000001`, key id
//! `gate-2026`, timestamp `1767225600`, nonce `abcdefghijklmnop`, `POST
//! /v1/apps/parks/actions/enter?b=2&a=1` with body `{"credential":"v1.x.y"}`. With SHA-256 the
//! canonical request is
//!
//! ```text
//! POST
//! /v1/apps/parks/actions/enter?a=1&b=2
//! 3300000001
//! gate-2026
//! 1767225600
//! abcdefghijklmnop
//! de568007c4e39010b1728328c0779c70d09b01fda21a7ef4c77b48b14bb5f5a4
//! ```
//!
//! and the HMAC-SHA256 signature `dOP45vkBw7Cr5hvZ4OYYWR4+wZNhhIajoOIoqQxZwJU=`; with HMAC-SM3
//! (SM3 body hash) it is `cOm4eb4RQbuJzNPZEbxCWDHNU/JhKhumYfpkbGuIDBA=`.
//!
//! ## Checks, in order
//!
//! Headers present and well-formed (`CHANNEL_HEADERS_MISSING`, naming the header) → channel
//! known (`CHANNEL_UNKNOWN`) → key known (`CHANNEL_KEY_UNKNOWN`) and valid now, `not_before ≤
//! now < not_after` (`CHANNEL_KEY_EXPIRED`) → `|now − timestamp| ≤ 300 s` by default
//! (`REQUEST_TIMESTAMP_SKEW`) → signature (`CHANNEL_SIGNATURE_INVALID`) → nonce not seen from
//! this channel in the last 2 × skew (`REQUEST_REPLAYED`; `NONCE_STORE_FULL` /
//! `NONCE_STORE_UNAVAILABLE` when the replay cache cannot take it, retry with a new nonce).
//! A refused request never consumes its nonce.

mod authenticate;
mod canonical;
mod config;
mod error;
pub mod headers;
mod key_file;
pub mod keys;
pub mod nonce;
mod signer;

#[cfg(test)]
mod tests;

pub use authenticate::{AuthenticatedChannel, ChannelKeys, authenticate, channel_nonce_scope};
pub use canonical::{CanonicalRequest, canonical_path};
pub use config::{AuthConfig, DEFAULT_MAX_SKEW_SECS};
pub use error::AuthError;
pub use headers::RequestParts;
pub use key_file::{KeyFileError, SigningKeyFile};
pub use keys::{KeyError, SM2_SIGNER_ID, SigningKey, VerifyingKey};
pub use nonce::{MemoryNonceStore, NonceError, NonceStore, RedisNonceConfig, RedisNonceStore};
pub use signer::{RequestSigner, SignatureHeaders, SignerError, random_nonce};
