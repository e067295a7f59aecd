//! The `onecard catalog …` subcommands (wired into the `onecard` binary by the gateway crate):
//! `init`, `apply FILE [--dry-run]`, `export`, `serve --listen ADDR`. `apply` and `export`
//! work on a database directly (`--db`) or against a running catalog (`--url` + `--token`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, Subcommand};

use crate::api::{self, ApiConfig};
use crate::client::{RemoteCatalog, RemoteError};
use crate::declarative;
use crate::error::Error;
use crate::roles::{Principal, Role};
use crate::snapshot::key_id;
use crate::store::{NewToken, Store};

/// Where the catalog is: a database, or a running catalog.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Database URL: a SQLite file path (`catalog.db`, `sqlite://catalog.db`) or `postgres://…`.
    #[arg(long, env = "ONECARD_DATABASE_URL")]
    pub db: Option<String>,
    /// Base URL of a running catalog (instead of `--db`).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for `--url` (a province admin's).
    #[arg(long, env = "ONECARD_CATALOG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The database to work on.
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// Database URL: a SQLite file path (`catalog.db`, `sqlite://catalog.db`) or `postgres://…`.
    #[arg(long, env = "ONECARD_DATABASE_URL")]
    pub db: String,
}

/// `onecard catalog …`
#[derive(Debug, Clone, Subcommand)]
pub enum CatalogCommand {
    /// Creates (or migrates) the database and its keys, and prints the first admin token once.
    Init {
        /// Database.
        #[command(flatten)]
        db: Database,
        /// Name recorded as the first admin.
        #[arg(long, default_value = "first-admin")]
        admin_name: String,
    },
    /// Applies a declarative catalog file; applying the same file twice changes nothing.
    Apply {
        /// The TOML file.
        file: PathBuf,
        /// Show the changes without making them.
        #[arg(long)]
        dry_run: bool,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Prints the whole catalog as TOML (secrets excluded).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Serves the catalog API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// Database.
        #[command(flatten)]
        db: Database,
        /// Lifetime of served snapshots, in seconds.
        #[arg(long, default_value_t = 3600)]
        snapshot_ttl_secs: u32,
    },
}

/// Why a catalog command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The catalog refused or failed.
    #[error(transparent)]
    Catalog(#[from] Error),
    /// A remote catalog refused or could not be reached.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A file could not be read or written, or the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The command line is incomplete.
    #[error("{0}")]
    Usage(String),
}

/// Runs a catalog command, printing to standard output.
pub async fn run(cmd: CatalogCommand) -> Result<(), CliError> {
    let mut out = std::io::stdout();
    execute(cmd, &mut out).await
}

enum Where {
    Db(Store),
    Remote(RemoteCatalog),
}

async fn open_target(t: &Target) -> Result<Where, CliError> {
    match (&t.url, &t.db) {
        (Some(url), _) => {
            let token = t.token.as_deref().ok_or_else(|| CliError::Usage("--url needs --token (or ONECARD_CATALOG_TOKEN)".into()))?;
            Ok(Where::Remote(RemoteCatalog::new(url, token)))
        }
        (None, Some(db)) => Ok(Where::Db(Store::open(db).await?)),
        (None, None) => Err(CliError::Usage("say where the catalog is: --db URL (or ONECARD_DATABASE_URL), or --url URL --token T".into())),
    }
}

/// Runs a catalog command, printing to `out`.
pub async fn execute(cmd: CatalogCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        CatalogCommand::Init { db, admin_name } => {
            let store = Store::open(&db.db).await?;
            let mut w = store.begin_write("init").await?;
            if w.has_admin_token().await? {
                w.rollback().await?;
                return Err(CliError::Usage(
                    "the catalog is already initialised: an admin token exists (ask an admin for a token)".into(),
                ));
            }
            let (info, token) = w
                .create_token(&NewToken { name: admin_name, role: Role::ProvinceAdmin, department: None, city: None, channel: None })
                .await?;
            w.commit().await?;
            let vk = store.signing_key().await?.verifying_key();
            writeln!(out, "catalog initialised ({:?})", store.backend())?;
            writeln!(out, "snapshot key: {} ed25519 {}", key_id(&vk), base64::engine::general_purpose::STANDARD.encode(vk.as_bytes()))?;
            writeln!(out, "first admin token (id {}), shown once, store it now:", info.id)?;
            writeln!(out, "{token}")?;
        }
        CatalogCommand::Apply { file, dry_run, target } => {
            let src = std::fs::read_to_string(&file)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
            let report = match open_target(&target).await? {
                Where::Db(store) => declarative::apply_str(&store, &Principal::local_operator(), &src, dry_run).await?,
                Where::Remote(remote) => remote.apply(&src, dry_run).await?,
            };
            writeln!(out, "{report}")?;
        }
        CatalogCommand::Export { out: file, target } => {
            let toml = match open_target(&target).await? {
                Where::Db(store) => declarative::export_toml(&store).await?,
                Where::Remote(remote) => remote.export().await?,
            };
            match file {
                Some(path) => std::fs::write(&path, toml)?,
                None => out.write_all(toml.as_bytes())?,
            }
        }
        CatalogCommand::Serve { listen, db, snapshot_ttl_secs } => {
            let store = Store::open(&db.db).await?;
            let config = ApiConfig { snapshot_ttl: chrono::Duration::seconds(i64::from(snapshot_ttl_secs)), ..ApiConfig::default() };
            let listener = tokio::net::TcpListener::bind(listen).await?;
            writeln!(out, "catalog API on http://{}", listener.local_addr()?)?;
            api::serve(listener, store, &config).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exec(cmd: CatalogCommand) -> Result<String, CliError> {
        let mut out = Vec::new();
        execute(cmd, &mut out).await?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn db_target(url: &str) -> Target {
        Target { db: Some(url.into()), url: None, token: None }
    }

    async fn cli_round_trip(url: String) {
        let dir = tempfile::tempdir().expect("dir");
        let example = dir.path().join("catalog.toml");
        std::fs::write(&example, crate::testing::EXAMPLE).expect("write");

        let printed = exec(CatalogCommand::Init { db: Database { db: url.clone() }, admin_name: "root".into() }).await.expect("init");
        let token = printed.lines().last().expect("token line").to_string();
        assert!(token.starts_with("oc_"), "{printed}");
        let store = Store::open(&url).await.expect("open");
        assert_eq!(store.authenticate(&token).await.expect("token works").role, Role::ProvinceAdmin);
        let again = exec(CatalogCommand::Init { db: Database { db: url.clone() }, admin_name: "x".into() }).await;
        assert!(matches!(again, Err(CliError::Usage(_))), "init twice refuses");

        let dry = exec(CatalogCommand::Apply { file: example.clone(), dry_run: true, target: db_target(&url) }).await.expect("dry run");
        assert!(dry.contains("+ application parks") && dry.contains("dry run"), "{dry}");
        assert!(store.catalog().await.expect("catalog").applications.is_empty(), "a dry run writes nothing");
        let applied = exec(CatalogCommand::Apply { file: example.clone(), dry_run: false, target: db_target(&url) }).await.expect("apply");
        assert!(applied.contains("applied"), "{applied}");

        let exported = dir.path().join("export.toml");
        exec(CatalogCommand::Export { out: Some(exported.clone()), target: db_target(&url) }).await.expect("export");
        let again = exec(CatalogCommand::Apply { file: exported.clone(), dry_run: false, target: db_target(&url) }).await.expect("re-apply");
        assert!(again.starts_with("no change"), "{again}");

        // The same against a running catalog.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { api::serve(listener, store, &ApiConfig::default()).await });
        let remote = |t: &str| Target { db: None, url: Some(base.clone()), token: Some(t.into()) };
        let via_url = exec(CatalogCommand::Export { out: None, target: remote(&token) }).await.expect("remote export");
        assert_eq!(via_url, std::fs::read_to_string(&exported).expect("read"));
        let remote_apply = exec(CatalogCommand::Apply { file: example.clone(), dry_run: false, target: remote(&token) }).await.expect("remote apply");
        assert!(remote_apply.starts_with("no change"), "{remote_apply}");
        let bad = exec(CatalogCommand::Export { out: None, target: remote("oc_wrong") }).await.expect_err("bad token");
        assert!(bad.to_string().contains("TOKEN_INVALID"), "{bad}");
        std::fs::write(&example, "[[provinces]]\ncode = \"33\"\nnmae = \"typo\"\n").expect("write");
        let bad = exec(CatalogCommand::Apply { file: example.clone(), dry_run: false, target: remote(&token) }).await.expect_err("typo");
        assert!(bad.to_string().contains("INVALID_TOML") && bad.to_string().contains("line 3"), "{bad}");
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cli_round_trip_sqlite() {
        let dir = tempfile::tempdir().expect("dir");
        cli_round_trip(dir.path().join("cli.db").display().to_string()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
    async fn cli_round_trip_postgres() {
        cli_round_trip(crate::testing::postgres_url().await).await;
    }

    #[tokio::test]
    async fn apply_without_a_target_says_how() {
        let err = exec(CatalogCommand::Export { out: None, target: Target { db: None, url: None, token: None } }).await.expect_err("no target");
        assert!(err.to_string().contains("--db"), "{err}");
        let err = exec(CatalogCommand::Export { out: None, target: Target { db: None, url: Some("http://127.0.0.1:1".into()), token: None } })
            .await
            .expect_err("no token");
        assert!(err.to_string().contains("--token"), "{err}");
    }
}
