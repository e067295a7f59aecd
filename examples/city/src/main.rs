//! The example city: what `cargo run -p onecard-city` starts.
//!
//! Today it loads the city's parks plugin into the sandboxed runtime (built by the plugin
//! artifacts crate, so no manual wasm step) and walks a morning at West Lake: a senior and a
//! resident enter, a second entry without exit is refused, an exit, the daily capacity holds.
//! The gateway's HTTP service joins here when the request path lands.
#![forbid(unsafe_code)]

use std::time::Duration;

use onecard_gateway::bindings::onecard::plugin::types::Request;
use onecard_gateway::bindings::{Assurance, CardStatus, CardView};
use onecard_gateway::capabilities::clock::ClockState;
use onecard_gateway::capabilities::{AppEnv, Capability, Grants, HostState};
use onecard_gateway::runtime::{Runtime, RuntimeConfig, sha256_hex};
use serde_json::Value;

const CONFIG: &str = include_str!("../parks-config.json");
/// 2026-11-23 10:00 in China.
const MORNING_MS: i64 = 1_795_399_200_000;

fn card(holder: &str, age: &str) -> CardView {
    CardView {
        holder_ref: holder.into(),
        status: CardStatus::Normal,
        financial_locked: false,
        assurance: Assurance::RealCard,
        issuing_region: "330106".into(),
        attributes: vec![("holder.age".into(), age.into())],
    }
}

#[tokio::main]
async fn main() {
    let parks = onecard_plugin_artifacts::PARKS;
    let runtime = Runtime::new(RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("start the runtime");
    let bytes = std::fs::read(parks).expect("the parks plugin was built");
    let sha = sha256_hex(&bytes);
    let plugin = runtime.load(&bytes, &sha, &Grants::of([Capability::Kv])).await.expect("load the parks plugin");
    println!("onecard example city — parks plugin {} {} (sha256 {sha})", plugin.info().id, plugin.info().version);
    println!("a morning at West Lake (capacity 2 a day), each decision on a fresh sandboxed instance:\n");

    let env = AppEnv::in_memory("hz-parks");
    let steps = [
        ("enter", "alice", "67", "idem-1"),
        ("enter", "bob", "35", "idem-2"),
        ("enter", "alice", "67", "idem-3"),
        ("exit", "alice", "67", "idem-4"),
        ("enter", "carol", "41", "idem-5"),
    ];
    for (action, holder, age, key) in steps {
        let request = Request {
            app: "hz-parks".into(),
            action: action.into(),
            request_id: key.into(),
            channel: "3300000001".into(),
            venue: Some("west-lake".into()),
            terminal: Some("WL-G1".into()),
            params: "{}".into(),
            config: CONFIG.into(),
            card: Some(card(holder, age)),
            idempotency_key: key.into(),
        };
        let state = HostState::new(&env, runtime.instance_limits(), key, request.card.clone(), ClockState::fixed(MORNING_MS));
        let invocation = plugin.handle(state, &request, Duration::from_millis(100)).await;
        let outcome = match invocation.result {
            Ok(response) => {
                let body: Value = serde_json::from_str(&response.body).unwrap_or_default();
                match body["entitlement"]["kind"].as_str() {
                    Some(kind) => format!("admitted ({kind}, admission #{} today)", body["admitted_today"]),
                    None => "left".to_string(),
                }
            }
            Err(error) => format!("refused {} — {}", error.code(), error.message()),
        };
        println!("  {holder:6} {action:6} -> {outcome}   [{} µs]", invocation.elapsed.as_micros());
    }

    let onecard = std::env::current_exe().ok().and_then(|p| Some(p.parent()?.join("onecard"))).filter(|p| p.exists());
    let onecard = onecard.map_or("cargo run -p onecard-gateway --bin onecard --".to_string(), |p| p.display().to_string());
    println!("\nTry it yourself:");
    println!("  {onecard} plugin inspect {parks}");
    println!(
        "  {onecard} plugin run {parks} --action enter --config-file examples/city/parks-config.json \\\n      --venue west-lake --terminal WL-G1 --holder alice --attr holder.age=67 --state /tmp/parks-state.json"
    );
    println!("  (run the same command twice: the second entry without exit is refused with ALREADY_INSIDE)");
}
