//! Every scenario plugin, built to wasm and run through the runtime as the gateway runs it.
//!
//! Each plugin under `plugins/` must have a module of tests here: `foreach_plugin!` below names
//! every plugin crate, and a plugin without a `mod <name>` fails to compile. Each plugin's
//! `plugin.toml` (what the department files) must agree with what its component describes.

use std::sync::Arc;
use std::time::Duration;

use onecard_gateway::capabilities::{Capability, Grants};
use onecard_tests::{artifacts, call, card, env, load, request, runtime};
use serde_json::Value;

macro_rules! assert_plugin_has_tests {
    ($name:ident, $dir:expr) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
artifacts::foreach_plugin!(assert_plugin_has_tests);

/// `plugin.toml` agrees with the component's `describe`, for every plugin.
mod manifests {
    macro_rules! manifest_matches_describe {
        ($name:ident, $dir:expr) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::check_manifest($dir, &paste_path(stringify!($name))).await;
            }
        };
    }
    fn paste_path(name: &str) -> String {
        format!("{}/{}.wasm", std::path::Path::new(onecard_tests::artifacts::PARKS).parent().unwrap().display(), name)
    }
    onecard_tests::artifacts::foreach_plugin!(manifest_matches_describe);
}

async fn check_manifest(dir: &str, wasm: &str) {
    let manifest: toml::Table = std::fs::read_to_string(format!("{dir}/plugin.toml")).expect("plugin.toml").parse().expect("valid TOML");
    let rt = runtime();
    let plugin = load(&rt, wasm, &Grants::all()).await;
    let info = plugin.info();
    assert_eq!(manifest["id"].as_str(), Some(info.id.as_str()));
    assert_eq!(manifest["version"].as_str(), Some(info.version.as_str()));
    assert_eq!(manifest["wit"].as_str(), plugin.wit_version().map(|v| format!("onecard:plugin@{v}")).as_deref());
    let caps: Vec<&str> = manifest["capabilities"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(caps, info.capabilities);
    let actions = manifest["actions"].as_table().expect("[actions]");
    assert_eq!(actions.len(), info.actions.len(), "same number of actions");
    for spec in &info.actions {
        let filed = actions.get(&spec.name).unwrap_or_else(|| panic!("action `{}` missing from plugin.toml", spec.name));
        assert_eq!(filed["description"].as_str(), Some(spec.description.as_str()));
        assert_eq!(filed["assurance"].as_str(), Some(spec.assurance.as_str()));
        assert_eq!(filed["needs_card"].as_bool(), Some(spec.needs_card));
        assert_eq!(filed["moves_money"].as_bool(), Some(spec.moves_money));
        let scopes: Vec<&str> = filed["scopes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(scopes, spec.scopes);
        let schema_file = format!("{dir}/{}", filed["params_schema"].as_str().unwrap());
        let filed_schema: Value = serde_json::from_str(&std::fs::read_to_string(&schema_file).unwrap()).unwrap();
        let described: Value = serde_json::from_str(&spec.params_schema).unwrap();
        assert_eq!(filed_schema, described, "{schema_file}");
    }
}

mod parks {
    use super::*;

    const CONFIG: &str = include_str!("../../examples/city/parks-config.json");

    fn enter(holder: &str, age: &str) -> onecard_gateway::bindings::onecard::plugin::types::Request {
        let mut r = request("parks", "enter", "{}");
        r.venue = Some("west-lake".into());
        r.terminal = Some("WL-G1".into());
        r.config = CONFIG.replace("\"capacity_per_day\": 2,", "\"capacity_per_day\": 10,");
        r.card = Some(card(holder, &[("holder.age", age)]));
        r.idempotency_key = format!("enter-{holder}");
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_entries_never_exceed_capacity_and_each_holder_enters_once() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::PARKS, &Grants::of([Capability::Kv])).await);
        let env = env("parks");
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            calls.spawn(async move { call(&rt, &plugin, &env, &enter(&format!("h{}", i % 20), "30"), Duration::from_millis(500)).await.result });
        }
        let results: Vec<_> = calls.join_all().await;
        let admitted = results.iter().filter(|r| r.as_ref().is_ok_and(|resp| !resp.body.contains("\"replayed\":true"))).count();
        let full = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code() == "CAPACITY_REACHED")).count();
        assert_eq!(admitted, 10, "exactly the capacity is admitted: {results:?}");
        assert!(full >= 10, "distinct holders beyond capacity are refused: {full}");
        assert!(results.iter().all(|r| r.as_ref().map_or_else(|e| ["CAPACITY_REACHED", "ALREADY_INSIDE"].contains(&e.code()), |_| true)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_component_decides_like_the_native_code() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::PARKS, &Grants::of([Capability::Kv])).await;
        let env = env("parks");
        let first = call(&rt, &plugin, &env, &enter("s", "67"), Duration::from_millis(500)).await.result.unwrap();
        let body: Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(body["entitlement"]["kind"], "senior");
        let mut again = enter("s", "67");
        again.idempotency_key = "second".into();
        let refused = call(&rt, &plugin, &env, &again, Duration::from_millis(500)).await.result.unwrap_err();
        assert_eq!(refused.code(), "ALREADY_INSIDE");
    }
}
