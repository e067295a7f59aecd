//! The `onecard` command line (clap): one subcommand module per area.

mod plugin;
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
    /// Inspect, run and build plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Exit codes: 0 success, 1 the action was refused or failed, 2 bad usage or an unusable plugin.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd).await,
    }
}
