//! `clock`: the request's instant, fixed when the request is admitted, so that a plugin's
//! decision is a function of its inputs (a disputed transaction replays with the same clock).

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::clock::{Datetime, Host, add_to_linker};

/// China Standard Time, the offset of every region onecard serves today.
pub const CHINA_UTC_OFFSET_MINUTES: i32 = 480;

/// Per-instance clock: one instant for the whole request.
#[derive(Debug, Clone, Copy)]
pub struct ClockState {
    pub unix_ms: i64,
    pub utc_offset_minutes: i32,
}

impl ClockState {
    /// The system clock's current instant, in China Standard Time.
    pub fn now() -> Self {
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        ClockState { unix_ms, utc_offset_minutes: CHINA_UTC_OFFSET_MINUTES }
    }

    /// A fixed instant (tests, replays, `onecard plugin run --now`).
    pub fn fixed(unix_ms: i64) -> Self {
        ClockState { unix_ms, utc_offset_minutes: CHINA_UTC_OFFSET_MINUTES }
    }
}

impl Host for Metered<'_, ClockState> {
    async fn now(&mut self) -> wasmtime::Result<Datetime> {
        let clock = *self.charge("clock.now")?;
        Ok(Datetime { unix_ms: clock.unix_ms, utc_offset_minutes: clock.utc_offset_minutes })
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<ClockState>>(linker, |s| Metered { state: &mut s.clock, meter: &mut s.meter })
}
