//! The `onecard` binary.
use clap::Parser;

#[global_allocator]
static ALLOCATOR: onecard_gateway::Allocator = onecard_gateway::Allocator;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ONECARD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let code = onecard_gateway::cli::run(onecard_gateway::cli::Cli::parse()).await;
    std::process::exit(code);
}
