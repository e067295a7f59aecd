//! Card credentials (step 5 of the request path): the dynamic QR code of the electronic card
//! as a compact token signed by a trusted issuer key, checked offline against the catalog's
//! issuer keys and spent once.
//!
//! # Token format, version 1
//!
//! ```text
//! v1.<base64url(payload)>.<base64url(signature)>
//! ```
//!
//! base64url is RFC 4648 §5 **without** padding (canonical: non-zero trailing bits are
//! refused). The whole token is at most 512 bytes (`CREDENTIAL_TOO_LARGE` otherwise).
//!
//! ## Payload (binary, integers big-endian)
//!
//! | bytes | field |
//! |---|---|
//! | 1 + n | issuer key id: length n (1–64), then the catalog key id (`a-z 0-9 - _ .`) |
//! | 1 + n | card reference: length n (1–128), then ASCII `A-Z a-z 0-9 . _ : -` (the catalog's `card_ref`) |
//! | 6 | issuing region: six ASCII digits |
//! | 8 | issue time: unsigned Unix seconds |
//! | 1 | validity: seconds after the issue time, 1–60 |
//! | 1 + n | nonce: length n (8–32), then random bytes (16 recommended) |
//!
//! Nothing may follow the nonce. Example (key `hz-2026`, card `ab12`, region `330100`, issued
//! at `0x0102030405060708`, 60 s, nonce eight `0xAA`): hex
//! `07687a2d32303236 0461623132 333330313030 0102030405060708 3c 08aaaaaaaaaaaaaaaa`.
//!
//! ## Signature
//!
//! Over the ASCII bytes `v1.<base64url(payload)>` (everything before the second `.`), with the
//! issuer key named in the payload: Ed25519 (64 bytes) or SM2 (SM2DSA with SM3, signer id
//! `1234567812345678`, DER `SEQUENCE { r, s }`).
//!
//! ## Checks, in order
//!
//! size (`CREDENTIAL_TOO_LARGE`) → form (`CREDENTIAL_MALFORMED`) → issuer key with that id,
//! `active` and valid now (`CREDENTIAL_ISSUER_UNTRUSTED`) → signature
//! (`CREDENTIAL_SIGNATURE_INVALID`) → `now ≥ issued_at − skew` (`CREDENTIAL_NOT_YET_VALID`) →
//! `now < issued_at + validity + skew` (`CREDENTIAL_EXPIRED`) → single use: the pair (key id,
//! nonce) is spent in the `credential` scope of the replay cache for the remaining validity
//! plus the skew (`CREDENTIAL_REPLAYED`).

pub mod cli;
mod error;
mod issuer;
mod payload;
mod token;

#[cfg(test)]
mod tests;

pub use error::{CredentialError, MintError};
pub use issuer::{IssuerKeyError, IssuerSigningKey};
pub use payload::{CredentialClaims, MAX_VALIDITY_SECS, Payload};
pub use token::{CREDENTIAL_NONCE_SCOPE, MAX_TOKEN_LEN, VerifiedCredential, mint, redeem, spend, verify};
