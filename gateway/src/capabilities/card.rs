//! `card`: the presented card's status and consented attributes.
//!
//! The gateway's pipeline decides what the plugin may see (consent, masking) before the call;
//! this capability only answers from that decision, so a plugin can never read a scope the
//! holder did not consent to.

use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::card::{CardError, Host, add_to_linker};
use crate::bindings::{CardStatus, CardView};

/// Per-instance card state: the view the pipeline decided to show.
#[derive(Debug, Clone, Default)]
pub struct CardState {
    pub view: Option<CardView>,
}

impl Host for Metered<'_, CardState> {
    async fn status(&mut self) -> wasmtime::Result<Result<CardStatus, CardError>> {
        let card = self.charge("card.status")?;
        Ok(card.view.as_ref().map(|v| v.status).ok_or(CardError::NoCard))
    }

    async fn attribute(&mut self, scope: String) -> wasmtime::Result<Result<String, CardError>> {
        let card = self.charge("card.attribute")?;
        let Some(view) = card.view.as_ref() else { return Ok(Err(CardError::NoCard)) };
        Ok(view
            .attributes
            .iter()
            .find(|(name, _)| *name == scope)
            .map(|(_, value)| value.clone())
            .ok_or(CardError::NotConsented(scope)))
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<CardState>>(linker, |s| Metered { state: &mut s.card, meter: &mut s.meter })
}
