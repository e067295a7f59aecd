//! `onecard plugin new|build|inspect|run`: the plugin author's loop — create a crate from the
//! template, build the component and print what to file, look at it and try its actions before
//! filing it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::time::parse_now;
use crate::bindings::onecard::plugin::log::Level;
use crate::bindings::onecard::plugin::types::Request;
use crate::bindings::{ActionSpec, Assurance, CardStatus, CardView};
use crate::capabilities::clock::ClockState;
use crate::capabilities::kv::MemoryKv;
use crate::capabilities::{AppEnv, HostState};
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate from the template: manifest, schema, one action and its native tests.
    New(super::plugin_new::NewArgs),
    /// Build the crate's component, check plugin.toml against it, print its hash and the filing.
    Build(super::plugin_build::BuildArgs),
    /// Print a plugin's id, version, SHA-256, WIT version, imports and actions with their schemas.
    Inspect {
        /// The plugin component (`.wasm`).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run one action against in-memory backends and print the result as JSON.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin component (`.wasm`).
    file: PathBuf,
    /// The action to run.
    #[arg(long)]
    action: String,
    /// The action's parameters (JSON).
    #[arg(long, default_value = "{}")]
    params: String,
    /// The application's configuration (JSON), as the catalog would pass it.
    #[arg(long, conflicts_with = "config_file")]
    config: Option<String>,
    /// Read the application's configuration from a JSON file.
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Present a card with this holder reference.
    #[arg(long)]
    holder: Option<String>,
    /// A consented card attribute, `scope=value` (repeatable), e.g. `holder.age=67`.
    #[arg(long = "attr", value_name = "SCOPE=VALUE")]
    attributes: Vec<String>,
    /// The card's issuing region.
    #[arg(long, default_value = "330100")]
    region: String,
    /// The card's status.
    #[arg(long, default_value = "normal", value_parser = ["sealed", "normal", "temporary_loss", "formal_loss", "locked", "cancelled"])]
    card_status: String,
    /// The assurance the credential established.
    #[arg(long, default_value = "real_card", value_parser = ["real_name", "real_card", "real_person"])]
    assurance: String,
    /// The venue and terminal the request comes from.
    #[arg(long)]
    venue: Option<String>,
    #[arg(long)]
    terminal: Option<String>,
    /// The application id (the kv namespace).
    #[arg(long, default_value = "local")]
    app: String,
    /// The idempotency key (default: a fresh one per run).
    #[arg(long)]
    idempotency_key: Option<String>,
    /// The request's instant: unix ms or China local time `YYYY-MM-DDTHH:MM` (default: now).
    #[arg(long)]
    now: Option<String>,
    /// Keep key-value state in this JSON file between runs.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The call's deadline in ms.
    #[arg(long, default_value_t = 100)]
    deadline_ms: u64,
}

pub async fn run(cmd: PluginCommand) -> i32 {
    let result = match cmd {
        PluginCommand::New(args) => {
            return match super::plugin_new::create(&args) {
                Ok(message) => {
                    print!("{message}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    e.exit_code()
                }
            };
        }
        PluginCommand::Build(args) => {
            return match super::plugin_build::build(&args).await {
                Ok(report) => {
                    println!("{report}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    e.exit_code()
                }
            };
        }
        PluginCommand::Inspect { file, json } => inspect(file, json).await,
        PluginCommand::Run(args) => run_action(*args).await,
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

fn local_runtime() -> Result<Runtime, String> {
    Runtime::new(RuntimeConfig { max_instances: 4, ..RuntimeConfig::default() }).map_err(|e| e.to_string())
}

async fn inspect(file: PathBuf, as_json: bool) -> Result<i32, String> {
    let runtime = local_runtime()?;
    let plugin = runtime.load_file_unfiled(&file).await.map_err(|e| format!("{}: {e}", file.display()))?;
    let report = describe(&plugin);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_text(&report);
    }
    Ok(0)
}

fn describe(plugin: &LoadedPlugin) -> Value {
    let info = plugin.info();
    json!({
        "id": info.id,
        "version": info.version,
        "sha256": plugin.sha256(),
        "wit_version": plugin.wit_version(),
        "capabilities": info.capabilities,
        "imports": plugin.imports(),
        "actions": info.actions.iter().map(action_json).collect::<Vec<_>>(),
    })
}

fn action_json(action: &ActionSpec) -> Value {
    let schema: Value = serde_json::from_str(&action.params_schema).unwrap_or(Value::String(action.params_schema.clone()));
    json!({
        "name": action.name,
        "description": action.description,
        "assurance": action.assurance.as_str(),
        "scopes": action.scopes,
        "needs_card": action.needs_card,
        "moves_money": action.moves_money,
        "params_schema": schema,
    })
}

fn print_text(report: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("plugin       {} {}", s(&report["id"]), s(&report["version"]));
    println!("sha256       {}", s(&report["sha256"]));
    println!("wit          onecard:plugin@{}", s(&report["wit_version"]));
    println!("capabilities {}", report["capabilities"]);
    println!("actions");
    for action in report["actions"].as_array().into_iter().flatten() {
        println!(
            "  {:12} assurance={} scopes={} card={} money={}\n               {}\n               params: {}",
            s(&action["name"]),
            s(&action["assurance"]),
            action["scopes"],
            action["needs_card"],
            action["moves_money"],
            s(&action["description"]),
            action["params_schema"]
        );
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

async fn run_action(args: RunArgs) -> Result<i32, String> {
    let runtime = local_runtime()?;
    let plugin = runtime.load_file_unfiled(&args.file).await.map_err(|e| format!("{}: {e}", args.file.display()))?;
    if !plugin.info().actions.iter().any(|a| a.name == args.action) {
        let names: Vec<_> = plugin.info().actions.iter().map(|a| a.name.as_str()).collect();
        return Err(format!("plugin `{}` has no action `{}` (it has: {})", plugin.info().id, args.action, names.join(", ")));
    }
    serde_json::from_str::<Value>(&args.params).map_err(|e| format!("--params is not JSON: {e}"))?;
    let config = match (&args.config, &args.config_file) {
        (Some(json), _) => json.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        (None, None) => "{}".into(),
    };
    serde_json::from_str::<Value>(&config).map_err(|e| format!("the configuration is not JSON: {e}"))?;
    let card = match &args.holder {
        None => None,
        Some(holder) => Some(CardView {
            holder_ref: holder.clone(),
            status: CardStatus::parse(&args.card_status).unwrap_or(CardStatus::Normal),
            financial_locked: false,
            assurance: Assurance::parse(&args.assurance).unwrap_or(Assurance::RealCard),
            issuing_region: args.region.clone(),
            attributes: args
                .attributes
                .iter()
                .map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("--attr `{a}` is not SCOPE=VALUE")))
                .collect::<Result<_, _>>()?,
        }),
    };
    let now = match &args.now {
        Some(text) => ClockState::fixed(parse_now(text)?),
        None => ClockState::now(),
    };
    let kv = Arc::new(match &args.state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let json = serde_json::from_str(&text).map_err(|e| format!("{}: not a state file: {e}", path.display()))?;
            MemoryKv::from_json(json).map_err(|e| format!("{}: not a state file: {e}", path.display()))?
        }
        _ => MemoryKv::new(),
    });
    let env = AppEnv { kv: kv.clone(), ..AppEnv::in_memory(&args.app) };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let request_id = format!("local-{}-{nanos}", std::process::id());
    let request = Request {
        app: args.app.clone(),
        action: args.action.clone(),
        request_id: request_id.clone(),
        channel: "local".into(),
        venue: args.venue.clone(),
        terminal: args.terminal.clone(),
        params: args.params.clone(),
        config,
        card: card.clone(),
        idempotency_key: args.idempotency_key.clone().unwrap_or_else(|| request_id.clone()),
    };
    let state = HostState::new(&env, runtime.instance_limits(), &request_id, card, now);
    let invocation = plugin.handle(state, &request, Duration::from_millis(args.deadline_ms)).await;

    if let Some(path) = &args.state {
        let text = serde_json::to_string_pretty(&kv.to_json()).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let logs: Vec<_> = invocation.state.log.lines.iter().map(|(l, m)| json!({ "level": level_name(*l), "message": m })).collect();
    let (code, mut out) = match &invocation.result {
        Ok(response) => {
            let body: Value = serde_json::from_str(&response.body).unwrap_or(Value::String(response.body.clone()));
            (0, json!({ "ok": true, "response": body }))
        }
        Err(error) => (1, json!({ "ok": false, "error": { "code": error.code(), "message": error.message() } })),
    };
    out["action"] = json!(args.action);
    out["logs"] = json!(logs);
    out["host_calls"] = json!(invocation.state.meter.calls());
    out["elapsed_us"] = json!(invocation.elapsed.as_micros() as u64);
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(code)
}
