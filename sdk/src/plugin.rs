//! The [`Plugin`] trait and the guard the export glue wraps around every `handle` call.

use crate::types::{HandleError, PluginInfo, Request, Response};

/// One scenario plugin. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// The plugin's id, version, actions (with their parameter schemas, assurance and scopes) and
    /// the capabilities it asks for. Called once when the gateway loads the plugin.
    fn describe() -> PluginInfo;

    /// Handle one action of one request. Called on a fresh instance for every request: keep no
    /// state in statics, keep it in [`kv`](crate::kv).
    fn handle(request: Request) -> Result<Response, HandleError>;
}

/// Run `P::handle` with a panic hook that reports the panic message through the host log before
/// the instance traps (the gateway reports the trap as a plugin fault).
pub fn handle_guarded<P: Plugin>(request: Request) -> Result<Response, HandleError> {
    std::panic::set_hook(Box::new(|info| {
        crate::log::error(&format!("plugin panicked: {info}"));
    }));
    P::handle(request)
}
