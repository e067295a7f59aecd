//! The sample calls: a morning in the city against a running gateway, each call made through
//! the venue client as the channel that would make it — the park gates, the metro gates and the
//! operator's fare scheduler, the hospital counter, the finance bureau's subsidy system, a bank
//! app. Card tokens are minted with the test issuer key (a real venue scans them).
//!
//! Each [`Step`] says what it expects; [`run`] reports every decision, and which steps did not
//! go as expected.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use onecard_venue_client::{Decision, DemoIssuer, Invoke, VenueClient};
use serde_json::{Value, json};

use crate::{CityError, paths};

/// A channel of the example city and its test key file (`examples/city/keys/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// Channel number.
    pub id: &'static str,
    /// Key file name under `keys/`.
    pub key: &'static str,
}

/// 西湖景区闸机运营: the park gates.
pub const PARK_GATES: Channel = Channel { id: "3300000001", key: "park-gates" };
/// 杭州地铁闸机: the metro gates and the operator's fare scheduler.
pub const METRO: Channel = Channel { id: "3300000011", key: "metro-gates" };
/// 浙大一院收费窗口: the hospital counters.
pub const HOSPITAL: Channel = Channel { id: "3300000021", key: "hospital-counters" };
/// 杭州市财政局补贴发放系统: the finance bureau.
pub const FINANCE: Channel = Channel { id: "3300000031", key: "finance-bureau" };
/// 某银行手机银行: a bank app.
pub const BANK_APP: Channel = Channel { id: "3300000041", key: "bank-app" };

/// The test issuer key file.
pub fn issuer_key_file() -> PathBuf {
    paths::key_file("card-issuer")
}

/// What the sample calls need.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `http://host:port` of the gateway.
    pub gateway: String,
    /// Card references by holder name.
    pub cards: BTreeMap<String, String>,
}

/// One sample call and its decision.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the call does, for people.
    pub title: String,
    /// Application.
    pub app: String,
    /// Action.
    pub action: String,
    /// The decision the city expects.
    pub expect: Expect,
    /// The gateway's decision.
    pub decision: Decision,
}

/// What a sample call should be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Allowed.
    Allowed,
    /// Refused with this code.
    Refused(&'static str),
    /// Allowed the first time; refused with this code when the calls are played again against
    /// the same running city (e.g. a wallet already opened).
    AllowedOnce(&'static str),
}

impl Step {
    /// Whether the decision is the expected one.
    pub fn as_expected(&self) -> bool {
        match self.expect {
            Expect::Allowed => self.decision.allowed(),
            Expect::Refused(code) => self.decision.code() == Some(code),
            Expect::AllowedOnce(code) => self.decision.allowed() || self.decision.code() == Some(code),
        }
    }
}

struct Caller<'a> {
    setup: &'a Setup,
    issuer: DemoIssuer,
    clients: BTreeMap<&'static str, VenueClient>,
    steps: Vec<Step>,
    run_id: String,
    report: &'a mut dyn FnMut(&Step),
}

impl Caller<'_> {
    fn token(&self, holder: &str) -> Result<String, CityError> {
        let card = self.setup.cards.get(holder).ok_or_else(|| CityError::Holders(format!("no test holder {holder}")))?;
        self.issuer.token(card, "330100", 30).map_err(|source| CityError::Call { step: format!("token for {holder}"), source })
    }

    fn card(&self, holder: &str) -> String {
        self.setup.cards.get(holder).cloned().unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        title: &str,
        channel: Channel,
        app: &str,
        action: &str,
        holder: Option<&str>,
        place: Option<(&str, &str)>,
        params: Value,
        expect: Expect,
    ) -> Result<Decision, CityError> {
        let credential = holder.map(|h| self.token(h)).transpose()?;
        let call = Invoke {
            credential,
            params,
            idempotency_key: Some(format!("{}-{}-{}", self.run_id, action, self.steps.len())),
            venue: place.map(|p| p.0.to_string()),
            terminal: place.map(|p| p.1.to_string()),
            verified: if matches!((app, action), ("subsidy", "disburse") | ("ecny", "load_wallet")) { vec!["real_person".into()] } else { Vec::new() },
        };
        let client = &self.clients[channel.id];
        let decision = client.invoke(app, action, &call).await.map_err(|source| CityError::Call { step: title.to_string(), source })?;
        let step = Step { title: title.into(), app: app.into(), action: action.into(), expect, decision: decision.clone() };
        (self.report)(&step);
        self.steps.push(step);
        Ok(decision)
    }
}

/// Plays the sample calls against `setup.gateway`, reporting each step to `report` as it is
/// decided.
pub async fn run(setup: &Setup, report: &mut dyn FnMut(&Step)) -> Result<Vec<Step>, CityError> {
    let mut clients = BTreeMap::new();
    for channel in [PARK_GATES, METRO, HOSPITAL, FINANCE, BANK_APP] {
        let client = VenueClient::from_key_file(&setup.gateway, channel.id, &paths::key_file(channel.key))
            .map_err(|source| CityError::Call { step: format!("channel {}", channel.id), source })?;
        clients.insert(channel.id, client);
    }
    let issuer = DemoIssuer::from_key_file(&issuer_key_file()).map_err(|source| CityError::Call { step: "issuer key".into(), source })?;
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()).to_string();
    let mut c = Caller { setup, issuer, clients, steps: Vec::new(), run_id: run_id.clone(), report };
    let gate = Some(("westlake-north-gate", "gate-01"));

    // Parks: a senior enters free and leaves; a holder who gave no consent is refused.
    c.call("zhang (77) enters West Lake: free for seniors", PARK_GATES, "parks", "enter", Some("zhang"), gate, json!({}), Expect::Allowed).await?;
    c.call("zhang leaves West Lake", PARK_GATES, "parks", "exit", Some("zhang"), gate, json!({}), Expect::Allowed).await?;
    c.call("wang has not consented to share her age", PARK_GATES, "parks", "enter", Some("wang"), gate, json!({}), Expect::Refused("CONSENT_REQUIRED")).await?;

    // Transit: li rides from Wulin Square to East Railway Station; the operator's scheduler
    // then debits the fare from her card's account and uploads the trip.
    c.call("li taps in at Wulin Square", METRO, "transit", "tap_in", Some("li"), Some(("wulin-square", "wl-g1")), json!({}), Expect::Allowed).await?;
    c.call("li taps out at East Railway Station", METRO, "transit", "tap_out", Some("li"), Some(("east-railway-station", "ers-g1")), json!({}), Expect::Allowed).await?;
    c.call("the metro operator charges and uploads closed trips", METRO, "transit", "upload_pending", None, None, json!({}), Expect::Allowed).await?;

    // Hospital: an outpatient visit settled against medical insurance; zhang pays the self-pay.
    let visit = c.call("zhang registers at internal medicine", HOSPITAL, "hospital", "register", Some("zhang"), None, json!({"dept_code": "IM01"}), Expect::Allowed).await?;
    let mdtrt_id = visit.result().and_then(|r| r["mdtrt_id"].as_str()).unwrap_or("none").to_string();
    let fees = json!({"mdtrt_id": mdtrt_id, "items": [
        {"sn": "1", "code": "XA01-consultation", "count": 1, "unit_price_fen": 2500},
        {"sn": "2", "code": "ZB02-ct-scan", "count": 1, "unit_price_fen": 24000},
        {"sn": "3", "code": "YP03-amoxicillin", "count": 2, "unit_price_fen": 1850}
    ]});
    c.call("the counter uploads the fees", HOSPITAL, "hospital", "upload_fees", None, None, fees, Expect::Allowed).await?;
    c.call("pre-settlement: fund, personal account, self-pay", HOSPITAL, "hospital", "presettle", None, None, json!({"mdtrt_id": mdtrt_id}), Expect::Allowed).await?;
    c.call("settle; the self-pay is debited from zhang's card", HOSPITAL, "hospital", "settle", Some("zhang"), None, json!({"mdtrt_id": mdtrt_id, "total_fen": 30200}), Expect::Allowed).await?;

    // Subsidy: the farmland subsidy paid to the head of household's own card; a deceased
    // beneficiary is refused (the civil register says so).
    let item = |holder: &str, card: String| json!({"batch_id": "farm-2026-b1", "item_id": holder, "policy": "farm-2026", "period": "2026", "beneficiary_ref": card, "amount_fen": 120000});
    let zhang = item("zhang", c.card("zhang"));
    // Played again, the plugin answers the paid item as a replay. After a restart of the city
    // the plugin's state and the sandbox bank start empty, so the bank double pays again; the
    // gateway's ledger, kept in the database, refuses to record a second payment for the same
    // (policy, period, person) and the item is refused with LEDGER_CONFLICT.
    let once = Expect::AllowedOnce("LEDGER_CONFLICT");
    c.call("the finance bureau pays zhang's farmland subsidy", FINANCE, "subsidy", "disburse", Some("zhang"), None, zhang, once).await?;
    let chen = item("chen", c.card("chen"));
    c.call("chen's item: the beneficiary has died", FINANCE, "subsidy", "disburse", Some("chen"), None, chen, Expect::Refused("PERSON_DECEASED")).await?;

    // e-CNY: li opens a hard wallet on her card in the bank app, tops it up and pays a bakery.
    c.call("li opens a hard e-CNY wallet on her card", BANK_APP, "ecny", "load_wallet", Some("li"), None, json!({"tier": "class2"}), Expect::AllowedOnce("WALLET_ALREADY_LOADED")).await?;
    let op = |what: &str| format!("{what}-{run_id}");
    c.call("li tops up 200 yuan", BANK_APP, "ecny", "top_up", Some("li"), None, json!({"op_id": op("topup"), "amount_fen": 20000}), Expect::Allowed).await?;
    c.call("li pays 35.50 yuan at the bakery", BANK_APP, "ecny", "pay", Some("li"), None, json!({"op_id": op("pay"), "merchant": "hz-bakery", "amount_fen": 3550}), Expect::Allowed).await?;
    c.call("li's wallet balance", BANK_APP, "ecny", "balance", Some("li"), None, json!({}), Expect::Allowed).await?;
    Ok(c.steps)
}

/// A step as printed by `onecard-city calls`.
pub fn describe(step: &Step) -> String {
    let mark = if step.as_expected() { "✔" } else { "✘ (unexpected)" };
    let decision = step.decision.to_string().replace('\n', "\n    ");
    format!("{mark} {} — {}/{}\n    {decision}\n", step.title, step.app, step.action)
}
