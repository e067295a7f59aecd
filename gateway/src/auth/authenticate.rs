//! The entry point of channel authentication: reads the headers, finds the channel's key,
//! bounds the timestamp, checks the signature and only then spends the nonce.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use onecard_catalog::Snapshot;
use onecard_catalog::model::{Channel, ChannelKey, KeyAlgorithm};

use super::canonical::CanonicalRequest;
use super::headers::{RequestParts, read_signed_headers};
use super::keys::VerifyingKey;
use super::nonce::NonceStore;
use super::{AuthConfig, AuthError};

/// Where authentication finds a channel's keys: the catalog snapshot, or a prepared index.
pub trait ChannelKeys {
    /// The keys of channel `channel`, or `None` when there is no such channel. The channel's
    /// status (suspended, terminated) is admission's business, not authentication's.
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]>;
}

impl ChannelKeys for [Channel] {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.iter().find(|c| c.id == channel).map(|c| c.keys.as_slice())
    }
}

impl ChannelKeys for Vec<Channel> {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.as_slice().channel_keys(channel)
    }
}

impl ChannelKeys for Snapshot {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.channels.channel_keys(channel)
    }
}

impl ChannelKeys for HashMap<String, Vec<ChannelKey>> {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.get(channel).map(Vec::as_slice)
    }
}

impl ChannelKeys for BTreeMap<String, Vec<ChannelKey>> {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.get(channel).map(Vec::as_slice)
    }
}

/// Who sent an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedChannel {
    /// Channel number.
    pub channel: String,
    /// The key that signed.
    pub key_id: String,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// The request's timestamp, unix seconds.
    pub timestamp: u64,
}

/// The nonce-store scope of a channel's request nonces.
pub fn channel_nonce_scope(channel: &str) -> String {
    format!("channel:{channel}")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Authenticates a channel request. Checks, in order (the first failure answers):
/// 1. the five headers are present, once each, and well-formed;
/// 2. the channel is known, its key `key_id` exists and is valid at `now`;
/// 3. the timestamp is within `config.max_skew_secs` of `now` (inclusive);
/// 4. the signature verifies;
/// 5. the nonce is new in the channel's scope (remembered for twice the skew).
///
/// Nothing is remembered unless every earlier check passed: a refused request leaves its
/// nonce usable.
pub async fn authenticate(
    parts: &RequestParts<'_>,
    channels: &(impl ChannelKeys + ?Sized),
    nonces: &dyn NonceStore,
    now: SystemTime,
    config: &AuthConfig,
) -> Result<AuthenticatedChannel, AuthError> {
    let signed = read_signed_headers(parts.headers)?;
    let keys = channels
        .channel_keys(signed.channel)
        .ok_or_else(|| AuthError::ChannelUnknown { channel: signed.channel.to_string() })?;
    let key_unknown =
        || AuthError::KeyUnknown { channel: signed.channel.to_string(), key_id: signed.key_id.to_string() };
    // A plain loop rather than iterator adapters: no closure borrowing `signed` lives across
    // the nonce store's `.await` below (that would make this future not `Send` for every
    // lifetime, which axum handlers need).
    let now_utc = chrono::DateTime::<chrono::Utc>::from(now);
    let mut named = false;
    let mut valid = None;
    for k in keys {
        if k.key_id == signed.key_id {
            named = true;
            if k.not_before <= now_utc && now_utc < k.not_after {
                valid = Some(k);
                break;
            }
        }
    }
    if !named {
        return Err(key_unknown());
    }
    let key = valid.ok_or_else(|| AuthError::KeyExpired { channel: signed.channel.to_string(), key_id: signed.key_id.to_string() })?;
    let verifying = VerifyingKey::from_channel_key(key).map_err(|e| {
        tracing::warn!(channel = signed.channel, key_id = signed.key_id, error = %e, "channel key in the catalog is unusable");
        key_unknown()
    })?;

    let now_secs = unix_secs(now);
    if now_secs.abs_diff(signed.timestamp) > config.max_skew_secs {
        return Err(AuthError::TimestampSkew {
            timestamp: signed.timestamp,
            now: now_secs,
            max_skew_secs: config.max_skew_secs,
        });
    }

    let canonical = CanonicalRequest {
        method: parts.method,
        path_and_query: parts.path_and_query,
        channel: signed.channel,
        key_id: signed.key_id,
        timestamp: signed.timestamp_text,
        nonce: signed.nonce,
        body: parts.body,
    }
    .to_string_for(key.algorithm);
    if !verifying.verify(canonical.as_bytes(), &signed.signature) {
        return Err(AuthError::SignatureInvalid);
    }

    nonces.check_and_remember(&channel_nonce_scope(signed.channel), signed.nonce, config.nonce_ttl()).await?;
    Ok(AuthenticatedChannel {
        channel: signed.channel.to_string(),
        key_id: signed.key_id.to_string(),
        algorithm: key.algorithm,
        timestamp: signed.timestamp,
    })
}
