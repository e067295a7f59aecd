//! The subsidy plugin end to end: `onecard serve` with the real subsidy component filed online,
//! a department's payment system sending batch items over HTTP (signed requests, the
//! beneficiary's card token, the channel's real-person check), the money credited by the sandbox
//! bank (`/bank/settlements`).
//!
//! - every refusal the plugin can give through the gateway, each with its code, each shown to
//!   move no money: neither the bank's ledger nor the gateway's audit ledger changes, and the
//!   person stays unpaid. (`CARD_NOT_NORMAL` cannot be reached: the catalog accepts only
//!   `allow = ["normal"]` for a money-moving action, so the gateway refuses other statuses first,
//!   as shown here for a temporarily lost card.);
//! - a paid item balances: the bank's credit, the gateway's ledger entry and the answer agree;
//!   one whose answer the bank never sent is paid once when resent;
//! - the same item sent many times at once pays once, and so do different items for one person.
//!
//! Not reachable on purpose: `KV_CONTENDED` (an item's batch record changed by other requests
//! between read and compare-and-swap four times in a row; no test can force that interleaving
//! through the gateway, and the concurrent tests here, which write one item's record from many
//! requests, never get it).
#![allow(clippy::unwrap_used, reason = "test helpers too: a panic is the failure report (clippy.toml covers #[test] fns only)")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use onecard_audit::canonical::{StoredLedger, ledger_digest};
use onecard_audit::{AuditRecord, AuditStore, LedgerRecord};
use onecard_tests::artifacts;
use onecard_tests::city::{Answer, CHANNEL, CityOptions, ExtraApp, TestCity, ssn_of, test_ssn};
use serde_json::{Value, json};

const APP: &str = "subsidy";
const SCOPES: &str = r#"["holder.vital_status", "holder.household_role", "holder.financial_account"]"#;

/// A household policy with a paid period, one whose public notice is still open, and a personal
/// policy.
fn config() -> Value {
    json!({ "policies": {
        "farm-2026": {
            "name": "Cultivated land protection subsidy",
            "standard_fen": 150_000,
            "household": true,
            "periods": { "2026": { "notice_ends": "2000-01-01" }, "2999": { "notice_ends": "2999-12-31" } },
        },
        "elder-2026": {
            "name": "Elderly allowance",
            "standard_fen": 20_000,
            "periods": { "2026-Q4": { "notice_ends": "2000-01-01" } },
        },
    }})
}

/// Beneficiaries other than `adult`, registered by this test (all with a face enrolled, 实人).
struct Person {
    n: u32,
    attributes: &'static [(&'static str, &'static str)],
}

const DECEASED: Person = Person { n: 30, attributes: &[("holder.vital_status", "deceased"), ("holder.household_role", "head"), ("holder.financial_account", "ACCT-30")] };
const UNKNOWN: Person = Person { n: 31, attributes: &[("holder.household_role", "head"), ("holder.financial_account", "ACCT-31")] };
/// Alive, a household member, no activated bank account.
const MEMBER: Person = Person { n: 32, attributes: &[("holder.vital_status", "alive"), ("holder.household_role", "member")] };
const PEOPLE: [&Person; 3] = [&DECEASED, &UNKNOWN, &MEMBER];

static SSN_REFS: LazyLock<BTreeMap<u32, String>> = LazyLock::new(|| PEOPLE.iter().map(|p| (p.n, format!("ssn:{}", test_ssn(p.n)))).collect());

fn consent(id: &str, ssn: &str) -> String {
    format!(
        "[[consents]]\nid = \"{id}\"\ncard_ref = \"ssn:{ssn}\"\napplication = \"{APP}\"\nscopes = {SCOPES}\npurpose = \"subsidy disbursement\"\nchannel = \"{CHANNEL}\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2036-01-01T00:00:00Z\"\n\n"
    )
}

fn extra_catalog() -> String {
    let mut toml = consent("subsidy-adult", &ssn_of("adult"));
    for p in PEOPLE {
        let ssn = test_ssn(p.n);
        toml.push_str(&format!(
            "[[cards]]\ncard_ref = \"ssn:{ssn}\"\ncard_number = \"S{n:08}\"\ncard_id_code = \"330100D15600000500000000000002{n:02X}\"\nissuing_region = \"330100\"\nstatus = \"normal\"\nreal_name = true\nreal_card = true\nbank_activated = true\nreal_person = true\nvalid_until = \"2035-12-31T00:00:00Z\"\n\n",
            n = p.n,
        ));
        toml.push_str(&consent(&format!("subsidy-{}", p.n), &ssn));
    }
    toml
}

struct Subsidy {
    city: TestCity,
    sandbox: SocketAddr,
}

impl Subsidy {
    async fn start() -> Subsidy {
        let (sandbox, _task) = onecard_sandbox::spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut holders = vec![
            ("adult", "holder.vital_status", "alive".to_string()),
            ("adult", "holder.household_role", "head".to_string()),
            ("adult", "holder.financial_account", "ACCT-ADULT".to_string()),
        ];
        for p in PEOPLE {
            for (scope, value) in p.attributes {
                holders.push((SSN_REFS[&p.n].as_str(), *scope, value.to_string()));
            }
        }
        let options = CityOptions {
            extra_catalog: extra_catalog(),
            configure: |c| c.runtime.deadline_ms = 5_000,
            apps: vec![ExtraApp {
                id: APP.into(),
                wasm: artifacts::SUBSIDY.into(),
                config: config(),
                backends: BTreeMap::from([("settlement".to_string(), format!("http://{sandbox}/bank"))]),
                card_status_policy: BTreeMap::new(),
            }],
            holders,
        };
        Subsidy { city: TestCity::start(artifacts::PARKS, options).await, sandbox }
    }

    async fn card_ref(&self, p: &Person) -> String {
        self.city.store.card_ref(&test_ssn(p.n)).await.unwrap()
    }

    /// An item of `batch` for `beneficiary`, presented with `card` (a test card name or a card
    /// reference) after the channel's face check.
    fn body(&self, card: &str, item: Value) -> Value {
        let credential = match self.city.cards.get(card) {
            Some(_) => self.city.token(card),
            None => self.city.token_for(card),
        };
        json!({ "credential": credential, "params": item, "verified": ["real_person"], "idempotency_key": onecard_gateway::auth::random_nonce() })
    }

    async fn disburse(&self, card: &str, item: Value) -> Answer {
        self.city.call(APP, "disburse", &self.body(card, item)).await
    }

    /// Whether `beneficiary` is `unpaid`, `in_progress` or `paid` for the period (`None` for a
    /// policy or period the configuration does not know).
    async fn state(&self, policy: &str, period: &str, beneficiary: &str) -> Option<String> {
        let answer = self.city.call(APP, "status", &json!({ "params": { "policy": policy, "period": period, "beneficiary_ref": beneficiary } })).await;
        if answer.status != 200 {
            assert!(["POLICY_UNKNOWN", "PERIOD_UNKNOWN"].contains(&answer.code()), "{}", answer.body);
            return None;
        }
        Some(answer.body["result"]["state"].as_str().unwrap().to_string())
    }

    async fn faults(&self, faults: Value) {
        let response = self.city.http.put(format!("http://{}/bank/_faults", self.sandbox)).json(&faults).send().await.unwrap();
        assert!(response.status().is_success(), "{faults}");
    }

    async fn bank(&self) -> Value {
        self.city.http.get(format!("http://{}/bank/_state", self.sandbox)).send().await.unwrap().json().await.unwrap()
    }

    async fn audit(&self) -> AuditStore {
        self.city.running.gateway.audit.flush().await.unwrap();
        AuditStore::connect(&self.city.database, &self.city.running.gateway.config.gateway_id).await.unwrap()
    }

    async fn records(&self) -> Vec<AuditRecord> {
        self.audit().await.records(0, 1_000_000).await.unwrap()
    }

    async fn ledger(&self, key: &str) -> Option<LedgerRecord> {
        self.audit().await.ledger_entry(APP, key).await.unwrap()
    }

    /// The money: the bank's entries and balances and the records that committed ledger entries.
    async fn money(&self) -> Value {
        let bank = self.bank().await;
        let ledgers: Vec<String> = self.records().await.into_iter().filter_map(|r| r.fields.ledger_sha256).collect();
        json!({ "bank_entries": bank["ledger"]["entries"], "bank_balances": bank["ledger"]["balances"], "ledgers": ledgers })
    }

    /// Asserts `answer` is the refusal `code` with `status`, audited without a ledger entry.
    async fn refused(&self, answer: &Answer, code: &str, status: u16) {
        assert_eq!((answer.status, answer.code()), (status, code), "{}", answer.body);
        assert_eq!(answer.body["decision"], "refused");
        let record = self.city.audit(answer.request_id()).await;
        assert_eq!(record.code.as_deref(), Some(code));
        assert_eq!(record.ledger_sha256, None, "{code}: a refusal commits no ledger entry");
    }

    /// Asserts `answer` paid `amount` once, and that the bank's credit, the gateway's ledger
    /// entry (committed with this decision's record) and the answer agree.
    async fn paid_once(&self, answer: &Answer, beneficiary: &str, account: &str, policy: &str, period: &str, amount: u64) {
        assert_eq!(answer.status, 200, "{}", answer.body);
        let result = &answer.body["result"];
        assert_eq!((result["decision"].as_str(), result["replayed"].as_bool()), (Some("paid"), Some(false)), "{result}");
        assert_eq!(result["amount_fen"], amount);
        let key = format!("subsidy:{policy}:{period}:{beneficiary}");
        let ledger = self.ledger(&key).await.expect("the payment is in the gateway's ledger");
        assert_eq!((ledger.entry.kind.as_str(), ledger.entry.account.as_str(), ledger.entry.amount_fen), ("credit", account, amount));
        assert_eq!(result["receipt"], ledger.entry.receipt_id.as_str());
        let records = self.records().await;
        let record = records.iter().find(|r| r.fields.request_id == answer.request_id()).unwrap();
        assert_eq!(record.seq, ledger.audit_seq, "committed with this decision");
        assert_eq!(record.fields.ledger_sha256, Some(ledger_digest(&[StoredLedger::from_entry(&ledger.entry)])));
        let bank = self.bank().await;
        let credits: Vec<&Value> = bank["ledger"]["entries"].as_array().unwrap().iter().filter(|e| e["settlement"]["idempotency_key"] == key.as_str()).collect();
        assert_eq!(credits.len(), 1, "one credit for {key}");
        assert_eq!(credits[0]["settlement"]["kind"], "credit");
        assert_eq!(credits[0]["settlement"]["account"], account);
        assert_eq!(credits[0]["settlement"]["amount_fen"], amount);
        assert_eq!(credits[0]["receipt"]["receipt_id"], ledger.entry.receipt_id.as_str());
        assert_eq!(bank["ledger"]["balances"][account], amount, "the account received exactly the amount told");
    }
}

fn item(batch: &str, item: &str, policy: &str, period: &str, beneficiary: &str, amount: u64) -> Value {
    json!({ "batch_id": batch, "item_id": item, "policy": policy, "period": period, "beneficiary_ref": beneficiary, "amount_fen": amount })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_moves_no_money() {
    let s = Subsidy::start().await;
    let adult = s.city.cards["adult"].clone();
    let senior = s.city.cards["senior"].clone();
    let [deceased, unknown, member] = [s.card_ref(&DECEASED).await, s.card_ref(&UNKNOWN).await, s.card_ref(&MEMBER).await];
    let farm = |n: &str, who: &str, amount| item("b1", n, "farm-2026", "2026", who, amount);
    // (code, card presented, item)
    let cases: [(&str, &str, Value); 9] = [
        ("POLICY_UNKNOWN", &adult, item("b1", "i1", "unheard-of", "2026", &adult, 100)),
        ("PERIOD_UNKNOWN", &adult, item("b1", "i2", "farm-2026", "2031", &adult, 100)),
        ("NOT_BENEFICIARY_CARD", &adult, farm("i3", &senior, 100)),
        ("PERSON_DECEASED", &deceased, farm("i5", &deceased, 100)),
        ("PERSON_STATUS_UNKNOWN", &unknown, farm("i6", &unknown, 100)),
        ("NOT_HEAD_OF_HOUSEHOLD", &member, farm("i7", &member, 100)),
        ("AMOUNT_ABOVE_STANDARD", &adult, farm("i8", &adult, 150_001)),
        ("NOTICE_PERIOD_OPEN", &adult, item("b1", "i9", "farm-2026", "2999", &adult, 100)),
        ("FINANCIAL_ACCOUNT_UNUSABLE", &member, item("b1", "i10", "elder-2026", "2026-Q4", &member, 100)),
    ];
    let mut refused_by_code: BTreeMap<&str, u64> = BTreeMap::new();
    for (code, card, item) in &cases {
        let before = s.money().await;
        let answer = s.disburse(card, item.clone()).await;
        s.refused(&answer, code, 422).await;
        assert_eq!(s.money().await, before, "{code} moved money");
        let state = s.state(item["policy"].as_str().unwrap(), item["period"].as_str().unwrap(), item["beneficiary_ref"].as_str().unwrap()).await;
        assert!(matches!(state.as_deref(), None | Some("unpaid")), "{code}: {state:?}");
        *refused_by_code.entry(*code).or_default() += 1;
    }

    // A card that is not normal never reaches the plugin: the gateway refuses it.
    let temporary = s.city.cards["temporary"].clone();
    let before = s.money().await;
    let answer = s.disburse("temporary", farm("i4", &temporary, 100)).await;
    s.refused(&answer, "CARD_TEMPORARILY_LOST", 403).await;
    assert_eq!(s.money().await, before, "CARD_TEMPORARILY_LOST moved money");

    // The bank's refusals: nothing moves, the claim is given back.
    for (status, code) in [(422, "PAYMENT_DECLINED"), (402, "INSUFFICIENT_FUNDS"), (429, "PAYMENT_LIMIT_EXCEEDED")] {
        s.faults(json!({ "fail_next": 1, "status": status })).await;
        let before = s.money().await;
        let answer = s.disburse("adult", farm("i20", &adult, 120_000)).await;
        s.refused(&answer, code, 422).await;
        assert_eq!(s.money().await, before, "{code} moved money");
        assert_eq!(s.state("farm-2026", "2026", &adult).await.as_deref(), Some("unpaid"), "{code}: the claim was given back");
    }

    // The same item once the bank answers: paid, and balanced.
    let paid = s.disburse("adult", farm("i20", &adult, 120_000)).await;
    s.paid_once(&paid, &adult, "ACCT-ADULT", "farm-2026", "2026", 120_000).await;
    assert_eq!(s.state("farm-2026", "2026", &adult).await.as_deref(), Some("paid"));

    // After the payment: another item for the same person, and the paid item resent with other
    // details, are refused; the paid item resent as it was is answered again. None moves money.
    let before = s.money().await;
    s.refused(&s.disburse("adult", farm("i21", &adult, 120_000)).await, "ALREADY_PAID", 422).await;
    assert_eq!(s.money().await, before, "ALREADY_PAID moved money");
    s.refused(&s.disburse("adult", farm("i20", &adult, 100_000)).await, "ITEM_MISMATCH", 400).await;
    assert_eq!(s.money().await, before, "ITEM_MISMATCH moved money");
    let again = s.disburse("adult", farm("i20", &adult, 120_000)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!((again.body["result"]["replayed"].as_bool(), &again.body["result"]["receipt"]), (Some(true), &paid.body["result"]["receipt"]));
    assert_eq!(s.city.audit(again.request_id()).await.ledger_sha256, None);
    assert_eq!(s.money().await, before, "a replayed item moved money");

    // The batch report: one item paid with its receipt, the refusals by code (a paid item's
    // record is never overwritten by a later refusal of it).
    let report = s.city.call(APP, "reconcile", &json!({ "params": { "batch_id": "b1" } })).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let report = &report.body["result"];
    assert_eq!((report["paid_count"].as_u64(), report["paid_fen"].as_u64()), (Some(1), Some(120_000)), "{report}");
    refused_by_code.insert("ALREADY_PAID", 1);
    assert_eq!(report["refused_by_code"], json!(refused_by_code), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_answer_was_lost_is_paid_once_when_resent() {
    let s = Subsidy::start().await;
    let adult = s.city.cards["adult"].clone();
    let the_item = item("b9", "i1", "farm-2026", "2026", &adult, 120_000);
    let key = format!("subsidy:farm-2026:2026:{adult}");

    // The bank credits the account but its answer never comes: the gateway has no receipt.
    s.faults(json!({ "timeout_next": 1 })).await;
    let lost = s.disburse("adult", the_item.clone()).await;
    s.refused(&lost, "PAYMENT_TIMEOUT", 502).await;
    assert!(s.ledger(&key).await.is_none(), "no receipt, no gateway ledger entry");
    let bank = s.bank().await;
    assert_eq!(bank["ledger"]["balances"]["ACCT-ADULT"], 120_000, "the bank did credit");
    assert_eq!(s.state("farm-2026", "2026", &adult).await.as_deref(), Some("unpaid"), "the claim was given back");
    let report = s.city.call(APP, "reconcile", &json!({ "params": { "batch_id": "b9" } })).await;
    assert_eq!(report.body["result"]["items_total"], 0, "a transient failure is not an outcome: {}", report.body);

    // Resent: the bank answers the credit it made under the person's key; nothing is credited
    // twice, and the gateway's ledger entry, the bank's entry and the answer agree.
    let paid = s.disburse("adult", the_item).await;
    s.paid_once(&paid, &adult, "ACCT-ADULT", "farm-2026", "2026", 120_000).await;
    assert_eq!(s.bank().await["ledger"]["entries"].as_array().unwrap().len(), 1, "one credit at the bank");
    assert_eq!(s.records().await.iter().filter(|r| r.fields.ledger_sha256.is_some()).count(), 1, "one ledger entry at the gateway");
}

/// Sends `bodies` all at once and returns the answers.
async fn all_at_once(s: &Arc<Subsidy>, bodies: Vec<Value>) -> Vec<Answer> {
    let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let (s, barrier) = (Arc::clone(s), Arc::clone(&barrier));
        tasks.spawn(async move {
            barrier.wait().await;
            (i, s.city.call(APP, "disburse", &body).await)
        });
    }
    let mut answers: Vec<(usize, Answer)> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
}

const CONCURRENT: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_item_sent_many_times_at_once_pays_once() {
    let s = Arc::new(Subsidy::start().await);
    let adult = s.city.cards["adult"].clone();
    let the_item = item("b7", "i1", "farm-2026", "2026", &adult, 99_000);
    // Each send is its own request: its own card token, nonce and idempotency key.
    let bodies = (0..CONCURRENT).map(|_| s.body("adult", the_item.clone())).collect();
    let answers = all_at_once(&s, bodies).await;

    let first: Vec<&Answer> = answers.iter().filter(|a| a.status == 200 && a.body["result"]["replayed"] == false).collect();
    assert_eq!(first.len(), 1, "exactly one send pays: {:?}", answers.iter().map(|a| &a.body).collect::<Vec<_>>());
    s.paid_once(first[0], &adult, "ACCT-ADULT", "farm-2026", "2026", 99_000).await;
    let receipt = &first[0].body["result"]["receipt"];
    for answer in &answers {
        if answer.status == 200 {
            // Answered again with the one payment.
            assert_eq!((&answer.body["result"]["receipt"], answer.body["result"]["amount_fen"].as_u64()), (receipt, Some(99_000)), "{}", answer.body);
        } else {
            s.refused(answer, "DISBURSEMENT_IN_PROGRESS", 422).await;
        }
    }
    let bank = s.bank().await;
    assert_eq!(bank["ledger"]["entries"].as_array().unwrap().len(), 1, "one payment at the bank");
    let records = s.records().await;
    assert_eq!(records.iter().filter(|r| r.fields.ledger_sha256.is_some()).count(), 1, "one ledger entry at the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_items_for_one_person_at_once_pay_once() {
    let s = Arc::new(Subsidy::start().await);
    let adult = s.city.cards["adult"].clone();
    // The department's register lists the same person in several items (a duplicate the audit of
    // 540 recipients found six of).
    let bodies = (0..CONCURRENT).map(|i| s.body("adult", item("b8", &format!("i{i}"), "elder-2026", "2026-Q4", &adult, 20_000))).collect();
    let answers = all_at_once(&s, bodies).await;

    let paid: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(paid.len(), 1, "exactly one item pays: {:?}", answers.iter().map(|a| &a.body).collect::<Vec<_>>());
    s.paid_once(paid[0], &adult, "ACCT-ADULT", "elder-2026", "2026-Q4", 20_000).await;
    for answer in answers.iter().filter(|a| a.status != 200) {
        let code = answer.code().to_string();
        assert!(code == "ALREADY_PAID" || code == "DISBURSEMENT_IN_PROGRESS", "{}", answer.body);
        s.refused(answer, &code, 422).await;
    }
    assert_eq!(s.bank().await["ledger"]["entries"].as_array().unwrap().len(), 1, "one payment at the bank");
    assert_eq!(s.records().await.iter().filter(|r| r.fields.ledger_sha256.is_some()).count(), 1, "one ledger entry at the gateway");
}
