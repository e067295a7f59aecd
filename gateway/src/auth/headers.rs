//! The five authentication headers, what a well-formed value of each looks like, and the view
//! of a request ([`RequestParts`]) that authentication reads.

use base64::Engine as _;
use http::HeaderMap;

use super::AuthError;

/// The calling channel's 10-digit number (渠道编号).
pub const CHANNEL: &str = "X-Onecard-Channel";
/// The id of the channel key that signed the request.
pub const KEY_ID: &str = "X-Onecard-Key-Id";
/// Unix time of signing, in seconds, decimal.
pub const TIMESTAMP: &str = "X-Onecard-Timestamp";
/// A value the channel never reuses within the replay window: 16–64 of `[A-Za-z0-9_-]`.
pub const NONCE: &str = "X-Onecard-Nonce";
/// The signature of the canonical request, standard base64 with padding.
pub const SIGNATURE: &str = "X-Onecard-Signature";

/// The `http` name of one of the headers above (lower-cased). Use it to insert them:
/// `HeaderMap::insert` with a `&'static str` panics on upper-case names; lookups by `&str`
/// ignore case.
///
/// # Panics
/// When `name` is not an HTTP token; the constants of this module all are.
pub fn header_name(name: &str) -> http::HeaderName {
    http::HeaderName::from_bytes(name.as_bytes()).expect("an HTTP header name")
}

/// All five, in the order they are checked.
pub const ALL: [&str; 5] = [CHANNEL, KEY_ID, TIMESTAMP, NONCE, SIGNATURE];

/// Shortest nonce accepted.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest timestamp accepted (digits).
const MAX_TIMESTAMP_DIGITS: usize = 12;
/// Longest signature header accepted (characters); an SM2 DER signature needs 96.
const MAX_SIGNATURE_CHARS: usize = 256;

/// What authentication reads of a request. Built from `http` parts without copying:
/// `RequestParts::from_http(&parts, &body)`.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method as sent (`POST`).
    pub method: &'a str,
    /// The request target's path and query as sent on the wire (percent-encoding untouched).
    /// Behind a router that strips a prefix, use the original URI.
    pub path_and_query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body bytes exactly as received.
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// The view of an `http` request (`axum`: `Request::into_parts` plus the collected body).
    /// Uses `parts.uri`: when a router has rewritten it (axum `nest`), build the struct from
    /// the original URI instead.
    pub fn from_http(parts: &'a http::request::Parts, body: &'a [u8]) -> RequestParts<'a> {
        RequestParts {
            method: parts.method.as_str(),
            path_and_query: parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |pq| pq.as_str()),
            headers: &parts.headers,
            body,
        }
    }
}

/// The authentication headers of one request, each checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    /// Channel number.
    pub channel: &'a str,
    /// Key id.
    pub key_id: &'a str,
    /// Timestamp as sent (it is signed as sent).
    pub timestamp_text: &'a str,
    /// Timestamp, unix seconds.
    pub timestamp: u64,
    /// Nonce.
    pub nonce: &'a str,
    /// Decoded signature bytes.
    pub signature: Vec<u8>,
}

fn one<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::HeaderMissing { header: name });
    };
    if values.next().is_some() {
        return Err(malformed(name, "sent more than once"));
    }
    let value = value.to_str().map_err(|_| malformed(name, "not visible ASCII"))?;
    if value.is_empty() {
        return Err(AuthError::HeaderMissing { header: name });
    }
    Ok(value)
}

fn malformed(header: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::HeaderMalformed { header, reason: reason.into() }
}

/// Whether `nonce` has the nonce header's form.
pub fn is_valid_nonce(nonce: &str) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads and checks the five headers: all present, once each, each well-formed.
pub fn read_signed_headers(headers: &HeaderMap) -> Result<SignedHeaders<'_>, AuthError> {
    let channel = one(headers, CHANNEL)?;
    onecard_catalog::ids::validate_channel_id(channel)
        .map_err(|_| malformed(CHANNEL, "a channel number has ten digits"))?;
    let key_id = one(headers, KEY_ID)?;
    onecard_catalog::ids::validate_slug("key id", key_id).map_err(|e| malformed(KEY_ID, e))?;
    let timestamp_text = one(headers, TIMESTAMP)?;
    if timestamp_text.len() > MAX_TIMESTAMP_DIGITS || !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(TIMESTAMP, "unix seconds, decimal digits only"));
    }
    let timestamp =
        timestamp_text.parse::<u64>().map_err(|_| malformed(TIMESTAMP, "unix seconds, decimal digits only"))?;
    let nonce = one(headers, NONCE)?;
    if !is_valid_nonce(nonce) {
        return Err(malformed(NONCE, "16 to 64 characters of A-Z, a-z, 0-9, '-', '_'"));
    }
    let signature_text = one(headers, SIGNATURE)?;
    if signature_text.len() > MAX_SIGNATURE_CHARS {
        return Err(malformed(SIGNATURE, "too long"));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_text)
        .map_err(|_| malformed(SIGNATURE, "not standard base64 with padding"))?;
    Ok(SignedHeaders { channel, key_id, timestamp_text, timestamp, nonce, signature })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn set(h: &mut HeaderMap, name: &str, value: &'static str) {
        h.insert(header_name(name), HeaderValue::from_static(value));
    }

    fn good() -> HeaderMap {
        let mut h = HeaderMap::new();
        set(&mut h, CHANNEL, "3300000001");
        set(&mut h, KEY_ID, "gate-2026");
        set(&mut h, TIMESTAMP, "1767225600");
        set(&mut h, NONCE, "abcdefghijklmnop");
        set(&mut h, SIGNATURE, "AAEC");
        h
    }

    fn code_with(name: &'static str, value: Option<&'static str>) -> (String, &'static str) {
        let mut h = good();
        match value {
            Some(v) => set(&mut h, name, v),
            None => {
                h.remove(name);
            }
        }
        let err = read_signed_headers(&h).expect_err("refused");
        (err.to_string(), err.code())
    }

    #[test]
    fn well_formed_headers_are_read() {
        let h = good();
        let s = read_signed_headers(&h).expect("well-formed");
        assert_eq!(s.channel, "3300000001");
        assert_eq!(s.timestamp, 1_767_225_600);
        assert_eq!(s.signature, vec![0, 1, 2]);
    }

    #[test]
    fn each_missing_header_is_named() {
        for name in ALL {
            let (msg, code) = code_with(name, None);
            assert_eq!(code, "CHANNEL_HEADERS_MISSING");
            assert!(msg.contains(name), "{msg}");
            let (msg, _) = code_with(name, Some(""));
            assert!(msg.contains(name), "empty {name}: {msg}");
        }
    }

    #[test]
    fn malformed_values_are_refused_naming_the_header() {
        for (name, value) in [
            (CHANNEL, "330000001"),
            (CHANNEL, "33000000a1"),
            (KEY_ID, "Gate"),
            (TIMESTAMP, "-1767225600"),
            (TIMESTAMP, "1767225600.5"),
            (TIMESTAMP, "9999999999999"),
            (NONCE, "short"),
            (NONCE, "abcdefghijklmnop!"),
            (SIGNATURE, "not base64"),
            (SIGNATURE, "AAE"),
        ] {
            let (msg, code) = code_with(name, Some(value));
            assert_eq!(code, "CHANNEL_HEADERS_MISSING", "{name}={value}");
            assert!(msg.contains(name), "{name}={value}: {msg}");
        }
    }

    #[test]
    fn a_repeated_header_is_refused() {
        let mut h = good();
        h.append(header_name(NONCE), HeaderValue::from_static("qrstuvwxyzabcdef"));
        let err = read_signed_headers(&h).expect_err("refused");
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn nonce_bounds() {
        assert!(is_valid_nonce(&"a".repeat(16)));
        assert!(is_valid_nonce(&"-_".repeat(32)));
        assert!(!is_valid_nonce(&"a".repeat(15)));
        assert!(!is_valid_nonce(&"a".repeat(65)));
    }

    #[test]
    fn parts_come_from_http_without_copies() {
        let (parts, ()) = http::Request::post("https://gw.example/v1/apps/parks/actions/enter?b=2&a=1")
            .body(())
            .expect("request")
            .into_parts();
        let rp = RequestParts::from_http(&parts, b"{}");
        assert_eq!(rp.method, "POST");
        assert_eq!(rp.path_and_query, "/v1/apps/parks/actions/enter?b=2&a=1");
    }
}
