//! Every plugin component the project builds, scenario and test plugins alike, imports only the
//! onecard world and nothing from WASI: `onecard-componentize` defined the WASI functions Rust's
//! `std` imports as traps inside the module (why: docs/PERFORMANCE.md, "Plugin runtime").

use onecard_gateway::capabilities::Grants;
use onecard_tests::{artifacts, load, runtime};

/// The component of the plugin crate `name`, beside the parks plugin's.
fn component(name: &str) -> String {
    let dir = std::path::Path::new(artifacts::PARKS).parent().expect("the artifacts' folder");
    format!("{}/{name}.wasm", dir.display())
}

async fn check(name: &str) {
    let plugin = load(&runtime(), &component(name), &Grants::all()).await;
    let imports = plugin.imports();
    assert!(!imports.is_empty(), "{name} imports nothing at all");
    let foreign: Vec<_> = imports.iter().filter(|i| !i.starts_with("onecard:plugin/")).collect();
    assert!(foreign.is_empty(), "{name} imports more than the onecard world: {foreign:?}");
}

macro_rules! imports_no_wasi {
    ($name:ident, $dir:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            super::check(stringify!($name)).await;
        }
    };
}

mod scenario_plugins {
    onecard_tests::artifacts::foreach_plugin!(imports_no_wasi);
}

mod test_plugins {
    onecard_tests::artifacts::foreach_test_plugin!(imports_no_wasi);
}
