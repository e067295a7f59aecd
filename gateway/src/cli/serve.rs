//! `onecard serve --config FILE` and `onecard gateway --config FILE --catalog URL`.

use std::path::PathBuf;

use clap::Args;

use crate::server::{self, ServeConfig};

/// Options of `onecard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); without it, the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Options of `onecard gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The catalog server's URL (overrides `[catalog] url`).
    #[arg(long)]
    pub catalog: Option<String>,
}

fn load(path: Option<&PathBuf>) -> Result<ServeConfig, String> {
    match path {
        Some(p) => ServeConfig::read(p).map_err(|e| format!("{e:#}")),
        None => {
            let mut c = ServeConfig::default();
            c.apply_env(|k| std::env::var(k).ok());
            Ok(c)
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then shuts down cleanly ([`server::Running::run_until_stopped`]).
/// Exit status 0 after a clean shutdown, 1 when the server failed, the shutdown could not
/// flush everything or a second signal cut it short.
async fn run_until_stopped(running: anyhow::Result<server::Running>, what: &str) -> i32 {
    let mut running = match running {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    println!("onecard {what} listening on http://{}", running.addr);
    match running.run_until_stopped().await {
        Ok(()) => {
            println!("stopped");
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Runs `onecard serve`.
pub async fn serve(args: ServeArgs) -> i32 {
    match load(args.config.as_ref()) {
        Ok(config) => run_until_stopped(server::serve(&config).await, "serve (catalog under /catalog)").await,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Runs `onecard gateway`.
pub async fn gateway(args: GatewayArgs) -> i32 {
    match load(args.config.as_ref()) {
        Ok(mut config) => {
            if let Some(url) = args.catalog {
                config.catalog.url = Some(url);
            }
            run_until_stopped(server::gateway(&config).await, "gateway").await
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
