//! Hostile plugins are contained: each way a plugin can misbehave ends that one request with
//! `PLUGIN_TIMEOUT` or `PLUGIN_FAULT`, while ordinary requests on the same engine keep
//! succeeding before, during and after.

use std::time::{Duration, Instant};

use onecard_gateway::capabilities::{Capability, Grants};
use onecard_gateway::runtime::{InvokeError, LoadError, RuntimeConfig, sha256_hex};
use onecard_tests::{artifacts, call, env, load, request, runtime, runtime_with};

const DEADLINE: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_end_alone_while_ordinary_requests_succeed() {
    let rt = runtime();
    let hostile = load(&rt, artifacts::HOSTILE, &Grants::all()).await;
    let env = env("hostile");

    let ok = request("hostile", "ok", "{}");
    assert!(call(&rt, &hostile, &env, &ok, DEADLINE).await.result.is_ok(), "before");

    // Ordinary requests keep flowing on the same engine while the hostile ones run.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let background = {
        let (rt_ok, env) = (&rt, env.clone());
        let hostile = &hostile;
        async move {
            let mut served = 0u32;
            while !*stop_rx.borrow_and_update() {
                let invocation = call(rt_ok, hostile, &env, &request("hostile", "ok", "{}"), DEADLINE).await;
                assert!(invocation.result.is_ok(), "ordinary request failed during the attack: {:?}", invocation.result);
                served += 1;
                tokio::task::yield_now().await;
            }
            served
        }
    };

    let attacks = async {
        let mut outcomes = Vec::new();
        for action in ["loop", "grow", "trap", "panic", "recurse", "deep", "flood", "wasi"] {
            let started = Instant::now();
            let invocation = call(&rt, &hostile, &env, &request("hostile", action, "{}"), DEADLINE).await;
            outcomes.push((action, invocation.result, started.elapsed()));
        }
        stop_tx.send(true).expect("background loop alive");
        outcomes
    };
    let (served, outcomes) = tokio::join!(background, attacks);

    for (action, result, elapsed) in &outcomes {
        let err = result.as_ref().expect_err(action);
        let expected = if *action == "loop" { "PLUGIN_TIMEOUT" } else { "PLUGIN_FAULT" };
        assert_eq!(err.code(), expected, "{action}: {err}");
        println!("{action:8} -> {:14} in {elapsed:?}: {err}", err.code());
    }
    let reason = |action: &str| outcomes.iter().find(|o| o.0 == action).map(|o| o.1.clone().unwrap_err().to_string()).unwrap_or_default();
    assert!(reason("panic").contains("hostile plugin panics on purpose"), "{}", reason("panic"));
    assert!(reason("recurse").contains("out of bounds"), "shadow stack overflow: {}", reason("recurse"));
    assert!(reason("deep").contains("stack overflow"), "wasm stack overflow: {}", reason("deep"));
    assert!(reason("flood").contains("host-call budget"), "{}", reason("flood"));
    assert!(reason("grow").contains("memory cap of 64 MiB reached"), "{}", reason("grow"));
    // `std::env::var` calls WASI, which the plugin does not import: the trap names the function.
    assert!(reason("wasi").contains("called the WASI function `wasi:cli/environment@"), "{}", reason("wasi"));
    assert!(reason("wasi").contains("which onecard does not provide"), "{}", reason("wasi"));
    let loop_elapsed = outcomes[0].2;
    assert!(loop_elapsed >= DEADLINE, "the loop ended before its deadline: {loop_elapsed:?}");
    assert!(served > 0, "no ordinary request was served during the attacks");
    println!("ordinary requests served during the attacks: {served}");

    assert!(call(&rt, &hostile, &env, &ok, DEADLINE).await.result.is_ok(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_is_configurable() {
    let rt = runtime();
    let hostile = load(&rt, artifacts::HOSTILE, &Grants::all()).await;
    let started = Instant::now();
    let invocation = call(&rt, &hostile, &env("hostile"), &request("hostile", "loop", "{}"), Duration::from_millis(30)).await;
    assert_eq!(invocation.result, Err(InvokeError::Timeout { deadline_ms: 30 }));
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_hash_does_not_match_is_refused_at_load() {
    let rt = runtime();
    let bytes = std::fs::read(artifacts::PARKS).unwrap();
    let filed = sha256_hex(b"some other artifact");
    let err = rt.load(&bytes, &filed, &Grants::all()).await.unwrap_err();
    assert!(matches!(&err, LoadError::HashMismatch { expected, actual } if *expected == filed && *actual == sha256_hex(&bytes)));
    assert!(err.to_string().contains("hash mismatch"), "{err}");

    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = rt.load(&tampered, &sha256_hex(&bytes), &Grants::all()).await.unwrap_err();
    assert!(matches!(err, LoadError::HashMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_not_granted_fails_at_link_time_naming_it() {
    let rt = runtime();
    let bytes = std::fs::read(artifacts::HOSTILE).unwrap();
    let without_http = Grants::of([Capability::Kv]);
    let err = rt.load(&bytes, &sha256_hex(&bytes), &without_http).await.unwrap_err();
    assert!(matches!(&err, LoadError::CapabilityNotGranted { capability } if capability == "http"), "{err}");
    assert_eq!(err.to_string(), "plugin imports capability `http`, which its catalog entry does not grant");

    let without_kv = Grants::of([Capability::Http]);
    let err = rt.load(&bytes, &sha256_hex(&bytes), &without_kv).await.unwrap_err();
    assert!(err.to_string().contains("`kv`"), "{err}");

    // Granted, the same bytes load; and the parks plugin needs only kv.
    rt.load(&bytes, &sha256_hex(&bytes), &Grants::of([Capability::Kv, Capability::Http])).await.expect("granted");
    let parks = std::fs::read(artifacts::PARKS).unwrap();
    rt.load(&parks, &sha256_hex(&parks), &Grants::of([Capability::Kv])).await.expect("parks needs only kv");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_backend_answers_and_an_unreachable_one_is_a_backend_error() {
    let rt = runtime();
    let hostile = load(&rt, artifacts::HOSTILE, &Grants::all()).await;
    let invocation = call(&rt, &hostile, &env("hostile"), &request("hostile", "call_http", "{}"), DEADLINE).await;
    // `fare-system` is not among this application's backends: the plugin's own bug, a fault.
    let err = invocation.result.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_FAULT", "{err}");
    assert!(err.to_string().contains("fare-system"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_refusals_keep_their_code() {
    let rt = runtime();
    let hostile = load(&rt, artifacts::HOSTILE, &Grants::all()).await;
    let invocation = call(&rt, &hostile, &env("hostile"), &request("hostile", "refuse", "{}"), DEADLINE).await;
    assert_eq!(invocation.result, Err(InvokeError::Refused { code: "HOSTILE_SAYS_NO".into(), message: "refused on purpose".into() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_on_disk_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { max_instances: 4, cache_dir: Some(dir.path().to_path_buf()), ..RuntimeConfig::default() };
    let bytes = std::fs::read(artifacts::PARKS).unwrap();
    let sha = sha256_hex(&bytes);
    runtime_with(config.clone()).load(&bytes, &sha, &Grants::all()).await.unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].starts_with(&sha) && entries[0].ends_with(".cwasm"), "{entries:?}");
    // A second runtime loads from the cache; a corrupt entry is recompiled, not trusted.
    runtime_with(config.clone()).load(&bytes, &sha, &Grants::all()).await.unwrap();
    std::fs::write(dir.path().join(&entries[0]), b"garbage").unwrap();
    let plugin = runtime_with(config).load(&bytes, &sha, &Grants::all()).await.unwrap();
    assert_eq!(plugin.info().id, "parks");
}
