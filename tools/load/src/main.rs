//! The `onecard-load` binary: parses the options, runs the load test, prints the table.
#![forbid(unsafe_code)]

use clap::Parser;
use onecard_load::{Options, OptionsError};

#[global_allocator]
static ALLOCATOR: onecard_gateway::Allocator = onecard_gateway::Allocator;

/// Drives the parks entry action with fresh signed requests and card tokens through the full
/// gateway and a native baseline, and prints throughput and latency percentiles. Build with
/// `--release`: a debug build measures the compiler, not the gateway.
#[derive(Debug, Parser)]
#[command(name = "onecard-load", version)]
struct Cli {
    #[command(flatten)]
    options: Options,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ONECARD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; its figures say nothing about the gateway");
    }
    match onecard_load::run(&cli.options) {
        Ok(report) => {
            println!("{report}");
            if report.errors() > 0 {
                eprintln!("error: LOAD_REQUESTS_FAILED: {} requests were not allowed (see the table)", report.errors());
                std::process::exit(1);
            }
        }
        Err(e) => {
            let code = e.downcast_ref::<OptionsError>().map_or("LOAD_FAILED", OptionsError::code);
            eprintln!("error: {code}: {e:#}");
            std::process::exit(2);
        }
    }
}
