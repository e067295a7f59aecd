//! Fresh signed entry requests, made before a phase starts so the load generator spends no
//! signing time while it measures: every request has its own channel nonce and carries a card
//! token minted for it alone (tokens are single-use).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use onecard_gateway::auth::{RequestSigner, SignatureHeaders, random_nonce};
use onecard_gateway::credential::{CredentialClaims, IssuerSigningKey, mint};

/// The action every request calls.
pub const PATH: &str = "/v1/apps/parks/actions/enter";
/// The venue and gate of every request (registered in the test city).
pub const VENUE: &str = onecard_tests::city::VENUE;
/// The gate.
pub const TERMINAL: &str = "WL-G1";
/// Region the tokens name.
const REGION: &str = "330100";
/// Token validity, seconds: the longest the format allows (a run lasts at most 30 s).
const TOKEN_VALIDITY_SECS: u8 = onecard_gateway::credential::MAX_VALIDITY_SECS;

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// JSON body (signed).
    pub body: Bytes,
    /// The five signature headers.
    pub signature: SignatureHeaders,
}

/// Who signs: the channel (requests) and the issuer (card tokens).
#[derive(Debug, Clone)]
pub struct Signers {
    /// The venue operator's channel key.
    pub channel: RequestSigner,
    /// The trusted issuer's key.
    pub issuer: IssuerSigningKey,
}

impl Prepared {
    /// The request as HTTP/1.1 bytes for the server at `host` (`ip:port`), for
    /// [`crate::wire`]: request line, `Host`, `Content-Type`, `Content-Length`, the signature
    /// headers, the body.
    pub fn http1(&self, host: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(512 + self.body.len());
        let head = format!("POST {PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", self.body.len());
        bytes.extend_from_slice(head.as_bytes());
        for (name, value) in self.signature.pairs() {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Signers {
    /// One entry request for the holder of `card_ref`, signed now.
    pub fn entry(&self, card_ref: &str) -> anyhow::Result<Prepared> {
        let now = unix_now();
        let token = mint(&self.issuer, &CredentialClaims::new(card_ref, REGION, now, TOKEN_VALIDITY_SECS))?;
        let body = serde_json::json!({
            "credential": token,
            "venue": VENUE,
            "terminal": TERMINAL,
            "idempotency_key": random_nonce(),
        });
        let body = Bytes::from(serde_json::to_vec(&body)?);
        let signature = self.channel.sign_at("POST", PATH, &body, now, &random_nonce());
        Ok(Prepared { body, signature })
    }

    /// `count` requests, the `i`-th for `cards[i % cards.len()]`, signed on every core.
    pub fn prepare(&self, cards: &[String], count: usize) -> anyhow::Result<Vec<Prepared>> {
        anyhow::ensure!(!cards.is_empty(), "no card to make requests for");
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = count.div_ceil(threads).max(1);
        let indices: Vec<usize> = (0..count).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = indices
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|i| self.entry(&cards[i % cards.len()])).collect::<anyhow::Result<Vec<_>>>()))
                .collect();
            let mut all = Vec::with_capacity(count);
            for worker in workers {
                let part = worker.join().map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
                all.extend(part);
            }
            Ok(all)
        })
    }
}

#[cfg(test)]
mod tests {
    use onecard_catalog::model::KeyAlgorithm;
    use onecard_gateway::auth::SigningKey;

    use super::*;

    fn signers() -> Signers {
        Signers {
            channel: RequestSigner::new("3300000001", "gate-2026", SigningKey::generate(KeyAlgorithm::Ed25519)).unwrap(),
            issuer: IssuerSigningKey::new("test-issuer", SigningKey::generate(KeyAlgorithm::Ed25519)).unwrap(),
        }
    }

    #[test]
    fn every_request_has_its_own_nonce_and_token() {
        let cards = vec!["a".repeat(64), "b".repeat(64)];
        let prepared = signers().prepare(&cards, 5).unwrap();
        assert_eq!(prepared.len(), 5);
        let nonces: std::collections::BTreeSet<_> = prepared.iter().map(|p| p.signature.nonce.clone()).collect();
        let bodies: std::collections::BTreeSet<_> = prepared.iter().map(|p| p.body.clone()).collect();
        assert_eq!((nonces.len(), bodies.len()), (5, 5));
        let body: serde_json::Value = serde_json::from_slice(&prepared[2].body).unwrap();
        assert_eq!(body["venue"], VENUE);
        assert!(body["credential"].as_str().unwrap().starts_with("v1."));
    }

    #[test]
    fn rendered_bytes_are_one_whole_http_request() {
        let prepared = signers().entry(&"a".repeat(64)).unwrap();
        let bytes = prepared.http1("127.0.0.1:8080");
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(&bytes).unwrap() {
            httparse::Status::Complete(head) => head,
            httparse::Status::Partial => panic!("incomplete head"),
        };
        assert_eq!((request.method, request.path, request.version), (Some("POST"), Some(PATH), Some(1)));
        let header = |name: &str| request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.to_vec());
        assert_eq!(header("host").unwrap(), b"127.0.0.1:8080");
        assert_eq!(header("content-length").unwrap(), prepared.body.len().to_string().as_bytes());
        assert_eq!(header("x-onecard-nonce").unwrap(), prepared.signature.nonce.as_bytes());
        assert_eq!(header("content-type").unwrap(), b"application/json");
        assert_eq!(&bytes[head..], &prepared.body[..], "the body follows the head, and nothing else");
    }
}
