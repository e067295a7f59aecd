//! `onecard audit verify`: how an operator or auditor checks that nobody altered the audit
//! trail. Exit 0 when every chain checked is intact, 1 when one is broken (the first broken
//! record is named), 2 when nothing could be checked (bad usage, missing database or chain).

use clap::Subcommand;
use onecard_audit::{AuditStore, VerifyReport, verify};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit hash chain and name the first broken record.
    Verify {
        /// The audit database: a SQLite file (single-process mode: the catalog's file) or a
        /// postgres:// URL.
        #[arg(long)]
        database: String,
        /// The chain (gateway id) to check; every chain in the database when omitted.
        #[arg(long)]
        chain: Option<String>,
    },
}

/// Runs the command; returns the exit code.
pub async fn run(cmd: AuditCommand) -> i32 {
    match cmd {
        AuditCommand::Verify { database, chain } => match verify_chains(&database, chain.as_deref()).await {
            Ok(reports) => {
                if reports.is_empty() {
                    println!("audit: no records in this database");
                }
                for report in &reports {
                    println!("{}", line(report));
                }
                i32::from(reports.iter().any(|r| r.first_broken.is_some()))
            }
            Err(message) => {
                eprintln!("error: {message}");
                2
            }
        },
    }
}

async fn verify_chains(database: &str, chain: Option<&str>) -> Result<Vec<VerifyReport>, String> {
    // A store needs a chain; which one does not matter until one is chosen below.
    let store = AuditStore::connect_existing(database, chain.unwrap_or("any")).await.map_err(|e| e.to_string())?;
    let present = store.chains().await.map_err(|e| e.to_string())?;
    let chains = match chain {
        Some(c) if !present.iter().any(|p| p == c) => {
            return Err(format!(
                "AUDIT_CHAIN_UNKNOWN: no records for chain {c:?}; chains in this database: {}",
                if present.is_empty() { "none".to_string() } else { present.join(", ") }
            ));
        }
        Some(c) => vec![c.to_string()],
        None => present,
    };
    let mut reports = Vec::with_capacity(chains.len());
    for c in chains {
        let store = store.for_chain(&c).map_err(|e| e.to_string())?;
        reports.push(verify(&store).await.map_err(|e| e.to_string())?);
    }
    Ok(reports)
}

fn line(report: &VerifyReport) -> String {
    match (&report.first_broken, &report.head) {
        (Some(b), _) => format!("audit chain {}: record {} (request {}) is broken: {}", report.chain, b.seq, b.request_id, b.reason),
        (None, Some(head)) => format!("audit chain {}: {} records intact, head {} {}", report.chain, report.records, head.seq, head.hash),
        (None, None) => format!("audit chain {}: 0 records intact, head none", report.chain),
    }
}
