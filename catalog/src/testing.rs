//! Test support: fresh stores on SQLite (a temporary file) and on PostgreSQL (a fresh schema
//! per test in the database named by `ONECARD_TEST_POSTGRES_URL`), and the macro that runs one
//! async test body against both.

use crate::store::Store;

/// A store on a new SQLite file; keep the returned directory alive for the test.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    (Store::open(&url).await.expect("open sqlite store"), dir)
}

/// A store in a fresh PostgreSQL schema. Failing to connect fails the test.
pub async fn postgres_store() -> (Store, ()) {
    let url = postgres_url().await;
    (Store::open(&url).await.expect("open postgres store"), ())
}

/// The URL of a fresh, empty PostgreSQL schema.
pub async fn postgres_url() -> String {
    use rand::RngCore as _;
    let base = std::env::var("ONECARD_TEST_POSTGRES_URL").expect("ONECARD_TEST_POSTGRES_URL is set");
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    let schema = format!("t_{}", hex::encode(b));
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

/// Runs each listed `async fn name(store: Store)` on SQLite and on PostgreSQL, as tests
/// `name::sqlite` and `name::postgres` (the latter ignored without PostgreSQL).
#[macro_export]
#[doc(hidden)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (store, _guard) = $crate::testing::sqlite_store().await;
                    super::$name(store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
                async fn postgres() {
                    let (store, _guard) = $crate::testing::postgres_store().await;
                    super::$name(store).await;
                }
            }
        )*
    };
}

/// The example city's catalog file.
pub const EXAMPLE: &str = include_str!("../../examples/city/catalog.toml");

/// A principal of `role` (bound to `hz-parks` for department roles).
pub fn who(role: crate::roles::Role) -> crate::roles::Principal {
    let p = crate::roles::Principal::new(&format!("test-{}", role.as_str()), role);
    if role.needs_department() { p.in_department("hz-parks") } else { p }
}

/// A store with the example catalog applied.
pub async fn with_example(store: &Store) {
    crate::declarative::apply_str(store, &who(crate::roles::Role::ProvinceAdmin), EXAMPLE, false)
        .await
        .expect("example applies");
}
