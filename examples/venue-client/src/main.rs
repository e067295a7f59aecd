//! `onecard-venue-client`: one signed call to the onecard gateway, the decision printed.
//! Exit status: 0 allowed, 1 refused, 2 the call could not be made (bad input, no gateway).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use onecard_venue_client::{ClientError, DemoIssuer, Invoke, VenueClient};

/// Sign a request as a channel, send a scanned card token, print the decision.
///
/// Example (the example city, `cargo run -p onecard-city`):
///   onecard-venue-client --gateway http://127.0.0.1:7300 --channel 3300000001
///     --key-file examples/city/keys/park-gates.toml --app parks --action enter
///     --venue westlake-north-gate --terminal gate-01
///     --issuer-key examples/city/keys/card-issuer.toml --card-ref <card ref>
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, verbatim_doc_comment)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, env = "ONECARD_GATEWAY", default_value = "http://127.0.0.1:7300")]
    gateway: String,
    /// The channel number (渠道编号, ten digits) this venue calls as.
    #[arg(long)]
    channel: String,
    /// The channel's signing key file (TOML: key_id, algorithm, private_key).
    #[arg(long)]
    key_file: PathBuf,
    /// The application (catalog id), e.g. `parks`.
    #[arg(long)]
    app: String,
    /// The action, e.g. `enter`.
    #[arg(long)]
    action: String,
    /// The scanned card token (the electronic card's dynamic QR code).
    #[arg(long, conflicts_with = "card_ref")]
    token: Option<String>,
    /// Demo only: mint a fresh token for this card reference with `--issuer-key` (a real venue
    /// scans the token instead).
    #[arg(long, requires = "issuer_key")]
    card_ref: Option<String>,
    /// Demo only: the test issuer key file that mints the `--card-ref` token.
    #[arg(long)]
    issuer_key: Option<PathBuf>,
    /// Issuing region of the demo token's card (six digits).
    #[arg(long, default_value = "330100")]
    region: String,
    /// The venue (catalog venue id).
    #[arg(long)]
    venue: Option<String>,
    /// The terminal (gate, counter) that read the card.
    #[arg(long)]
    terminal: Option<String>,
    /// The action's parameters, a JSON object.
    #[arg(long, default_value = "{}")]
    params: String,
    /// Idempotency key (default: a fresh random one). Send the same key to retry safely.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// A check this channel did on the holder (`real_person`: face match with liveness).
    #[arg(long)]
    verified: Vec<String>,
}

async fn run(args: Args) -> Result<onecard_venue_client::Decision, ClientError> {
    let params = serde_json::from_str(&args.params).map_err(|e| ClientError::Input(format!("--params is not JSON: {e}")))?;
    let credential = match (&args.token, &args.card_ref, &args.issuer_key) {
        (Some(token), _, _) => Some(token.clone()),
        (None, Some(card_ref), Some(issuer)) => Some(DemoIssuer::from_key_file(issuer)?.token(card_ref, &args.region, 30)?),
        _ => None,
    };
    let client = VenueClient::from_key_file(&args.gateway, &args.channel, &args.key_file)?;
    let call = Invoke {
        credential,
        params,
        idempotency_key: Some(args.idempotency_key.unwrap_or_else(onecard_gateway::auth::random_nonce)),
        venue: args.venue,
        terminal: args.terminal,
        verified: args.verified,
    };
    client.invoke(&args.app, &args.action, &call).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(decision) => {
            println!("{decision}");
            if decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("error {}: {e}", e.code());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
        let base = ["x", "--channel", "3300000001", "--key-file", "k.toml", "--app", "parks", "--action", "enter"];
        assert!(Args::try_parse_from(base).is_ok());
        let with = |extra: &[&str]| Args::try_parse_from(base.iter().chain(extra)).map(|_| ());
        assert!(with(&["--card-ref", "abc"]).is_err(), "a demo token needs the issuer key");
        assert!(with(&["--token", "t", "--card-ref", "abc", "--issuer-key", "i.toml"]).is_err(), "one credential");
        assert!(with(&["--verified", "real_person", "--verified", "x"]).is_ok());
    }
}
