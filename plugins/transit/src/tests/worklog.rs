//! The work log the uploads drain, through a probe plugin that drives it directly.

use onecard_sdk::testing::Harness;
use onecard_sdk::{HandleError, Plugin, PluginInfo, Request, Response, kv};

use super::{MONDAY_10AM, body};
use crate::worklog::{Step, WorkLog};

const LOG: WorkLog = WorkLog::new("w");

/// `append` (params: the value), `reserve` (take a slot and die before writing it), `drain`
/// (params: `max`, and `wait`/`stop`: the value at which the reader waits or fails).
struct Probe;

impl Plugin for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::new("probe", "0.0.0")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        let params: serde_json::Value = serde_json::from_str(&request.params).unwrap();
        let now = onecard_sdk::clock::now().unix_ms;
        match request.action.as_str() {
            "append" => Response::json(&LOG.append(params.as_str().unwrap().as_bytes(), 86_400_000)?),
            "reserve" => Response::json(&kv::increment("w:head", 1, None)?),
            _ => {
                let mut seen = Vec::new();
                let drained = LOG.drain(now, params["max"].as_u64().unwrap(), |v| {
                    let v = String::from_utf8(v.to_vec()).unwrap();
                    let step = if params["wait"] == v.as_str() {
                        Step::Wait
                    } else if params["stop"] == v.as_str() {
                        Step::Stop(HandleError::backend("DOWN", "down"))
                    } else {
                        Step::Done
                    };
                    seen.push(v);
                    Ok(step)
                })?;
                let stopped = drained.stopped.map(|e| e.code().to_owned());
                Response::json(&serde_json::json!({"seen": seen, "remaining": drained.remaining, "stopped": stopped}))
            }
        }
    }
}

fn run(h: &mut Harness, action: &str, params: &str) -> serde_json::Value {
    let request = h.request(action, params);
    body(h.call::<Probe>(&request).unwrap())
}

fn drain(h: &mut Harness, params: &str) -> (Vec<String>, u64) {
    let out = run(h, "drain", params);
    (serde_json::from_value(out["seen"].clone()).unwrap(), out["remaining"].as_u64().unwrap())
}

#[test]
fn slots_are_drained_in_order_once_and_in_bounded_runs() {
    let mut h = Harness::new();
    for v in ["a", "b", "c"] {
        run(&mut h, "append", &format!("{v:?}"));
    }
    assert_eq!(drain(&mut h, r#"{"max":2}"#), (vec!["a".into(), "b".into()], 1));
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec!["c".into()], 0));
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec![], 0));
}

#[test]
fn a_reader_that_waits_or_fails_keeps_its_place() {
    let mut h = Harness::new();
    for v in ["a", "b", "c"] {
        run(&mut h, "append", &format!("{v:?}"));
    }
    assert_eq!(drain(&mut h, r#"{"max":5,"wait":"b"}"#), (vec!["a".into(), "b".into()], 2));
    let out = run(&mut h, "drain", r#"{"max":5,"stop":"c"}"#);
    assert_eq!((out["seen"].clone(), out["remaining"].clone(), out["stopped"].clone()), (serde_json::json!(["b", "c"]), 1.into(), "DOWN".into()));
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec!["c".into()], 0));
}

#[test]
fn an_empty_slot_waits_for_its_writer_then_is_passed_over() {
    let mut h = Harness::new();
    run(&mut h, "append", r#""a""#);
    run(&mut h, "reserve", "{}");
    run(&mut h, "append", r#""c""#);
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec!["a".into()], 2), "the slot may still be being written");
    h.set_now_ms(MONDAY_10AM + 60_000);
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec![], 2));
    h.set_now_ms(MONDAY_10AM + 60_001);
    assert_eq!(drain(&mut h, r#"{"max":5}"#), (vec!["c".into()], 0), "no request lives a minute: the writer died");
}
