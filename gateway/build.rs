//! Build script of the gateway: turns on the Redis- and PostgreSQL-backed tests when a test
//! service is named.
//!
//! Tests that need a real Redis (PostgreSQL) are compiled with `cfg(onecard_redis)`
//! (`cfg(onecard_pg)`) only when `ONECARD_TEST_REDIS_URL` (`ONECARD_TEST_POSTGRES_URL`) is set at
//! build time; otherwise they are ignored with a reason, so a plain `cargo test` stays
//! self-contained and a CI with the services runs them for real.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (cfg, var) in [("onecard_redis", "ONECARD_TEST_REDIS_URL"), ("onecard_pg", "ONECARD_TEST_POSTGRES_URL")] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
