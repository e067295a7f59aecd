//! The canonical request string: the exact bytes a channel signs and the gateway verifies.
//! The format is specified in the [module documentation](super); venues implement it in other
//! languages, so any change here is a protocol change.

use onecard_catalog::model::KeyAlgorithm;

use super::keys::body_hash_hex;

/// The path and query as signed: the path as sent, then — when the query has at least one
/// non-empty parameter — `?` and the parameters (the `&`-separated pieces, still
/// percent-encoded as sent, empty pieces dropped) sorted by their bytes, joined by `&`.
pub fn canonical_path(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_and_query, ""),
    };
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if params.is_empty() {
        return path.to_string();
    }
    params.sort_unstable();
    format!("{path}?{}", params.join("&"))
}

/// The fields of a canonical request.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    /// The request method (upper-cased when signed).
    pub method: &'a str,
    /// Path and query as sent.
    pub path_and_query: &'a str,
    /// `X-Onecard-Channel`.
    pub channel: &'a str,
    /// `X-Onecard-Key-Id`.
    pub key_id: &'a str,
    /// `X-Onecard-Timestamp`, as sent.
    pub timestamp: &'a str,
    /// `X-Onecard-Nonce`.
    pub nonce: &'a str,
    /// The body.
    pub body: &'a [u8],
}

impl CanonicalRequest<'_> {
    /// The string to sign for a key of `algorithm` (which chooses the body hash).
    pub fn to_string_for(&self, algorithm: KeyAlgorithm) -> String {
        [
            self.method.to_ascii_uppercase(),
            canonical_path(self.path_and_query),
            self.channel.to_string(),
            self.key_id.to_string(),
            self.timestamp.to_string(),
            self.nonce.to_string(),
            body_hash_hex(algorithm, self.body),
        ]
        .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_sorted_as_sent() {
        assert_eq!(canonical_path("/v1/x"), "/v1/x");
        assert_eq!(canonical_path("/v1/x?"), "/v1/x");
        assert_eq!(canonical_path("/v1/x?&&"), "/v1/x");
        assert_eq!(canonical_path("/v1/x?b=2&a=1&a=0"), "/v1/x?a=0&a=1&b=2");
        assert_eq!(canonical_path("/v1/x?z&a%20b=1&&a=2"), "/v1/x?a%20b=1&a=2&z");
        // Byte order of whole parameters: '-' (0x2d) sorts before '=' (0x3d).
        assert_eq!(canonical_path("/p?a=2&a-b=1"), "/p?a-b=1&a=2");
    }

    #[test]
    fn the_canonical_string_is_seven_lines_without_a_trailing_newline() {
        let req = CanonicalRequest {
            method: "post",
            path_and_query: "/v1/apps/parks/actions/enter?b=2&a=1",
            channel: "3300000001",
            key_id: "gate-2026",
            timestamp: "1767225600",
            nonce: "abcdefghijklmnop",
            body: b"abc",
        };
        assert_eq!(
            req.to_string_for(KeyAlgorithm::Ed25519),
            "POST\n/v1/apps/parks/actions/enter?a=1&b=2\n3300000001\ngate-2026\n1767225600\nabcdefghijklmnop\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            req.to_string_for(KeyAlgorithm::Sm2)
                .ends_with("\n66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
        );
    }
}
