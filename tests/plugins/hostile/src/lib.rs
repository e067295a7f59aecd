//! A plugin that misbehaves on purpose, one action per way a plugin can go wrong, plus `ok` as
//! the well-behaved control. The runtime's containment tests call it; nothing else may.
#![forbid(unsafe_code)]

use onecard_sdk::{ActionSpec, HandleError, Plugin, PluginInfo, Request, Response, http, kv, log};

pub struct Hostile;

const ANY: &str = r#"{"type":"object"}"#;

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        ["ok", "loop", "grow", "trap", "panic", "recurse", "flood", "call_http", "refuse"]
            .into_iter()
            .fold(PluginInfo::new("hostile", "0.1.0"), |info, name| info.action(ActionSpec::new(name, ANY)))
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
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => {
                let divisor = std::hint::black_box(0u32);
                Response::json(&(1 / divisor))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "recurse" => Response::json(&recurse(std::hint::black_box(1))),
            "flood" => loop {
                log::debug("flood");
            },
            "call_http" => {
                let response = http::post_json("fare-system", "/trips", &serde_json::json!({}))?;
                Response::json(&response.status)
            }
            "refuse" => Err(HandleError::refused("HOSTILE_SAYS_NO", "refused on purpose")),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

fn recurse(n: u64) -> u64 {
    let buffer = std::hint::black_box([n; 64]);
    if buffer[0] == 0 { 0 } else { recurse(n + 1) + buffer[63] }
}

onecard_sdk::export_plugin!(Hostile);
