//! The signed payload of a card credential and its compact binary encoding (v1). The layout is
//! specified in the [module documentation](super); issuers implement it in other languages.

use super::error::CredentialError;

/// Longest validity a credential may claim, seconds.
pub const MAX_VALIDITY_SECS: u8 = 60;
/// Longest card reference, bytes.
pub const MAX_CARD_REF_LEN: usize = 128;
/// Shortest nonce, bytes.
pub const MIN_NONCE_LEN: usize = 8;
/// Longest nonce, bytes.
pub const MAX_NONCE_LEN: usize = 32;
/// Length of a generated nonce, bytes.
pub const GENERATED_NONCE_LEN: usize = 16;

/// What an issuer asserts about the card presenting the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialClaims {
    /// The card reference (the catalog's keyed hash of the holder's number).
    pub card_ref: String,
    /// Six-digit issuing region.
    pub region: String,
    /// Issue time, unix seconds.
    pub issued_at: u64,
    /// Validity from `issued_at`, seconds (1–60).
    pub validity_secs: u8,
    /// Random bytes making the credential unique (8–32).
    pub nonce: Vec<u8>,
}

impl CredentialClaims {
    /// Claims with a fresh random 16-byte nonce.
    pub fn new(
        card_ref: impl Into<String>,
        region: impl Into<String>,
        issued_at: u64,
        validity_secs: u8,
    ) -> CredentialClaims {
        CredentialClaims {
            card_ref: card_ref.into(),
            region: region.into(),
            issued_at,
            validity_secs,
            nonce: rand::random::<[u8; GENERATED_NONCE_LEN]>().to_vec(),
        }
    }

    /// Checks every claim against the format's bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.card_ref.is_empty()
            || self.card_ref.len() > MAX_CARD_REF_LEN
            || !self.card_ref.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(format!("a card reference has 1 to {MAX_CARD_REF_LEN} characters of A-Z a-z 0-9 . _ : -"));
        }
        onecard_catalog::ids::validate_region_code(&self.region)?;
        if !(1..=MAX_VALIDITY_SECS).contains(&self.validity_secs) {
            return Err(format!("the validity is 1 to {MAX_VALIDITY_SECS} seconds, not {}", self.validity_secs));
        }
        if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&self.nonce.len()) {
            return Err(format!("the nonce has {MIN_NONCE_LEN} to {MAX_NONCE_LEN} bytes, not {}", self.nonce.len()));
        }
        Ok(())
    }

    /// End of validity, unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.issued_at.saturating_add(u64::from(self.validity_secs))
    }
}

/// The issuer key id and the claims: everything the signature covers besides the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Issuer key id.
    pub key_id: String,
    /// Claims.
    pub claims: CredentialClaims,
}

impl Payload {
    /// The v1 binary encoding. Call [`Payload::validate`] first: out-of-bound lengths would not
    /// fit their length bytes.
    pub fn encode(&self) -> Vec<u8> {
        let c = &self.claims;
        let mut out = Vec::with_capacity(3 + self.key_id.len() + c.card_ref.len() + 6 + 8 + 1 + c.nonce.len());
        push_short(&mut out, self.key_id.as_bytes());
        push_short(&mut out, c.card_ref.as_bytes());
        out.extend_from_slice(c.region.as_bytes());
        out.extend_from_slice(&c.issued_at.to_be_bytes());
        out.push(c.validity_secs);
        push_short(&mut out, &c.nonce);
        out
    }

    /// Checks the key id and the claims.
    pub fn validate(&self) -> Result<(), String> {
        onecard_catalog::ids::validate_slug("key id", &self.key_id)?;
        self.claims.validate()
    }

    /// Decodes the v1 binary encoding strictly: every length in bounds, every field well-formed,
    /// nothing left over.
    pub fn decode(bytes: &[u8]) -> Result<Payload, CredentialError> {
        let mut r = Reader(bytes);
        let key_id = r.short_text("key id")?;
        let card_ref = r.short_text("card reference")?;
        let region = String::from_utf8(r.take(6, "region")?.to_vec()).map_err(|_| malformed("region is not ASCII"))?;
        let issued_at = u64::from_be_bytes(r.take(8, "issue time")?.try_into().map_err(|_| malformed("issue time"))?);
        let validity_secs = r.take(1, "validity")?[0];
        let len = usize::from(r.take(1, "nonce length")?[0]);
        let nonce = r.take(len, "nonce")?.to_vec();
        if !r.0.is_empty() {
            return Err(malformed("trailing bytes after the nonce"));
        }
        let payload =
            Payload { key_id, claims: CredentialClaims { card_ref, region, issued_at, validity_secs, nonce } };
        payload.validate().map_err(CredentialError::Malformed)?;
        Ok(payload)
    }
}

fn push_short(out: &mut Vec<u8>, field: &[u8]) {
    out.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(field);
}

fn malformed(what: &str) -> CredentialError {
    CredentialError::Malformed(what.to_string())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CredentialError> {
        if self.0.len() < n {
            return Err(CredentialError::Malformed(format!("the payload ends inside the {what}")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn short_text(&mut self, what: &str) -> Result<String, CredentialError> {
        let len = usize::from(self.take(1, what)?[0]);
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CredentialError::Malformed(format!("the {what} is not text")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Payload {
        Payload {
            key_id: "hz-2026".into(),
            claims: CredentialClaims {
                card_ref: "ab12".into(),
                region: "330100".into(),
                issued_at: 0x0102_0304_0506_0708,
                validity_secs: 60,
                nonce: vec![0xAA; 8],
            },
        }
    }

    #[test]
    fn the_v1_layout_is_pinned() {
        let bytes = sample().encode();
        let expected = "07687a2d32303236\
                        0461623132\
                        333330313030\
                        0102030405060708\
                        3c\
                        08aaaaaaaaaaaaaaaa";
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(Payload::decode(&bytes).expect("decodes"), sample());
    }

    #[test]
    fn decoding_is_strict() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Payload::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Payload::decode(&longer).is_err(), "trailing byte");
        for (field, bad) in [
            ("validity 0", {
                let mut p = sample();
                p.claims.validity_secs = 0;
                p
            }),
            ("validity 61", {
                let mut p = sample();
                p.claims.validity_secs = 61;
                p
            }),
            ("region", {
                let mut p = sample();
                p.claims.region = "33010a".into();
                p
            }),
            ("nonce", {
                let mut p = sample();
                p.claims.nonce = vec![1; 7];
                p
            }),
            ("card", {
                let mut p = sample();
                p.claims.card_ref = "a b".into();
                p
            }),
            ("key id", {
                let mut p = sample();
                p.key_id = "HZ".into();
                p
            }),
        ] {
            let err = Payload::decode(&bad.encode()).expect_err(field);
            assert_eq!(err.code(), "CREDENTIAL_MALFORMED", "{field}");
        }
    }

    #[test]
    fn new_claims_have_random_nonces_and_an_expiry() {
        let a = CredentialClaims::new("c", "330100", 100, 30);
        let b = CredentialClaims::new("c", "330100", 100, 30);
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.expires_at(), 130);
        a.validate().expect("valid");
    }
}
