//! The host capabilities a plugin may call, one module each.
//!
//! On `wasm32` every function is a call into the gateway through the WIT imports; natively the
//! calls go to the [`testing`](crate::testing) harness installed on the current thread, so the
//! same plugin code runs in unit tests and benchmarks.

#[cfg(target_arch = "wasm32")]
use crate::bindings::onecard::plugin as wit;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::with_host;

/// The presented card's status and consented attributes.
pub mod card {
    use super::*;
    use crate::errors::CardError;
    use crate::types::CardStatus;

    /// The card's current status in the card registry.
    pub fn status() -> Result<CardStatus, CardError> {
        #[cfg(target_arch = "wasm32")]
        return wit::card::status();
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.card_status());
    }

    /// A consented attribute by scope name, e.g. `holder.age`.
    pub fn attribute(scope: &str) -> Result<String, CardError> {
        #[cfg(target_arch = "wasm32")]
        return wit::card::attribute(scope);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.card_attribute(scope));
    }
}

/// Outbound HTTP to a backend named in the application's catalog entry.
pub mod http {
    use super::*;
    use crate::errors::HttpError;

    pub use crate::bindings::onecard::plugin::http::{IncomingResponse, Method, OutgoingRequest};

    /// Send a request to `backend` (a name from the catalog entry, never a URL).
    pub fn send(backend: &str, request: &OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        #[cfg(target_arch = "wasm32")]
        return wit::http::send(backend, request);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.http_send(backend, request));
    }

    /// POST a JSON body to `path` on `backend`.
    pub fn post_json(backend: &str, path: &str, body: &serde_json::Value) -> Result<IncomingResponse, HttpError> {
        let request = OutgoingRequest {
            method: Method::Post,
            path: path.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        };
        send(backend, &request)
    }
}

/// Key-value state in the application's own namespace.
pub mod kv {
    use super::*;
    use crate::errors::KvError;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        #[cfg(target_arch = "wasm32")]
        return wit::kv::get(key);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.kv_get(key));
    }

    /// Set `key`; with `ttl_ms` it expires.
    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError> {
        #[cfg(target_arch = "wasm32")]
        return wit::kv::set(key, value, ttl_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.kv_set(key, value, ttl_ms));
    }

    /// Delete `key`; true when it existed.
    pub fn delete(key: &str) -> Result<bool, KvError> {
        #[cfg(target_arch = "wasm32")]
        return wit::kv::delete(key);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.kv_delete(key));
    }

    /// Set `key` to `new` only if it currently holds `expected` (`None`: absent).
    pub fn compare_and_swap(key: &str, expected: Option<&[u8]>, new: &[u8], ttl_ms: Option<u64>) -> Result<bool, KvError> {
        #[cfg(target_arch = "wasm32")]
        return wit::kv::compare_and_swap(key, expected, new, ttl_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.kv_compare_and_swap(key, expected, new, ttl_ms));
    }

    /// Atomically add `delta`; an absent key counts as 0. `ttl_ms` applies when it is created.
    pub fn increment(key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        #[cfg(target_arch = "wasm32")]
        return wit::kv::increment(key, delta, ttl_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.kv_increment(key, delta, ttl_ms));
    }
}

/// Money movement through the settlement port; amounts in fen.
pub mod payments {
    use super::*;
    use crate::errors::PaymentError;

    pub use crate::bindings::onecard::plugin::payments::{Kind, Payment, Receipt};

    /// Submit a payment; the same idempotency key never moves money twice.
    pub fn submit(payment: &Payment) -> Result<Receipt, PaymentError> {
        #[cfg(target_arch = "wasm32")]
        return wit::payments::submit(payment);
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.payments_submit(payment));
    }
}

/// Logging into the gateway's log, tagged with the application and request id.
pub mod log {
    #[allow(unused_imports)]
    use super::*;

    pub use crate::bindings::onecard::plugin::log::Level;

    pub fn log(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        wit::log::log(level, message);
        #[cfg(not(target_arch = "wasm32"))]
        with_host(|h| h.log(level, message));
    }

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// The request's clock: one instant for the whole request.
pub mod clock {
    #[allow(unused_imports)]
    use super::*;

    pub use crate::bindings::onecard::plugin::clock::Datetime;

    pub fn now() -> Datetime {
        #[cfg(target_arch = "wasm32")]
        return wit::clock::now();
        #[cfg(not(target_arch = "wasm32"))]
        return with_host(|h| h.now());
    }

    impl Datetime {
        /// Local civil time of this instant: (days since 1970-01-01, minutes since local midnight).
        pub fn local_day_and_minute(&self) -> (i64, u32) {
            let local_ms = self.unix_ms + i64::from(self.utc_offset_minutes) * 60_000;
            let day = local_ms.div_euclid(86_400_000);
            let minute = (local_ms.rem_euclid(86_400_000) / 60_000) as u32;
            (day, minute)
        }

        /// Local calendar date as `YYYY-MM-DD`.
        pub fn local_date(&self) -> String {
            let (days, _) = self.local_day_and_minute();
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }

        /// Milliseconds until the next local midnight (for keys that live until end of day).
        pub fn ms_until_local_midnight(&self) -> u64 {
            let local_ms = self.unix_ms + i64::from(self.utc_offset_minutes) * 60_000;
            (86_400_000 - local_ms.rem_euclid(86_400_000)) as u64
        }
    }

    /// Gregorian date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`; a date
    /// crate would pull a time zone database into every plugin for one function).
    pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn civil_dates() {
            assert_eq!(civil_from_days(0), (1970, 1, 1));
            assert_eq!(civil_from_days(19_723), (2024, 1, 1));
            assert_eq!(civil_from_days(19_782), (2024, 2, 29));
            assert_eq!(civil_from_days(-1), (1969, 12, 31));
        }

        #[test]
        fn local_time_uses_offset() {
            // 2026-11-23T17:30:00Z is 2026-11-24 01:30 in China (+08:00).
            let t = Datetime { unix_ms: 1_795_455_000_000, utc_offset_minutes: 480 };
            assert_eq!(t.local_date(), "2026-11-24");
            assert_eq!(t.local_day_and_minute().1, 90);
            assert_eq!(t.ms_until_local_midnight(), (22 * 60 + 30) * 60_000);
        }
    }
}
