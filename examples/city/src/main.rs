//! `onecard-city`: start the example city (the default), or play the sample calls against a
//! running one (`onecard-city calls`). Exit status 0, 1 when a sample call went otherwise than
//! expected, 2 when the city could not start or the calls could not be made.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use onecard_city::{CityError, CityOptions, calls, paths};

/// The example city: the five applications filed and online, the sandbox test doubles, and
/// `onecard serve` — then what to try next.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The gateway configuration.
    #[arg(long, global = true, default_value_os_t = paths::config_file())]
    config: PathBuf,
    /// The data folder (catalog database, holder data, card references). Default: the
    /// configuration's, `.onecard/` at the repository root.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// Overrides the configuration's listen address.
    #[arg(long)]
    listen: Option<String>,
    /// Where the sandbox test doubles listen (the filed backends name this address).
    #[arg(long, default_value = onecard_city::sandbox::DEFAULT_LISTEN)]
    sandbox_listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play the sample calls against a running city through the venue client.
    Calls {
        /// The gateway.
        #[arg(long, default_value = "http://127.0.0.1:7300")]
        gateway: String,
    },
}

async fn serve(args: Args) -> Result<ExitCode, CityError> {
    let options = CityOptions { config: args.config, data_dir: args.data, listen: args.listen, sandbox_listen: args.sandbox_listen };
    println!("starting the example city: filing the plugins, starting the sandbox and the gateway…");
    let mut city = onecard_city::start(&options).await?;
    println!("{}", onecard_city::banner::banner(&city));
    city.running.run_until_stopped().await.map_err(|e| CityError::Serve(format!("{e:#}")))?;
    Ok(ExitCode::SUCCESS)
}

async fn play(args: Args, gateway: String) -> Result<ExitCode, CityError> {
    let options = CityOptions { config: args.config, data_dir: args.data, ..CityOptions::default() };
    let data_dir = onecard_city::city::data_dir(&options)?;
    let cards = onecard_city::city::read_card_refs(&data_dir)?;
    println!("a morning in the city, against {gateway}:\n");
    let steps = calls::run(&calls::Setup { gateway, cards }, &mut |step| println!("{}", calls::describe(step))).await?;
    let off: Vec<_> = steps.iter().filter(|s| !s.as_expected()).collect();
    if off.is_empty() {
        let database = paths::shown(&data_dir.join("city.db"));
        println!("all {} calls decided as expected. The audit trail: cargo run -q -p onecard-gateway --bin onecard -- audit verify --database {database}", steps.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} of {} calls were decided otherwise than expected (see ✘ above)", off.len(), steps.len());
        Ok(ExitCode::from(1))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())).init();
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Calls { gateway }) => {
            let gateway = gateway.clone();
            play(args, gateway).await
        }
        None => serve(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("error {}: {e}", e.code());
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["onecard-city", "calls", "--data", "/tmp/d"]).expect("calls");
        assert!(matches!(args.command, Some(Command::Calls { ref gateway }) if gateway == "http://127.0.0.1:7300"));
        assert_eq!(args.data, Some(PathBuf::from("/tmp/d")));
        assert!(Args::try_parse_from(["onecard-city", "--sandbox-listen", "nowhere"]).is_err());
    }
}
