//! The request, response and description types, with the helpers plugin authors use every day.
//!
//! The types themselves are generated from the WIT contract; this module adds constructors and
//! accessors so that handlers read like ordinary Rust.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::bindings::onecard::plugin::types::{
    ActionSpec, Assurance, CardStatus, CardView, HandleError, PluginInfo, Refusal, Request,
    Response,
};

impl Request {
    /// The action's parameters, deserialized. The gateway validated them against the action's
    /// schema already; a mismatch with `T` is reported as `INVALID_PARAMS` naming the field.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, HandleError> {
        parse_json(&self.params, "INVALID_PARAMS", "parameters")
    }

    /// The application's configuration from the catalog, deserialized. A configuration that does
    /// not fit `T` is the plugin's deployment error, reported as an internal fault.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, HandleError> {
        parse_json(&self.config, "CONFIG_INVALID", "configuration")
            .map_err(|e| HandleError::Internal(e.message().to_owned()))
    }

    /// The presented card, or `CARD_REQUIRED` when the request carries none.
    pub fn card(&self) -> Result<&CardView, HandleError> {
        self.card.as_ref().ok_or_else(|| {
            HandleError::InvalidParams(Refusal {
                code: "CARD_REQUIRED".into(),
                message: format!("action `{}` needs a presented card", self.action),
            })
        })
    }
}

fn parse_json<T: DeserializeOwned>(json: &str, code: &str, what: &str) -> Result<T, HandleError> {
    // Parsed plainly first: tracking the path costs on every field, and it is only needed to
    // name the field of a failure, so a failure is parsed again with it.
    if let Ok(value) = serde_json::from_str(json) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("{what}: {}", e.inner())
        } else {
            format!("{what}: field `{path}`: {}", e.inner())
        };
        HandleError::InvalidParams(Refusal { code: code.into(), message })
    })
}

impl CardView {
    /// A consented attribute by scope name (e.g. `holder.age`), if the gateway showed it.
    pub fn attribute(&self, scope: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name == scope)
            .map(|(_, value)| value.as_str())
    }
}

impl Response {
    /// A JSON response body.
    pub fn json<T: Serialize>(body: &T) -> Result<Response, HandleError> {
        serde_json::to_string(body)
            .map(|body| Response { body })
            .map_err(|e| HandleError::Internal(format!("response not serializable: {e}")))
    }
}

impl HandleError {
    /// A business refusal: the rule says no (not entitled, capacity reached, ...).
    pub fn refused(code: &str, message: impl Into<String>) -> Self {
        HandleError::Refused(Refusal { code: code.into(), message: message.into() })
    }

    /// Parameters that pass the schema but break a rule it cannot express.
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        HandleError::InvalidParams(Refusal { code: code.into(), message: message.into() })
    }

    /// A backend the plugin depends on failed.
    pub fn backend(code: &str, message: impl Into<String>) -> Self {
        HandleError::BackendUnavailable(Refusal { code: code.into(), message: message.into() })
    }

    /// The action name is not one this plugin offers. The gateway only routes described actions,
    /// so reaching this is a plugin bug.
    pub fn unknown_action(action: &str) -> Self {
        HandleError::Internal(format!("action `{action}` is not handled by this plugin"))
    }

    /// The stable code of this error (`PLUGIN_INTERNAL` for internal faults).
    pub fn code(&self) -> &str {
        match self {
            HandleError::Refused(r)
            | HandleError::InvalidParams(r)
            | HandleError::BackendUnavailable(r) => &r.code,
            HandleError::Internal(_) => "PLUGIN_INTERNAL",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            HandleError::Refused(r)
            | HandleError::InvalidParams(r)
            | HandleError::BackendUnavailable(r) => &r.message,
            HandleError::Internal(m) => m,
        }
    }
}

impl PluginInfo {
    /// A description with no actions yet.
    pub fn new(id: &str, version: &str) -> Self {
        PluginInfo { id: id.into(), version: version.into(), actions: Vec::new(), capabilities: Vec::new() }
    }

    /// Add an action.
    pub fn action(mut self, action: ActionSpec) -> Self {
        self.actions.push(action);
        self
    }

    /// Ask for a host capability (`card`, `http`, `kv`, `payments`).
    pub fn capability(mut self, name: &str) -> Self {
        self.capabilities.push(name.into());
        self
    }
}

impl ActionSpec {
    /// An action with its parameters' JSON Schema; by default it needs no card, reads no scopes,
    /// moves no money and needs real-name assurance.
    pub fn new(name: &str, params_schema: &str) -> Self {
        ActionSpec {
            name: name.into(),
            description: String::new(),
            params_schema: params_schema.into(),
            assurance: Assurance::RealName,
            scopes: Vec::new(),
            moves_money: false,
            needs_card: false,
        }
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = text.into();
        self
    }

    pub fn assurance(mut self, level: Assurance) -> Self {
        self.assurance = level;
        self
    }

    /// Holder data scopes the action reads; the holder's consent must cover them.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn moves_money(mut self) -> Self {
        self.moves_money = true;
        self
    }

    pub fn needs_card(mut self) -> Self {
        self.needs_card = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        venue: String,
        party: Vec<Person>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Person {
        age: u8,
    }

    #[test]
    fn parameters_that_fit_are_parsed_and_a_misfit_names_its_field() {
        let ok: Entry = parse_json(r#"{"venue":"wl","party":[{"age":7}]}"#, "INVALID_PARAMS", "parameters").unwrap();
        assert_eq!(ok, Entry { venue: "wl".into(), party: vec![Person { age: 7 }] });

        let Err(HandleError::InvalidParams(refusal)) =
            parse_json::<Entry>(r#"{"venue":"wl","party":[{"age":7},{"age":300}]}"#, "INVALID_PARAMS", "parameters")
        else {
            panic!("a refusal");
        };
        assert_eq!(refusal.code, "INVALID_PARAMS");
        assert!(refusal.message.starts_with("parameters: field `party[1].age`: invalid value: integer `300`"), "{}", refusal.message);

        let Err(HandleError::InvalidParams(refusal)) = parse_json::<Entry>("7", "INVALID_PARAMS", "parameters") else {
            panic!("a refusal");
        };
        assert!(refusal.message.starts_with("parameters: invalid type"), "{}", refusal.message);
    }
}
