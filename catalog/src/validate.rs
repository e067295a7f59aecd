//! The rules a catalog must satisfy, checked on the whole catalog after every change.
//!
//! Each problem names its place (`grants[2] (3300000001/parks)`), so a refused `apply` or API
//! call tells the operator exactly what to fix. Nothing is written unless this passes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;

use crate::catalog::{Catalog, policy_key};
use crate::error::Error;
use crate::ids;
use crate::model::{
    Application, CardStatus, Capability, KeyAlgorithm, Limits, PolicyScope, SETTLEMENT_BACKEND, Timestamp,
};

/// One rule broken, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Section name, e.g. `grants`.
    pub section: &'static str,
    /// Index within the section.
    pub index: usize,
    /// Id of the entry, for the reader.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}] ({}): {}", self.section, self.index, self.id, self.message)
    }
}

/// Turns problems into one refusal listing them all.
pub fn refuse(problems: &[Problem], line_of: impl Fn(&Problem) -> Option<usize>) -> Error {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match line_of(p) {
            Some(line) => format!("line {line}: {p}"),
            None => p.to_string(),
        })
        .collect();
    Error::invalid(format!("the catalog was not changed: {}", lines.join("; ")))
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn at(&mut self, section: &'static str, index: usize, id: &str, message: impl Into<String>) {
        self.problems.push(Problem { section, index, id: id.into(), message: message.into() });
    }
    fn check(&mut self, section: &'static str, index: usize, id: &str, r: Result<(), String>) {
        if let Err(m) = r {
            self.at(section, index, id, m);
        }
    }
}

fn unique<'a>(
    ck: &mut Checker,
    section: &'static str,
    what: &str,
    keys: impl Iterator<Item = String> + 'a,
) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, k) in keys.enumerate() {
        if let Some(first) = seen.get(&k) {
            ck.at(section, i, &k, format!("duplicate {what} {k} (also {section}[{first}])"));
        } else {
            seen.insert(k, i);
        }
    }
}

fn window(not_before: &Timestamp, not_after: &Timestamp) -> Result<(), String> {
    if not_before < not_after {
        Ok(())
    } else {
        Err("not_before must be earlier than not_after".into())
    }
}

fn decode_b64(what: &str, s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| format!("{what} is not valid base64"))
}

/// Checks an asymmetric public key's encoding for `algorithm` (`ed25519` or `sm2`).
fn check_public_key(sm2: bool, key: &str) -> Result<(), String> {
    let bytes = decode_b64("public_key", key)?;
    if sm2 {
        match (bytes.len(), bytes.first()) {
            (65, Some(4)) | (33, Some(2 | 3)) => Ok(()),
            _ => Err("an SM2 public key is a SEC1 point: 65 bytes starting 04, or 33 starting 02/03".into()),
        }
    } else if bytes.len() == 32 {
        ed25519_dalek::VerifyingKey::try_from(bytes.as_slice())
            .map(|_| ())
            .map_err(|_| "the Ed25519 public key is not a valid point".into())
    } else {
        Err("an Ed25519 public key is 32 bytes".into())
    }
}

/// The highest number of key windows that contain one instant.
fn max_overlap(windows: &[(Timestamp, Timestamp)]) -> usize {
    windows
        .iter()
        .map(|(start, _)| windows.iter().filter(|(s, e)| s <= start && start < e).count())
        .max()
        .unwrap_or(0)
}

/// Validates the catalog. `card_known` says whether a card reference exists outside the file.
pub fn validate(c: &Catalog, card_known: &dyn Fn(&str) -> bool) -> Result<(), Vec<Problem>> {
    let mut ck = Checker { problems: Vec::new() };
    let provinces: BTreeSet<&str> = c.provinces.iter().map(|p| p.code.as_str()).collect();
    let cities: BTreeSet<&str> = c.cities.iter().map(|p| p.code.as_str()).collect();

    unique(&mut ck, "provinces", "province code", c.provinces.iter().map(|p| p.code.clone()));
    for (i, p) in c.provinces.iter().enumerate() {
        ck.check("provinces", i, &p.code, ids::validate_province_code(&p.code));
    }
    unique(&mut ck, "cities", "city code", c.cities.iter().map(|p| p.code.clone()));
    for (i, city) in c.cities.iter().enumerate() {
        ck.check("cities", i, &city.code, ids::validate_city_code(&city.code));
        if !provinces.contains(city.province()) {
            ck.at("cities", i, &city.code, format!("province {} does not exist", city.province()));
        }
    }
    unique(&mut ck, "departments", "department id", c.departments.iter().map(|d| d.id.clone()));
    for (i, d) in c.departments.iter().enumerate() {
        ck.check("departments", i, &d.id, ids::validate_slug("department id", &d.id));
        if !cities.contains(d.city.as_str()) {
            ck.at("departments", i, &d.id, format!("city {} does not exist", d.city));
        }
    }
    unique(&mut ck, "applications", "application id", c.applications.iter().map(|a| a.id.clone()));
    for (i, a) in c.applications.iter().enumerate() {
        check_application(&mut ck, c, i, a);
    }
    unique(&mut ck, "channels", "channel id", c.channels.iter().map(|x| x.id.clone()));
    for (i, ch) in c.channels.iter().enumerate() {
        ck.check("channels", i, &ch.id, ids::validate_channel_id(&ch.id));
        if ch.id.len() >= 2 && !provinces.contains(&ch.id[..2]) {
            ck.at("channels", i, &ch.id, format!("province prefix {} does not exist", &ch.id[..2]));
        }
        if ch.name.trim().is_empty() {
            ck.at("channels", i, &ch.id, "name is empty");
        }
        let mut key_ids = BTreeSet::new();
        for k in &ch.keys {
            let place = format!("key {}: ", k.key_id);
            if !key_ids.insert(k.key_id.as_str()) {
                ck.at("channels", i, &ch.id, format!("duplicate key id {}", k.key_id));
            }
            ck.check("channels", i, &ch.id, ids::validate_slug("key id", &k.key_id));
            ck.check("channels", i, &ch.id, window(&k.not_before, &k.not_after).map_err(|e| place.clone() + &e));
            let material = if k.algorithm.is_symmetric() {
                match (&k.secret, &k.public_key) {
                    (_, Some(_)) => Err("an HMAC key has a secret, not a public_key".to_string()),
                    (None, None) => Err("an HMAC key needs its secret (base64)".to_string()),
                    (Some(s), None) => decode_b64("secret", s).and_then(|b| {
                        if b.len() >= 16 { Ok(()) } else { Err("an HMAC secret has at least 16 bytes".into()) }
                    }),
                }
            } else {
                match (&k.public_key, &k.secret) {
                    (_, Some(_)) => Err("an asymmetric key has a public_key, not a secret".to_string()),
                    (None, None) => Err("public_key is missing".to_string()),
                    (Some(pk), None) => check_public_key(k.algorithm == KeyAlgorithm::Sm2, pk),
                }
            };
            ck.check("channels", i, &ch.id, material.map_err(|e| place.clone() + &e));
        }
        let windows: Vec<_> = ch.keys.iter().map(|k| (k.not_before, k.not_after)).collect();
        if max_overlap(&windows) > 2 {
            ck.at("channels", i, &ch.id, "more than two keys are valid at the same time (two may be live during rotation)");
        }
    }
    unique(&mut ck, "grants", "grant", c.grants.iter().map(|g| g.key()));
    for (i, g) in c.grants.iter().enumerate() {
        let id = g.key();
        if c.channel(&g.channel).is_none() {
            ck.at("grants", i, &id, format!("channel {} does not exist", g.channel));
        }
        match c.application(&g.application) {
            None => ck.at("grants", i, &id, format!("application {} does not exist", g.application)),
            Some(app) => {
                if g.actions.is_empty() {
                    ck.at("grants", i, &id, "actions is empty");
                }
                let known: BTreeSet<&str> = app
                    .filings
                    .iter()
                    .flat_map(|f| f.manifest.actions.iter().map(|a| a.name.as_str()))
                    .collect();
                for action in &g.actions {
                    if !known.contains(action.as_str()) {
                        ck.at("grants", i, &id, format!("application {} has no action {action}", g.application));
                    }
                }
            }
        }
        ck.check("grants", i, &id, window(&g.not_before, &g.not_after));
    }
    unique(&mut ck, "venues", "venue id", c.venues.iter().map(|v| v.id.clone()));
    for (i, v) in c.venues.iter().enumerate() {
        ck.check("venues", i, &v.id, ids::validate_slug("venue id", &v.id));
        if c.application(&v.application).is_none() {
            ck.at("venues", i, &v.id, format!("application {} does not exist", v.application));
        }
        if let Some(op) = &v.operator_channel
            && c.channel(op).is_none()
        {
            ck.at("venues", i, &v.id, format!("operator channel {op} does not exist"));
        }
        if v.terminals.iter().any(|t| t.trim().is_empty()) {
            ck.at("venues", i, &v.id, "a terminal id is empty");
        }
    }
    check_policies(&mut ck, c);
    unique(&mut ck, "issuer_keys", "key id", c.issuer_keys.iter().map(|k| k.key_id.clone()));
    for (i, k) in c.issuer_keys.iter().enumerate() {
        ck.check("issuer_keys", i, &k.key_id, ids::validate_slug("key id", &k.key_id));
        ck.check("issuer_keys", i, &k.key_id, window(&k.not_before, &k.not_after));
        ck.check(
            "issuer_keys",
            i,
            &k.key_id,
            check_public_key(k.algorithm == crate::model::IssuerAlgorithm::Sm2, &k.public_key),
        );
    }
    unique(&mut ck, "cards", "card", c.cards.iter().map(|x| x.card_ref.clone()));
    for (i, card) in c.cards.iter().enumerate() {
        let id = &card.card_ref;
        ck.check("cards", i, id, ids::validate_sha256_hex(&card.card_ref).map_err(|_| "card_ref is not a card reference (64 hex) nor ssn:<ID number>".to_string()));
        ck.check("cards", i, id, ids::validate_card_id_code(&card.card_id_code));
        ck.check("cards", i, id, ids::validate_region_code(&card.issuing_region));
        if card.card_number.trim().is_empty() {
            ck.at("cards", i, id, "card_number is empty");
        }
    }
    let file_cards: BTreeSet<&str> = c.cards.iter().map(|x| x.card_ref.as_str()).collect();
    unique(&mut ck, "consents", "consent id", c.consents.iter().map(|x| x.id.clone()));
    for (i, co) in c.consents.iter().enumerate() {
        ck.check("consents", i, &co.id, ids::validate_slug("consent id", &co.id));
        ck.check("consents", i, &co.id, window(&co.not_before, &co.not_after));
        if !file_cards.contains(co.card_ref.as_str()) && !card_known(&co.card_ref) {
            ck.at("consents", i, &co.id, "the holder's card is not in the registry");
        }
        if c.channel(&co.channel).is_none() {
            ck.at("consents", i, &co.id, format!("channel {} does not exist", co.channel));
        }
        ck.check("consents", i, &co.id, check_consent_scopes(c, &co.application, &co.scopes));
    }
    if ck.problems.is_empty() { Ok(()) } else { Err(ck.problems) }
}

fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(has_null),
        serde_json::Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// Checks that `application` exists and `scopes` are among its data scopes.
pub fn check_consent_scopes(c: &Catalog, application: &str, scopes: &BTreeSet<String>) -> Result<(), String> {
    let Some(app) = c.application(application) else {
        return Err(format!("application {application} does not exist"));
    };
    if scopes.is_empty() {
        return Err("scopes is empty".into());
    }
    let known: BTreeSet<&str> = app
        .current_filing()
        .map(|f| f.manifest.data_scopes.iter().map(String::as_str).collect())
        .unwrap_or_default();
    match scopes.iter().find(|s| !known.contains(s.as_str())) {
        Some(s) => Err(format!("application {application} does not read data scope {s}")),
        None => Ok(()),
    }
}

fn check_application(ck: &mut Checker, c: &Catalog, i: usize, a: &Application) {
    let s = "applications";
    ck.check(s, i, &a.id, ids::validate_slug("application id", &a.id));
    if a.name.trim().is_empty() {
        ck.at(s, i, &a.id, "name is empty");
    }
    if a.scenario.trim().is_empty() {
        ck.at(s, i, &a.id, "scenario is empty");
    }
    if c.department(&a.department).is_none() {
        ck.at(s, i, &a.id, format!("department {} does not exist", a.department));
    }
    if !a.config.is_object() {
        ck.at(s, i, &a.id, "config must be a table/object");
    }
    if has_null(&a.config) {
        ck.at(s, i, &a.id, "config contains null, which the declarative TOML cannot hold; leave the key out");
    }
    let mut numbers = BTreeSet::new();
    for f in &a.filings {
        let place = format!("filing {}: ", f.number);
        if f.number == 0 || !numbers.insert(f.number) {
            ck.at(s, i, &a.id, format!("{place}filing numbers start at 1 and are unique"));
        }
        ck.check(s, i, &a.id, ids::validate_sha256_hex(&f.sha256).map_err(|e| place.clone() + &e));
        let m = &f.manifest;
        if m.version.trim().is_empty() {
            ck.at(s, i, &a.id, format!("{place}manifest version is empty"));
        }
        ck.check(s, i, &a.id, ids::validate_slug("plugin id", &m.plugin).map_err(|e| place.clone() + &e));
        if m.actions.is_empty() {
            ck.at(s, i, &a.id, format!("{place}the manifest declares no action"));
        }
        let mut names = BTreeSet::new();
        for action in &m.actions {
            if !names.insert(action.name.as_str()) {
                ck.at(s, i, &a.id, format!("{place}duplicate action {}", action.name));
            }
            ck.check(s, i, &a.id, ids::validate_slug("action name", &action.name).map_err(|e| place.clone() + &e));
            if has_null(&action.params_schema) {
                ck.at(s, i, &a.id, format!("{place}action {}: params_schema contains null, which TOML cannot hold", action.name));
            }
            if !action.params_schema.is_object() {
                ck.at(s, i, &a.id, format!("{place}action {}: params_schema must be a JSON Schema object", action.name));
            }
            for scope in &action.scopes {
                if !m.data_scopes.contains(scope) {
                    ck.at(s, i, &a.id, format!("{place}action {} reads scope {scope} not among data_scopes", action.name));
                }
            }
        }
        for cap in &f.capabilities {
            if !m.capabilities.contains(cap) {
                ck.at(s, i, &a.id, format!("{place}capability {cap:?} is granted but the manifest does not ask for it"));
            }
        }
        // The backend named `settlement` is the payments capability's settlement port (the
        // gateway's `SETTLEMENT_BACKEND`); every other backend is reached by `http`.
        for name in f.backends.keys() {
            let (needed, what) = if name == SETTLEMENT_BACKEND { (Capability::Payments, "payments") } else { (Capability::Http, "http") };
            if !f.capabilities.contains(&needed) {
                ck.at(s, i, &a.id, format!("{place}backend {name} is declared but the {what} capability is not granted"));
            }
        }
        for (name, url) in &f.backends {
            ck.check(s, i, &a.id, ids::validate_slug("backend name", name).map_err(|e| place.clone() + &e));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                ck.at(s, i, &a.id, format!("{place}backend {name}: {url:?} is not an http(s) URL"));
            }
        }
    }
    if a.filings.iter().filter(|f| f.state.is_live()).count() > 1 {
        ck.at(s, i, &a.id, "more than one filing is online or suspended");
    }
    if let Some(f) = a.current_filing() {
        for (action, policy) in &a.card_status_policy {
            let Some(spec) = f.manifest.action(action) else {
                ck.at(s, i, &a.id, format!("card_status_policy names action {action} the current filing does not expose"));
                continue;
            };
            if policy.allow.iter().any(|st| st.is_final()) {
                ck.at(s, i, &a.id, format!("card_status_policy.{action}: formal_loss and cancelled cards are never allowed"));
            }
            if policy.allow.is_empty() {
                ck.at(s, i, &a.id, format!("card_status_policy.{action}: allow is empty"));
            }
            if spec.moves_money
                && (policy.allow != BTreeSet::from([CardStatus::Normal]) || !policy.financial_account_unlocked)
            {
                ck.at(s, i, &a.id, format!("card_status_policy.{action}: a money-moving action needs allow = [\"normal\"] and financial_account_unlocked = true"));
            }
        }
    } else if !a.card_status_policy.is_empty() {
        ck.at(s, i, &a.id, "card_status_policy given but the application has no filing");
    }
}

/// The level above `scope`, if any.
pub fn parent_scope(c: &Catalog, scope: &PolicyScope) -> Option<PolicyScope> {
    match scope {
        PolicyScope::Province(_) => None,
        PolicyScope::City(city) => Some(PolicyScope::Province(city.get(..2)?.to_string())),
        PolicyScope::Application(app) => {
            let dept = c.department(&c.application(app)?.department)?;
            Some(PolicyScope::City(dept.city.clone()))
        }
        PolicyScope::Channel { application, .. } | PolicyScope::Holder { application, .. } => {
            Some(PolicyScope::Application(application.clone()))
        }
        PolicyScope::Venue(v) => {
            let venue = c.venue(v)?;
            Some(match &venue.operator_channel {
                Some(ch) => PolicyScope::Channel { application: venue.application.clone(), channel: ch.clone() },
                None => PolicyScope::Application(venue.application.clone()),
            })
        }
    }
}

/// The limits in force at `scope`: every level from the province down, each tightening.
pub fn effective_limits(c: &Catalog, scope: &PolicyScope) -> Limits {
    let own: BTreeMap<String, Limits> = c.policies.iter().map(|p| (policy_key(p), p.limits())).collect();
    let mut chain = vec![scope.clone()];
    while let Some(parent) = parent_scope(c, chain.last().expect("non-empty")) {
        chain.push(parent);
    }
    chain.iter().rev().fold(Limits::default(), |acc, s| {
        let key = policy_key(&crate::model::Policy::new(s.clone(), Limits::default()));
        acc.tightened_by(own.get(&key).unwrap_or(&Limits::default()))
    })
}

fn check_policies(ck: &mut Checker, c: &Catalog) {
    let s = "policies";
    unique(ck, s, "policy for", c.policies.iter().map(policy_key));
    for (i, p) in c.policies.iter().enumerate() {
        let scope = match p.scope() {
            Ok(scope) => scope,
            Err(e) => {
                ck.at(s, i, "?", e);
                continue;
            }
        };
        let id = scope.to_string();
        let exists = match &scope {
            PolicyScope::Province(x) => c.provinces.iter().any(|p| &p.code == x),
            PolicyScope::City(x) => c.cities.iter().any(|p| &p.code == x),
            PolicyScope::Application(x) => c.application(x).is_some(),
            PolicyScope::Channel { application, channel } => {
                c.application(application).is_some() && c.channel(channel).is_some()
            }
            PolicyScope::Venue(x) => c.venue(x).is_some(),
            PolicyScope::Holder { application, card_ref } => {
                c.application(application).is_some() && ids::validate_sha256_hex(card_ref).is_ok()
            }
        };
        if !exists {
            ck.at(s, i, &id, format!("{id} does not exist"));
            continue;
        }
        let limits = p.limits();
        if limits.is_empty() {
            ck.at(s, i, &id, "sets no limit");
        }
        if limits.fields().iter().any(|(_, v)| *v == Some(0)) {
            ck.at(s, i, &id, "a limit of 0 is not a rate; suspend the channel or application instead");
        }
        if let Some(parent) = parent_scope(c, &scope) {
            let above = effective_limits(c, &parent);
            for (field, own, theirs) in limits.looser_than(&above) {
                ck.at(
                    s,
                    i,
                    &id,
                    format!(
                        "{field} = {own} is looser than {theirs} in force above it ({parent}); \
                         a lower level may tighten a limit, never loosen it"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settlement_backend_needs_payments_and_others_need_http() {
        let mut c = crate::declarative::parse(crate::testing::EXAMPLE).expect("example");
        // The registry's `ssn:` references are resolved by `apply`, not here.
        c.cards.clear();
        c.consents.clear();
        validate(&c, &|_| true).expect("the example is valid");
        let subsidy = c.application_mut("subsidy").expect("subsidy").filings.get_mut(0).expect("filing");
        assert!(!subsidy.capabilities.contains(&Capability::Http) && subsidy.capabilities.contains(&Capability::Payments));
        subsidy.backends.insert("settlement".into(), "http://127.0.0.1:7301/bank".into());
        validate(&c, &|_| true).expect("payments without http may name its settlement port");
        let subsidy = c.application_mut("subsidy").expect("subsidy").filings.get_mut(0).expect("filing");
        subsidy.backends.insert("registry".into(), "http://127.0.0.1:7301/x".into());
        let problems = validate(&c, &|_| true).expect_err("http backend without http");
        assert!(problems.iter().any(|p| p.message.contains("backend registry is declared but the http capability is not granted")), "{problems:?}");
        let subsidy = c.application_mut("subsidy").expect("subsidy").filings.get_mut(0).expect("filing");
        subsidy.backends.remove("registry");
        subsidy.capabilities.remove(&Capability::Payments);
        let problems = validate(&c, &|_| true).expect_err("settlement without payments");
        assert!(problems.iter().any(|p| p.message.contains("backend settlement is declared but the payments capability")), "{problems:?}");
    }

    #[test]
    fn overlap_counts_windows_live_at_once() {
        let t = |s: &str| s.parse::<Timestamp>().expect("ts");
        let a = (t("2025-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"));
        let b = (t("2025-12-01T00:00:00Z"), t("2027-01-01T00:00:00Z"));
        let c = (t("2025-12-15T00:00:00Z"), t("2028-01-01T00:00:00Z"));
        assert_eq!(max_overlap(&[a, b]), 2);
        assert_eq!(max_overlap(&[a, b, c]), 3);
        let d = (t("2026-01-01T00:00:00Z"), t("2028-01-01T00:00:00Z"));
        assert_eq!(max_overlap(&[a, d]), 1);
    }

    /// A catalog with one online application filed with `capabilities` and `backends`.
    fn filed(capabilities: &str, backends: &str) -> Catalog {
        let sha = "a".repeat(64);
        crate::declarative::parse(&format!(
            r#"
[[provinces]]
code = "33"
name = "浙江省"

[[cities]]
code = "3301"
name = "杭州市"

[[departments]]
id = "hz-civil"
name = "杭州市民政局"
city = "3301"

[[applications]]
id = "subsidy"
name = "补贴发放"
scenario = "subsidy"
department = "hz-civil"

[[applications.filings]]
number = 1
state = "online"
sha256 = "{sha}"
capabilities = {capabilities}
backends = {backends}
manifest = {{ plugin = "subsidy", version = "1.0.0", capabilities = ["http", "kv", "payments"], actions = [{{ name = "status" }}] }}
"#
        ))
        .expect("parses")
    }

    fn problems(c: &Catalog) -> Vec<String> {
        validate(c, &|_| true).err().unwrap_or_default().into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn the_settlement_backend_needs_payments_and_the_others_need_http() {
        let bank = r#"{ settlement = "http://127.0.0.1:8088/bank" }"#;
        let both = r#"{ settlement = "http://127.0.0.1:8088/bank", fares = "http://127.0.0.1:8088/fare" }"#;
        assert_eq!(problems(&filed(r#"["kv", "payments"]"#, bank)), Vec::<String>::new(), "payments alone reach the settlement port");
        assert_eq!(problems(&filed(r#"["http", "kv", "payments"]"#, both)), Vec::<String>::new());
        let no_http = problems(&filed(r#"["kv", "payments"]"#, both));
        assert!(no_http.len() == 1 && no_http[0].contains("http capability is not granted"), "{no_http:?}");
        let no_payments = problems(&filed(r#"["http", "kv"]"#, bank));
        assert!(no_payments.len() == 1 && no_payments[0].contains("payments capability is not granted"), "{no_payments:?}");
    }
}
