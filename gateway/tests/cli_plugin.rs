//! `onecard plugin inspect` and `onecard plugin run`, as a department runs them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/city/parks-config.json");

fn onecard(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_onecard")).args(args).output().expect("run onecard");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).to_string())
}

fn enter(state: &Path, holder: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "plugin", "run", onecard_plugin_artifacts::PARKS, "--action", "enter", "--config-file", CONFIG,
        "--venue", "west-lake", "--terminal", "WL-G1", "--now", "2026-11-23T10:00",
        "--state", state.to_str().unwrap(), "--holder", holder,
    ];
    args.extend_from_slice(extra);
    onecard(&args)
}

#[test]
fn run_admits_then_refuses_a_second_entry_then_refuses_above_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");

    let (code, out, err) = enter(&state, "alice", &["--attr", "holder.age=67"]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["response"]["decision"], "admit");
    assert_eq!(out["response"]["entitlement"]["kind"], "senior");

    let (code, out, _) = enter(&state, "alice", &["--attr", "holder.age=67"]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "ALREADY_INSIDE", "{out}");

    let (code, out, _) = enter(&state, "bob", &[]);
    assert_eq!((code, &out["response"]["admitted_today"]), (0, &Value::from(2)), "{out}");

    let saved = std::fs::read_to_string(&state).unwrap();
    let (code, out, _) = enter(&state, "carol", &[]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "CAPACITY_REACHED", "{out}");
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let before: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(after["local"]["count:west-lake:2026-11-23"], before["local"]["count:west-lake:2026-11-23"], "the refusal took no place");
    assert!(after["local"].get("inside:west-lake:carol").is_none(), "the refused holder is not inside");
}

#[test]
fn run_reports_bad_usage_with_exit_code_2_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let (code, _, err) = onecard(&[
        "plugin", "run", onecard_plugin_artifacts::PARKS, "--action", "enter", "--config-file", CONFIG, "--venue", "west-lake",
        "--holder", "alice", "--now", "yesterday", "--state", state.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("yesterday"), "{err}");
    assert!(!state.exists(), "nothing was written");
    let (code, _, err) = onecard(&["plugin", "run", onecard_plugin_artifacts::PARKS, "--action", "fly"]);
    assert_eq!(code, 2);
    assert!(err.contains("no action `fly`") && err.contains("enter"), "{err}");
}

#[test]
fn run_refuses_invalid_parameters_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = enter(&dir.path().join("s.json"), "alice", &["--params", r#"{"slot": 5}"#]);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["code"], "INVALID_PARAMS");
    assert!(out["error"]["message"].as_str().unwrap().contains("slot"), "{out}");
}

#[test]
fn inspect_prints_identity_wit_version_and_actions() {
    let (code, out, err) = onecard(&["plugin", "inspect", onecard_plugin_artifacts::PARKS, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["id"], "parks");
    assert_eq!(out["version"], "1.0.0");
    assert_eq!(out["wit_version"], "1.0.0");
    let bytes = std::fs::read(onecard_plugin_artifacts::PARKS).unwrap();
    assert_eq!(out["sha256"], onecard_gateway::runtime::sha256_hex(&bytes));
    let enter = &out["actions"][0];
    assert_eq!(enter["name"], "enter");
    assert_eq!(enter["assurance"], "real_card");
    assert_eq!(enter["params_schema"]["properties"]["slot"]["type"], "string");

    let (code, _, err) = onecard(&["plugin", "inspect", "/nonexistent.wasm"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.wasm"), "{err}");
}
