//! `onecard-sandbox`: serve the TEST DOUBLES of the external systems (fare system, medical
//! insurance, bank, e-CNY operator) for demos and tests. Never point a real deployment at it.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use clap::Parser;

/// Test doubles of the systems onecard plugins reach: /fare, /insurance, /bank, /ecny.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (addr, server) = onecard_sandbox::spawn(args.listen).await?;
    println!("onecard-sandbox (TEST DOUBLES, not real backends) listening on http://{addr}");
    server.await.map_err(std::io::Error::other)
}
