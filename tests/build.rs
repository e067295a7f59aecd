//! Enables the PostgreSQL tests (`cfg(onecard_pg)`) when `ONECARD_TEST_POSTGRES_URL` is set;
//! without it they are reported as ignored, by name.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(onecard_pg)");
    println!("cargo::rerun-if-env-changed=ONECARD_TEST_POSTGRES_URL");
    if std::env::var_os("ONECARD_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=onecard_pg");
    }
}
