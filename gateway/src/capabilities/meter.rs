//! The per-instance host-call budget: a plugin that floods the host (a million log lines, a kv
//! call in a loop) is ended as a fault instead of starving the gateway.

use wasmtime::component::HasData;

/// Why an instance was ended by its host-call budget.
#[derive(Debug, thiserror::Error)]
#[error("host-call budget of {limit} calls exceeded (last call: {last})")]
pub struct HostCallBudgetExceeded {
    pub limit: u32,
    pub last: &'static str,
}

/// Counts host calls of one instance.
#[derive(Debug, Clone)]
pub struct Meter {
    calls: u32,
    limit: u32,
}

impl Meter {
    pub fn new(limit: u32) -> Self {
        Meter { calls: 0, limit }
    }

    /// Count one call to `what`; past the limit the call traps.
    pub fn charge(&mut self, what: &'static str) -> wasmtime::Result<()> {
        self.calls += 1;
        if self.calls > self.limit {
            return Err(wasmtime::Error::new(HostCallBudgetExceeded { limit: self.limit, last: what }));
        }
        Ok(())
    }

    pub fn calls(&self) -> u32 {
        self.calls
    }
}

/// What a capability's host functions see: its own state and the instance's meter.
#[derive(Debug)]
pub struct Metered<'a, S> {
    pub state: &'a mut S,
    pub meter: &'a mut Meter,
}

impl<S> Metered<'_, S> {
    /// Charge the call to the meter, then give the state.
    pub fn charge(&mut self, what: &'static str) -> wasmtime::Result<&mut S> {
        self.meter.charge(what)?;
        Ok(self.state)
    }
}

/// `HasData` marker for a capability whose state is `S`.
#[derive(Debug)]
pub struct MeteredData<S>(std::marker::PhantomData<S>);

impl<S: 'static> HasData for MeteredData<S> {
    type Data<'a> = Metered<'a, S>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_past_the_limit_traps_and_names_itself() {
        let mut meter = Meter::new(2);
        assert!(meter.charge("log").is_ok());
        assert!(meter.charge("log").is_ok());
        let err = meter.charge("kv.get").unwrap_err();
        let budget = err.downcast_ref::<HostCallBudgetExceeded>().expect("typed error");
        assert_eq!((budget.limit, budget.last), (2, "kv.get"));
    }
}
