//! What the city prints once it listens: where, the catalog, the admin token, and what to try
//! next — commands that work verbatim from the current directory.

use std::fmt::Write as _;

use crate::City;
use crate::calls::{PARK_GATES, issuer_key_file};
use crate::filing::FilingChange;
use crate::paths::{key_file, shown};

/// The start-up text for `city`.
pub fn banner(city: &City) -> String {
    let gw = &city.gateway_url;
    let mut s = String::new();
    let _ = writeln!(s, "\nonecard example city (杭州) is running\n");
    let _ = writeln!(s, "  gateway       {gw}   (POST /v1/apps/{{app}}/actions/{{action}}, /health, /metrics, /openapi.json)");
    let _ = writeln!(s, "  catalog API   {gw}/catalog   (e.g. GET /catalog/v1/admin/applications/parks with the admin token)");
    let _ = writeln!(s, "  sandbox       {}   (TEST DOUBLES of the fare system, insurance, bank, e-CNY operator)", city.sandbox_url);
    let _ = writeln!(s, "  database      {}", shown(std::path::Path::new(&city.config.database)));
    let _ = writeln!(s, "\n  admin token (province_admin, shown once; a new one replaces it at every start):\n    {}\n", city.admin_token);
    let _ = writeln!(s, "  applications (filed and online):");
    for f in &city.filed {
        let change = match &f.change {
            FilingChange::Unchanged => "unchanged".to_string(),
            FilingChange::First => "filed".to_string(),
            FilingChange::Replaced { previous } => format!("plugin changed: filed anew, filing #{previous} terminated"),
        };
        let _ = writeln!(s, "    {:9} filing #{} v{} sha256 {}…  ({change})", f.app, f.number, f.version, &f.sha256[..12]);
    }
    let _ = writeln!(s, "\n  test holders (card references for --card-ref):");
    for (name, h) in &city.holders {
        let _ = writeln!(s, "    {name:6} {}", h.card_ref);
    }
    let zhang = city.holders.get("zhang").map_or("<card ref>", |h| h.card_ref.as_str());
    let _ = writeln!(s, "\nTry next (in another terminal):\n");
    let _ = writeln!(s, "  # a park gate admits zhang (the venue client signs as channel {}):", PARK_GATES.id);
    let _ = writeln!(
        s,
        "  cargo run -q -p onecard-venue-client -- --gateway {gw} --channel {} --key-file {} \\\n      --issuer-key {} --card-ref {zhang} \\\n      --app parks --action enter --venue westlake-north-gate --terminal gate-01\n",
        PARK_GATES.id,
        shown(&key_file(PARK_GATES.key)),
        shown(&issuer_key_file()),
    );
    let canonical = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let data = if canonical(&city.data_dir) == canonical(&crate::paths::default_data_dir()) { String::new() } else { format!(" --data {}", shown(&city.data_dir)) };
    let _ = writeln!(s, "  # a morning in the city: park, metro, hospital, subsidy, e-CNY — every decision printed:");
    let _ = writeln!(s, "  cargo run -q -p onecard-city -- calls --gateway {gw}{data}\n");
    let _ = writeln!(s, "  # the audit trail's hash chain, checked record by record:");
    let _ = writeln!(s, "  cargo run -q -p onecard-gateway --bin onecard -- audit verify --database {}\n", shown(std::path::Path::new(&city.config.database)));
    let _ = writeln!(s, "  curl {gw}/health");
    let _ = writeln!(s, "  curl -H 'Authorization: Bearer {}' {gw}/catalog/v1/admin/applications/parks\n", city.admin_token);
    let _ = writeln!(s, "Ctrl-C stops the city; its catalog and audit trail stay in {} (delete it to start afresh).", shown(&city.data_dir));
    s
}
