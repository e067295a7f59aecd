//! The application configuration a parks department files with the catalog: its venues, their
//! opening hours, capacities, terminals and entry rules.

use std::collections::BTreeMap;

use onecard_sdk::HandleError;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub venues: BTreeMap<String, Venue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    pub name: String,
    /// Local opening time, `HH:MM`.
    pub opens: String,
    /// Local closing time, `HH:MM`; no entry from this minute on.
    pub closes: String,
    /// Entries admitted per local day.
    pub capacity_per_day: i64,
    /// Optional time slots, each with its own capacity.
    #[serde(default)]
    pub slots: Vec<Slot>,
    /// Terminals (gates) that may admit; empty means any terminal of the venue.
    #[serde(default)]
    pub terminals: Vec<String>,
    pub fees: Fees,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    pub id: String,
    pub starts: String,
    pub ends: String,
    pub capacity: i64,
}

/// Entry prices in fen and who is entitled to what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fees {
    /// The ordinary ticket; `None` means only entitled holders may enter.
    pub standard_fen: Option<u64>,
    /// Seniors from this age enter at `senior_fen`.
    pub senior_age: Option<u32>,
    #[serde(default)]
    pub senior_fen: u64,
    /// Cards issued in regions starting with one of these codes count as residents.
    #[serde(default)]
    pub resident_regions: Vec<String>,
    #[serde(default)]
    pub resident_fen: u64,
}

impl Config {
    pub fn venue(&self, id: &str) -> Result<&Venue, HandleError> {
        self.venues
            .get(id)
            .ok_or_else(|| HandleError::invalid("VENUE_UNKNOWN", format!("venue `{id}` is not run by this application")))
    }
}

impl Venue {
    pub fn slot(&self, id: &str) -> Result<&Slot, HandleError> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| HandleError::invalid("SLOT_UNKNOWN", format!("venue has no time slot `{id}`")))
    }
}

/// Minutes since local midnight of an `HH:MM` time; a malformed time is a configuration fault.
pub fn minutes(hhmm: &str) -> Result<u32, HandleError> {
    let parsed = hhmm.split_once(':').and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
    match parsed {
        Some((h, m)) if h <= 24 && m < 60 && h * 60 + m <= 24 * 60 => Ok(h * 60 + m),
        _ => Err(HandleError::Internal(format!("configuration: `{hhmm}` is not an HH:MM time"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(minutes("08:30").unwrap(), 510);
        assert_eq!(minutes("24:00").unwrap(), 1440);
        assert!(minutes("8h").is_err());
        assert!(minutes("25:00").is_err());
        assert!(minutes("12:60").is_err());
    }
}
