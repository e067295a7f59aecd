//! `onecard card …`: mint a card credential token with an issuer key, and generate signing
//! keys (channel or issuer) with the public half printed in the catalog's form.
//!
//! Exit codes: 0 done, 1 an I/O failure while writing, 2 bad usage (unreadable or unusable key
//! file, invalid claims, an output file that already exists). Messages go to stderr.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};
use onecard_catalog::model::KeyAlgorithm;

use super::{CredentialClaims, IssuerSigningKey, MAX_VALIDITY_SECS, mint};
use crate::auth::keys::algorithm_name;
use crate::auth::{KeyFileError, SigningKeyFile};

/// `onecard card` subcommands.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Print a card credential token (the dynamic QR code's content) signed by an issuer key.
    Token {
        /// The issuer's private key file (Ed25519 or SM2).
        #[arg(long, value_name = "FILE")]
        issuer_key: PathBuf,
        /// The card reference (the catalog's `card_ref`).
        #[arg(long, value_name = "REF")]
        card: String,
        /// The six-digit issuing region.
        #[arg(long, value_name = "CODE")]
        region: String,
        /// Validity from now, seconds (1–60).
        #[arg(long, value_name = "N", default_value_t = MAX_VALIDITY_SECS,
              value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_VALIDITY_SECS)))]
        validity_secs: u8,
    },
    /// Generate a signing key: write the private key file, print the public half for the catalog.
    Keygen {
        /// The algorithm (issuer keys: ed25519 or sm2).
        #[arg(long, value_enum)]
        algorithm: AlgorithmArg,
        /// The key id (1–64 of a-z 0-9 - _ . starting with a letter or digit).
        #[arg(long, value_name = "ID")]
        key_id: String,
        /// Where to write the private key (never overwritten; mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Key algorithms on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmArg {
    /// Ed25519.
    Ed25519,
    /// SM2 (signer id 1234567812345678, DER signatures).
    Sm2,
    /// HMAC-SHA256 (a shared secret: channels only).
    #[value(alias = "hmac_sha256")]
    HmacSha256,
    /// HMAC-SM3 (a shared secret: channels only).
    #[value(alias = "hmac_sm3")]
    HmacSm3,
}

impl From<AlgorithmArg> for KeyAlgorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Ed25519 => KeyAlgorithm::Ed25519,
            AlgorithmArg::Sm2 => KeyAlgorithm::Sm2,
            AlgorithmArg::HmacSha256 => KeyAlgorithm::HmacSha256,
            AlgorithmArg::HmacSm3 => KeyAlgorithm::HmacSm3,
        }
    }
}

/// A failed command: its exit code and message.
#[derive(Debug)]
struct Failure(i32, String);

fn usage(message: impl ToString) -> Failure {
    Failure(2, message.to_string())
}

/// Runs a `card` subcommand; returns the exit code.
pub async fn run(cmd: CardCommand) -> i32 {
    let result = match cmd {
        CardCommand::Token { issuer_key, card, region, validity_secs } => {
            token(&issuer_key, &card, &region, validity_secs, SystemTime::now())
        }
        CardCommand::Keygen { algorithm, key_id, out } => keygen(algorithm.into(), &key_id, &out),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(Failure(code, message)) => {
            eprintln!("onecard card: {message}");
            code
        }
    }
}

fn token(issuer_key: &Path, card: &str, region: &str, validity_secs: u8, now: SystemTime) -> Result<String, Failure> {
    let key = IssuerSigningKey::read(issuer_key).map_err(usage)?;
    let now = now.duration_since(UNIX_EPOCH).map_err(|_| Failure(1, "the clock is before 1970".into()))?.as_secs();
    let claims = CredentialClaims::new(card, region, now, validity_secs);
    mint(&key, &claims).map_err(usage)
}

fn keygen(algorithm: KeyAlgorithm, key_id: &str, out: &Path) -> Result<String, Failure> {
    onecard_catalog::ids::validate_slug("key id", key_id).map_err(usage)?;
    let file = SigningKeyFile::generate(key_id, algorithm);
    file.write_new(out).map_err(|e| match &e {
        KeyFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            usage(format!("{} already exists: choose another --out (keys are never overwritten)", out.display()))
        }
        _ => Failure(1, e.to_string()),
    })?;
    tracing::info!(key_id, algorithm = algorithm_name(algorithm), path = %out.display(), "signing key written");
    Ok(catalog_snippet(&file, out))
}

/// The public half in the catalog's declarative TOML, valid from now for a year.
fn catalog_snippet(file: &SigningKeyFile, out: &Path) -> String {
    let now = onecard_catalog::model::now();
    let not_before = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let not_after = not_before + chrono::Duration::days(365);
    let algorithm = file.key.algorithm();
    let mut channel_key = file.channel_key(not_before, not_after);
    // A shared secret is not printed: it stays in the key file.
    channel_key.secret = None;
    let mut text = format!(
        "# Private key written to {}. Public half for the catalog (adjust the validity window):\n\n",
        out.display()
    );
    text.push_str("# as a key of a channel ([[channels]] entry):\n[[channels.keys]]\n");
    text.push_str(&toml::to_string(&channel_key).unwrap_or_default());
    if algorithm.is_symmetric() {
        text.push_str(&format!(
            "# secret = the private_key value of {} (a shared secret: hand it to the province over a secure path)\n",
            out.display()
        ));
    }
    if let Some(issuer_key) = file.issuer_key("CHANGE ME: who holds the key", not_before, not_after) {
        text.push_str("\n# or as an issuer trust anchor (signs card credentials):\n[[issuer_keys]]\n");
        text.push_str(&toml::to_string(&issuer_key).unwrap_or_default());
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use onecard_catalog::model::{ChannelKey, IssuerKey};

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: CardCommand,
    }

    #[test]
    fn arguments_parse_as_documented() {
        let cli = TestCli::try_parse_from(["t", "keygen", "--algorithm", "hmac-sm3", "--key-id", "k", "--out", "f"])
            .expect("parses");
        assert!(matches!(cli.cmd, CardCommand::Keygen { algorithm: AlgorithmArg::HmacSm3, .. }));
        let cli = TestCli::try_parse_from(["t", "token", "--issuer-key", "f", "--card", "c", "--region", "330100"])
            .expect("parses");
        assert!(matches!(cli.cmd, CardCommand::Token { validity_secs: 60, .. }));
        for bad in ["0", "61"] {
            let err = TestCli::try_parse_from([
                "t",
                "token",
                "--issuer-key",
                "f",
                "--card",
                "c",
                "--region",
                "330100",
                "--validity-secs",
                bad,
            ])
            .expect_err("out of range");
            assert_eq!(err.exit_code(), 2);
        }
        assert!(TestCli::try_parse_from(["t", "keygen", "--algorithm", "rsa", "--key-id", "k", "--out", "f"]).is_err());
    }

    fn table<T: serde::de::DeserializeOwned>(snippet: &str, header: &str) -> T {
        let start = snippet.find(header).expect("header") + header.len();
        let body: String = snippet[start..]
            .lines()
            .take_while(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        toml::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[test]
    fn keygen_then_token_verifies_against_the_printed_anchor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.toml");
        let snippet = keygen(KeyAlgorithm::Sm2, "hz-2026", &path).expect("keygen");
        let channel_key: ChannelKey = table(&snippet, "[[channels.keys]]\n");
        assert_eq!(channel_key.key_id, "hz-2026");
        let anchor: IssuerKey = table(&snippet, "[[issuer_keys]]\n");
        assert_eq!(Some(anchor.public_key.clone()), channel_key.public_key);

        let now = SystemTime::now();
        let token = token(&path, "abc123", "330199", 30, now).expect("token");
        let v = crate::credential::verify(&token, &[anchor], now, std::time::Duration::from_secs(5)).expect("verifies");
        assert_eq!(v.claims.card_ref, "abc123");
        assert_eq!(v.claims.region, "330199");
        assert_eq!(v.claims.validity_secs, 30);

        let again = keygen(KeyAlgorithm::Sm2, "hz-2026", &path).expect_err("exists");
        assert_eq!(again.0, 2, "{}", again.1);
    }

    #[test]
    fn hmac_keygen_never_prints_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("channel.toml");
        let snippet = keygen(KeyAlgorithm::HmacSha256, "gate-1", &path).expect("keygen");
        let file = SigningKeyFile::read(&path).expect("written");
        let secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, file.key.to_bytes().as_slice());
        assert!(!snippet.contains(&secret), "{snippet}");
        assert!(!snippet.contains("[[issuer_keys]]"));
        let channel_key: ChannelKey = table(&snippet, "[[channels.keys]]\n");
        assert_eq!(channel_key.algorithm, KeyAlgorithm::HmacSha256);
        // An HMAC key cannot mint credentials.
        let err = token(&path, "abc", "330100", 30, SystemTime::now()).expect_err("hmac");
        assert_eq!(err.0, 2, "{}", err.1);
    }

    #[test]
    fn usage_errors_exit_2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("none.toml");
        assert_eq!(token(&missing, "abc", "330100", 30, SystemTime::now()).expect_err("missing").0, 2);
        let path = dir.path().join("k.toml");
        keygen(KeyAlgorithm::Ed25519, "k", &path).expect("keygen");
        assert_eq!(token(&path, "abc", "3301", 30, SystemTime::now()).expect_err("region").0, 2);
        assert_eq!(keygen(KeyAlgorithm::Ed25519, "Bad Id", &dir.path().join("x.toml")).expect_err("id").0, 2);
    }
}
