//! What a department files for a plugin: the catalog [`Manifest`] derived from the component's
//! own `describe`, so the filed actions, schemas, assurance levels, scopes and capabilities are
//! exactly what the bytes declare (used by `onecard-city` and the tests to file plugins).

use onecard_catalog::model::{ActionSpec, Assurance, Capability, Manifest};

use crate::bindings::onecard::plugin::types::PluginInfo;
use crate::bindings::Assurance as Declared;

/// The catalog manifest of a plugin that describes itself as `info`. An unparsable schema is
/// filed as an object schema accepting nothing, so it can never widen what a caller may send.
pub fn manifest(info: &PluginInfo) -> Manifest {
    let actions: Vec<ActionSpec> = info
        .actions
        .iter()
        .map(|a| ActionSpec {
            name: a.name.clone(),
            description: Some(a.description.clone()),
            params_schema: serde_json::from_str(&a.params_schema)
                .unwrap_or_else(|_| serde_json::json!({"type": "object", "maxProperties": 0})),
            assurance: [match a.assurance {
                Declared::RealName => Assurance::RealName,
                Declared::RealCard => Assurance::RealCard,
                Declared::RealPerson => Assurance::RealPerson,
            }]
            .into(),
            scopes: a.scopes.iter().cloned().collect(),
            moves_money: a.moves_money,
        })
        .collect();
    Manifest {
        plugin: info.id.clone(),
        version: info.version.clone(),
        data_scopes: actions.iter().flat_map(|a| a.scopes.iter().cloned()).collect(),
        capabilities: info
            .capabilities
            .iter()
            .filter_map(|c| match c.as_str() {
                "card" => Some(Capability::Card),
                "http" => Some(Capability::Http),
                "kv" => Some(Capability::Kv),
                "payments" => Some(Capability::Payments),
                _ => None,
            })
            .collect(),
        actions,
    }
}
