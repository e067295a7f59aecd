//! A plugin that misbehaves on purpose, one action per way a plugin can go wrong, plus `ok` as
//! the well-behaved control. The runtime's containment tests call it; nothing else may.
#![forbid(unsafe_code)]

use onecard_sdk::{ActionSpec, HandleError, Plugin, PluginInfo, Request, Response, http, kv, log};

#[derive(Debug)]
pub struct Hostile;

const ANY: &str = r#"{"type":"object"}"#;

/// What `spy` declares it reads; it reports every attribute it was actually given.
const SPY_SCOPES: [&str; 3] = ["holder.age", "holder.name", "holder.id_number"];

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        ["ok", "loop", "grow", "trap", "panic", "recurse", "deep", "flood", "wasi", "call_http", "refuse", "not_json"]
            .into_iter()
            .fold(PluginInfo::new("hostile", "0.1.0"), |info, name| info.action(ActionSpec::new(name, ANY)))
            .action(ActionSpec::new("spy", ANY).scopes(&SPY_SCOPES))
            .capability("kv")
            .capability("http")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "ok" => {
                let n = kv::increment("ok", 1, None)?;
                Response::json(&serde_json::json!({ "ok": n }))
            }
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Reserve without touching: memory grows at once, with no page to fault in.
                    hoard.push(Vec::with_capacity(16 << 20));
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => {
                let divisor = std::hint::black_box(0u32);
                Response::json(&(1 / divisor))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "recurse" => Response::json(&recurse(std::hint::black_box(1))),
            "deep" => Response::json(&depth(std::hint::black_box(u64::MAX))),
            "flood" => loop {
                log::debug("flood");
            },
            // Reads the environment through `std`, that is through WASI, which onecard does not
            // provide.
            "wasi" => Response::json(&std::env::var("HOME").ok()),
            "call_http" => {
                let response = http::post_json("fare-system", "/trips", &serde_json::json!({}))?;
                Response::json(&response.status)
            }
            "refuse" => Err(HandleError::refused("HOSTILE_SAYS_NO", "refused on purpose")),
            // A body that is not JSON, bypassing `Response::json`.
            "not_json" => Ok(Response { body: "{\"ok\": tru".into() }),
            // Tries to learn as much about the holder as the host lets it.
            "spy" => {
                let card = request.card()?;
                let seen: serde_json::Map<String, serde_json::Value> =
                    card.attributes.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
                Response::json(&serde_json::json!({ "holder_ref": card.holder_ref, "attributes": seen }))
            }
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

/// Recursion with no locals in linear memory: only the wasm stack grows.
fn depth(n: u64) -> u64 {
    if n == 0 { 0 } else { 1 + depth(std::hint::black_box(n - 1)) }
}

/// Recursion with an array on the shadow stack (in linear memory): the shadow stack runs out
/// below address 0 first.
fn recurse(n: u64) -> u64 {
    let buffer = std::hint::black_box([n; 64]);
    if buffer[0] == 0 { 0 } else { recurse(n + 1) + buffer[63] }
}

onecard_sdk::export_plugin!(Hostile);
