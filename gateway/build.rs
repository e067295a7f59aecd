//! Build script of the gateway: turns on the Redis-backed tests when a test Redis is named.
//!
//! Tests that need a real Redis are compiled with `cfg(onecard_redis)` only when
//! `ONECARD_TEST_REDIS_URL` is set at build time; otherwise they are ignored with a reason, so a
//! plain `cargo test` stays self-contained and a CI with Redis runs them for real.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(onecard_redis)");
    println!("cargo::rerun-if-env-changed=ONECARD_TEST_REDIS_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("ONECARD_TEST_REDIS_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=onecard_redis");
    }
}
