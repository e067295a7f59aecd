//! What a rate-limit check answers: the status of an admitted request, or the refusal, each
//! rendered as HTTP headers.
//!
//! Headers follow **draft-ietf-httpapi-ratelimit-headers-06** (the last draft with separate
//! fields): `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and
//! `RateLimit-Policy` (`LIMIT;w=WINDOW_SECONDS`, e.g. `60;w=60`). A refusal adds `Retry-After`
//! (RFC 9110, delay in seconds).

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// `RateLimit-Limit`.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The level of the hierarchy a limiter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// One channel calling one application, per minute.
    Channel,
    /// One venue of an application, per minute.
    Venue,
    /// One card holder on one application, per minute.
    HolderMinute,
    /// One card holder on one application, per day.
    HolderDay,
}

impl Level {
    /// All levels, in the order a request is checked.
    pub const ALL: [Level; 4] = [Level::Channel, Level::Venue, Level::HolderMinute, Level::HolderDay];

    /// The window the level's limit counts over.
    pub fn window(self) -> Duration {
        match self {
            Level::HolderDay => Duration::from_secs(86_400),
            _ => Duration::from_secs(60),
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Level::Channel => 0,
            Level::Venue => 1,
            Level::HolderMinute => 2,
            Level::HolderDay => 3,
        }
    }

    fn who(self) -> &'static str {
        match self {
            Level::Channel => "this channel on this application",
            Level::Venue => "this venue",
            Level::HolderMinute | Level::HolderDay => "this card holder on this application",
        }
    }

    fn per(self) -> &'static str {
        match self {
            Level::HolderDay => "day",
            _ => "minute",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Channel => "channel",
            Level::Venue => "venue",
            Level::HolderMinute => "holder_per_minute",
            Level::HolderDay => "holder_per_day",
        })
    }
}

/// `LIMIT;w=SECONDS`, the draft's quota policy.
pub(super) fn policy(limit: u32, window: Duration) -> String {
    format!("{limit};w={}", window.as_secs())
}

/// Whole seconds, rounded up.
pub(super) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The status of an admitted request at the tightest level that applied: the one with the
/// fewest requests remaining (on a tie, the one that takes longer to reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitStatus {
    /// Requests the level allows in its window (the burst).
    pub limit: u32,
    /// Requests still allowed right now, after this one.
    pub remaining: u32,
    /// Time until the level is back to `limit` remaining (GCRA replenishes one request every
    /// `window / limit`; this is rounded up to whole replenishments).
    pub reset: Duration,
    /// The quota policy, e.g. `60;w=60`.
    pub policy: String,
}

impl LimitStatus {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (whole seconds, rounded up)
    /// and `RateLimit-Policy`.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = vec![
            (RATELIMIT_LIMIT, HeaderValue::from(self.limit)),
            (RATELIMIT_REMAINING, HeaderValue::from(self.remaining)),
            (RATELIMIT_RESET, HeaderValue::from(ceil_secs(self.reset))),
        ];
        if let Ok(v) = HeaderValue::from_str(&self.policy) {
            h.push((RATELIMIT_POLICY, v));
        }
        h
    }
}

/// A request refused by a rate limit: `429 Too Many Requests`, code `RATE_LIMITED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct RateLimited {
    /// The level that refused (when several did, the one that frees up last).
    pub level: Level,
    /// That level's limit per window.
    pub limit: u32,
    /// How long until the request would be admitted at that level.
    pub retry_after: Duration,
}

impl RateLimited {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        "RATE_LIMITED"
    }

    /// `Retry-After` in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(1)
    }

    /// A message naming the level and its limit.
    pub fn message(&self) -> String {
        format!(
            "rate limit exceeded at the {} level: {} requests per {} for {}; retry after {} s",
            self.level,
            self.limit,
            self.level.per(),
            self.level.who(),
            self.retry_after_secs()
        )
    }

    /// `Retry-After`, and the `RateLimit-*` fields of the refusing level (remaining 0, reset
    /// equal to `Retry-After`).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let secs = self.retry_after_secs();
        let mut h = vec![
            (http::header::RETRY_AFTER, HeaderValue::from(secs)),
            (RATELIMIT_LIMIT, HeaderValue::from(self.limit)),
            (RATELIMIT_REMAINING, HeaderValue::from(0u32)),
            (RATELIMIT_RESET, HeaderValue::from(secs)),
        ];
        if let Ok(v) = HeaderValue::from_str(&policy(self.limit, self.level.window())) {
            h.push((RATELIMIT_POLICY, v));
        }
        h
    }
}
