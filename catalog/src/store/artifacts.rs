//! Plugin artifacts, stored by the SHA-256 of their bytes: a department uploads the component
//! it files, gateways fetch the bytes for the hash their snapshot names and check it again.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::Store;
use crate::error::{Error, Result, codes};
use crate::model::{format_ts, now};

/// Largest artifact accepted, bytes (a plugin component is a few hundred KiB).
pub const MAX_ARTIFACT_BYTES: usize = 32 * 1024 * 1024;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Store {
    /// Stores `bytes` (idempotent) and returns their SHA-256, hex. Refuses empty or oversized
    /// uploads and anything that is not a WebAssembly binary.
    pub async fn put_artifact(&self, actor: &str, bytes: &[u8]) -> Result<String> {
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(Error::bad_request(codes::PAYLOAD_TOO_LARGE, format!("an artifact has at most {MAX_ARTIFACT_BYTES} bytes")));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(Error::bad_request(codes::INVALID_ARTIFACT, "an artifact is a WebAssembly component (it starts with \\0asm)"));
        }
        let sha = hex::encode(Sha256::digest(bytes));
        sqlx::query(
            "INSERT INTO artifacts (sha256, size, content, uploaded_at, uploaded_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(b64().encode(bytes))
        .bind(format_ts(&now()))
        .bind(actor)
        .execute(&self.pool)
        .await?;
        Ok(sha)
    }

    /// The bytes stored under `sha256`, checked against it.
    pub async fn artifact(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<String> = sqlx::query_scalar("SELECT content FROM artifacts WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        let Some(text) = row else { return Ok(None) };
        let bytes = b64().decode(text).map_err(|e| Error::Internal(format!("artifact {sha256} is corrupt: {e}")))?;
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(Error::Internal(format!("artifact {sha256} does not match its hash")));
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn artifacts_round_trip_by_hash_and_bad_uploads_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("c.db").to_str().unwrap()).await.unwrap();
        let bytes = b"\0asm\x0d\x00\x01\x00 component".to_vec();
        let sha = store.put_artifact("t", &bytes).await.unwrap();
        assert_eq!(store.put_artifact("t", &bytes).await.unwrap(), sha, "idempotent");
        assert_eq!(store.artifact(&sha).await.unwrap(), Some(bytes));
        let err = store.put_artifact("t", b"not wasm").await.unwrap_err();
        assert_eq!(err.code(), "INVALID_ARTIFACT");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM artifacts").fetch_one(store.pool()).await.unwrap();
        assert_eq!(count, 1, "the refused upload stored nothing");
        assert_eq!(store.artifact(&"0".repeat(64)).await.unwrap(), None);
    }
}
