//! The `onecard` command line (clap): one subcommand module per area.

mod audit;
mod plugin;
mod plugin_build;
mod plugin_new;
mod serve;
mod time;

use clap::{Parser, Subcommand};

/// onecard — the integration gateway of the resident service card ("one card for all").
#[derive(Debug, Parser)]
#[command(name = "onecard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write plugins: create a crate, build and check the component, inspect it, run its actions locally.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The province catalog: initialise, apply and export declarative TOML, serve the admin API.
    #[command(subcommand)]
    Catalog(Box<onecard_catalog::cli::CatalogCommand>),
    /// Card credentials for tests and demos: mint a QR token, generate keys.
    #[command(subcommand)]
    Card(crate::credential::cli::CardCommand),
    /// Run the catalog and the gateway in one process on one database (the default way).
    Serve(serve::ServeArgs),
    /// Run a gateway alone against a catalog server.
    Gateway(serve::GatewayArgs),
    /// The audit trail: verify its hash chain.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Exit codes: 0 success, 1 the action was refused or failed, 2 bad usage or an unusable plugin.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Card(cmd) => crate::credential::cli::run(cmd).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Gateway(args) => serve::gateway(args).await,
        Command::Audit(cmd) => audit::run(cmd).await,
        Command::Catalog(cmd) => match onecard_catalog::cli::run(*cmd).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                if matches!(e, onecard_catalog::cli::CliError::Usage(_)) { 2 } else { 1 }
            }
        },
    }
}
