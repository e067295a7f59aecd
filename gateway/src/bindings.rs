//! Host-side bindings of the plugin contract (`sdk/wit`, `onecard:plugin@1.0.0`).
//!
//! Every import is `async` (a host call may wait on a backend without blocking a gateway thread)
//! and `trappable` (a host call may end the instance: the per-request host-call budget).
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../sdk/wit",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use onecard::plugin::types::{ActionSpec, Assurance, CardStatus, CardView, Refusal};

impl Assurance {
    /// The name used in manifests, the catalog and JSON: `real_name`, `real_card`, `real_person`.
    pub fn as_str(self) -> &'static str {
        match self {
            Assurance::RealName => "real_name",
            Assurance::RealCard => "real_card",
            Assurance::RealPerson => "real_person",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Assurance::RealName, Assurance::RealCard, Assurance::RealPerson].into_iter().find(|a| a.as_str() == name)
    }
}

impl CardStatus {
    /// The name used in the catalog and JSON (`temporary_loss`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Sealed => "sealed",
            CardStatus::Normal => "normal",
            CardStatus::TemporaryLoss => "temporary_loss",
            CardStatus::FormalLoss => "formal_loss",
            CardStatus::Locked => "locked",
            CardStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [CardStatus::Sealed, CardStatus::Normal, CardStatus::TemporaryLoss, CardStatus::FormalLoss, CardStatus::Locked, CardStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}
