//! The application configuration a transit operator files with the catalog: its stations, the
//! fare table (by zones or by distance), the maximum fare charged by rule, concessions by holder
//! category, the service-day boundary and the replay window.
//!
//! ```json
//! {
//!   "stations": {
//!     "S01": { "name": "Wulin Square", "zone": 1, "position_m": 0, "terminals": ["S01-G1"] },
//!     "S02": { "name": "Fengqi Road", "zone": 1, "position_m": 1800 }
//!   },
//!   "fares": { "distance": { "bands": [ { "up_to_m": 6000, "fare_fen": 200 },
//!                                        { "up_to_m": 12000, "fare_fen": 300 } ] } },
//!   "max_fare_fen": 800,
//!   "concessions": { "senior": { "pay_percent": 0 }, "student": { "pay_percent": 50 } }
//! }
//! ```
//!
//! A configuration that breaks a rule below is the operator's deployment error: every action
//! answers with an internal fault naming the problem, before touching any state.

use std::collections::BTreeMap;

use onecard_sdk::HandleError;
use onecard_sdk::clock::Datetime;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Stations by id; the id is the catalog venue the gate's request names.
    pub stations: BTreeMap<String, Station>,
    pub fares: FareTable,
    /// The fare charged by rule (exit without entry, entry left open), and the cap of every
    /// computed fare. Must be at least the highest band.
    pub max_fare_fen: u64,
    /// Local time at which a service day starts (and the previous one ends), `HH:MM`. Default
    /// `04:00`: a trip entered at 23:50 and left at 00:20 is one trip of the same service day.
    #[serde(default = "default_service_day_starts")]
    pub service_day_starts: String,
    /// A repeated tap at the same station within this many minutes is a replay of the first
    /// (answered again, nothing charged twice). Default 5, at least 1.
    #[serde(default = "default_replay_window_minutes")]
    pub replay_window_minutes: u32,
    /// Concessions by the holder's `holder.category` attribute. A category not listed here (or
    /// no category) pays the full fare. Default: none.
    #[serde(default)]
    pub concessions: BTreeMap<String, Concession>,
    /// Catalog backend name of the fare system trips are uploaded to. Default `fare-system`.
    #[serde(default = "default_fare_backend")]
    pub fare_backend: String,
    /// How long trip records and the holder's history are kept, days. Default 90.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_service_day_starts() -> String {
    "04:00".into()
}
fn default_replay_window_minutes() -> u32 {
    5
}
fn default_fare_backend() -> String {
    "fare-system".into()
}
fn default_retention_days() -> u32 {
    90
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    pub name: String,
    /// Fare zone (zone fares). Zones are numbered outwards; a trip touches `|a - b| + 1` zones.
    pub zone: Option<u32>,
    /// Distance along the network from its origin, metres (distance fares). The fare distance
    /// of a trip is the difference of its stations' positions unless `distances` names the pair.
    pub position_m: Option<u64>,
    /// Gates that may tap at this station; empty (the default) means any gate.
    #[serde(default)]
    pub terminals: Vec<String>,
}

/// How a trip's full fare is found.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FareTable {
    Zones(ZoneFares),
    Distance(DistanceFares),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFares {
    /// Ascending bands: the first band whose `zones_up_to` covers the zones touched gives the
    /// fare; beyond the last band the maximum fare applies.
    pub bands: Vec<ZoneBand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneBand {
    pub zones_up_to: u32,
    pub fare_fen: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistanceFares {
    /// Ascending bands: the first band whose `up_to_m` covers the distance gives the fare;
    /// beyond the last band the maximum fare applies.
    pub bands: Vec<DistanceBand>,
    /// Fare distances of station pairs that are not the difference of their positions (branch
    /// lines, transfers), either direction. Default: none.
    #[serde(default)]
    pub distances: Vec<PairDistance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistanceBand {
    pub up_to_m: u64,
    pub fare_fen: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairDistance {
    pub from: String,
    pub to: String,
    pub meters: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concession {
    /// Share of the fare the holder pays, percent (0 = free, 50 = half, 100 = full). The result
    /// is rounded to the nearest fen, halves up.
    pub pay_percent: u32,
}

fn fault(message: String) -> HandleError {
    HandleError::Internal(format!("configuration: {message}"))
}

impl Config {
    /// Check the rules the types cannot express.
    pub fn validate(&self) -> Result<(), HandleError> {
        minutes(&self.service_day_starts)?;
        if self.replay_window_minutes == 0 {
            return Err(fault("replay_window_minutes must be at least 1".into()));
        }
        let fares: Vec<u64> = match &self.fares {
            FareTable::Zones(z) => {
                if let Some((id, _)) = self.stations.iter().find(|(_, s)| s.zone.is_none()) {
                    return Err(fault(format!("station `{id}` has no zone (zone fares)")));
                }
                ascending(z.bands.iter().map(|b| u64::from(b.zones_up_to)), "zones_up_to")?;
                z.bands.iter().map(|b| b.fare_fen).collect()
            }
            FareTable::Distance(d) => {
                if let Some((id, _)) = self.stations.iter().find(|(_, s)| s.position_m.is_none()) {
                    return Err(fault(format!("station `{id}` has no position_m (distance fares)")));
                }
                if let Some(p) = d.distances.iter().find(|p| !self.stations.contains_key(&p.from) || !self.stations.contains_key(&p.to)) {
                    return Err(fault(format!("distance {}–{} names an unknown station", p.from, p.to)));
                }
                ascending(d.bands.iter().map(|b| b.up_to_m), "up_to_m")?;
                d.bands.iter().map(|b| b.fare_fen).collect()
            }
        };
        if fares.is_empty() {
            return Err(fault("the fare table has no bands".into()));
        }
        if fares.iter().any(|f| *f > self.max_fare_fen) {
            return Err(fault("a fare band exceeds max_fare_fen".into()));
        }
        if let Some((name, _)) = self.concessions.iter().find(|(_, c)| c.pay_percent > 100) {
            return Err(fault(format!("concession `{name}`: pay_percent above 100")));
        }
        Ok(())
    }

    /// The station a request's venue names, or `STATION_REQUIRED` / `STATION_UNKNOWN`.
    pub fn station<'a>(&'a self, venue: Option<&'a str>) -> Result<(&'a str, &'a Station), HandleError> {
        let id = venue.ok_or_else(|| HandleError::invalid("STATION_REQUIRED", "the tap names no station (request venue)"))?;
        let station = self
            .stations
            .get(id)
            .ok_or_else(|| HandleError::invalid("STATION_UNKNOWN", format!("station `{id}` is not served by this application")))?;
        Ok((id, station))
    }

    /// The full fare between two stations, capped at the maximum fare. A station no longer in
    /// the configuration (removed while a trip was open) makes the trip a maximum-fare trip.
    pub fn full_fare(&self, from: &str, to: &str) -> u64 {
        let (Some(a), Some(b)) = (self.stations.get(from), self.stations.get(to)) else {
            return self.max_fare_fen;
        };
        let fare = match &self.fares {
            FareTable::Zones(z) => {
                let touched = a.zone.unwrap_or(0).abs_diff(b.zone.unwrap_or(0)) + 1;
                z.bands.iter().find(|band| band.zones_up_to >= touched).map(|band| band.fare_fen)
            }
            FareTable::Distance(d) => {
                let listed = d.distances.iter().find(|p| (p.from == from && p.to == to) || (p.from == to && p.to == from));
                let meters = listed.map_or_else(|| a.position_m.unwrap_or(0).abs_diff(b.position_m.unwrap_or(0)), |p| p.meters);
                d.bands.iter().find(|band| band.up_to_m >= meters).map(|band| band.fare_fen)
            }
        };
        fare.unwrap_or(self.max_fare_fen).min(self.max_fare_fen)
    }

    /// What a holder of `category` pays of `full_fen`.
    pub fn concession_fare(&self, category: Option<&str>, full_fen: u64) -> u64 {
        match category.and_then(|c| self.concessions.get(c)) {
            Some(c) => (full_fen * u64::from(c.pay_percent) + 50) / 100,
            None => full_fen,
        }
    }

    pub fn replay_window_ms(&self) -> i64 {
        i64::from(self.replay_window_minutes) * 60_000
    }

    pub fn retention_ms(&self) -> u64 {
        u64::from(self.retention_days) * 86_400_000
    }

    /// The service day an instant belongs to (days since 1970-01-01 of its starting date).
    pub fn service_day(&self, at: Datetime) -> i64 {
        let starts = i64::from(minutes(&self.service_day_starts).unwrap_or(0));
        let local_ms = at.unix_ms + i64::from(at.utc_offset_minutes) * 60_000;
        (local_ms - starts * 60_000).div_euclid(86_400_000)
    }
}

/// A service day as the date it starts on, `YYYY-MM-DD`.
pub fn service_date(day: i64) -> String {
    let (y, m, d) = onecard_sdk::clock::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn ascending(values: impl Iterator<Item = u64>, what: &str) -> Result<(), HandleError> {
    let values: Vec<u64> = values.collect();
    if values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(fault(format!("fare bands must have strictly ascending `{what}`")));
    }
    Ok(())
}

/// Minutes since local midnight of an `HH:MM` time below 24:00.
fn minutes(hhmm: &str) -> Result<u32, HandleError> {
    let parsed = hhmm.split_once(':').and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
    match parsed {
        Some((h, m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(fault(format!("`{hhmm}` is not an HH:MM time"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    const DISTANCE: &str = r#"{"stations":{
        "A":{"name":"A","position_m":0},"B":{"name":"B","position_m":5000},
        "C":{"name":"C","position_m":13000},"D":{"name":"D","position_m":40000}},
      "fares":{"distance":{"bands":[{"up_to_m":6000,"fare_fen":200},{"up_to_m":12000,"fare_fen":300},
        {"up_to_m":22000,"fare_fen":400}],"distances":[{"from":"D","to":"A","meters":9000}]}},
      "max_fare_fen":600,
      "concessions":{"senior":{"pay_percent":0},"student":{"pay_percent":50},"odd":{"pay_percent":25}}}"#;

    #[test]
    fn distance_bands_pair_overrides_and_the_cap() {
        let c = config(DISTANCE);
        c.validate().unwrap();
        assert_eq!(c.full_fare("A", "A"), 200);
        assert_eq!(c.full_fare("A", "B"), 200);
        assert_eq!(c.full_fare("B", "A"), 200);
        assert_eq!(c.full_fare("A", "C"), 400);
        assert_eq!(c.full_fare("B", "C"), 300);
        assert_eq!(c.full_fare("A", "D"), 300, "the listed pair distance wins, either direction");
        assert_eq!(c.full_fare("B", "D"), 600, "beyond the last band: the maximum fare");
    }

    #[test]
    fn zone_bands() {
        let c = config(
            r#"{"stations":{"A":{"name":"A","zone":1},"B":{"name":"B","zone":2},"C":{"name":"C","zone":4}},
            "fares":{"zones":{"bands":[{"zones_up_to":1,"fare_fen":200},{"zones_up_to":2,"fare_fen":300}]}},
            "max_fare_fen":500}"#,
        );
        c.validate().unwrap();
        assert_eq!(c.full_fare("A", "A"), 200);
        assert_eq!(c.full_fare("A", "B"), 300);
        assert_eq!(c.full_fare("C", "A"), 500);
    }

    #[test]
    fn concessions_round_to_the_nearest_fen() {
        let c = config(DISTANCE);
        assert_eq!(c.concession_fare(Some("senior"), 300), 0);
        assert_eq!(c.concession_fare(Some("student"), 300), 150);
        assert_eq!(c.concession_fare(Some("odd"), 302), 76, "75.5 rounds up");
        assert_eq!(c.concession_fare(Some("odd"), 301), 75, "75.25 rounds down");
        assert_eq!(c.concession_fare(Some("pilot"), 300), 300, "unknown category pays in full");
        assert_eq!(c.concession_fare(None, 300), 300);
    }

    #[test]
    fn service_days_start_at_the_configured_local_time() {
        let c = config(DISTANCE);
        // 2026-11-23 10:00 +08:00 and 2026-11-24 03:59 belong to the service day of the 23rd.
        let t = |ms: i64| Datetime { unix_ms: ms, utc_offset_minutes: 480 };
        let monday_10 = 1_795_399_200_000;
        let day = c.service_day(t(monday_10));
        assert_eq!(service_date(day), "2026-11-23");
        assert_eq!(c.service_day(t(monday_10 + (17 * 60 + 59) * 60_000)), day);
        assert_eq!(c.service_day(t(monday_10 + 18 * 3_600_000)), day + 1);
        assert_eq!(c.service_day(t(monday_10 - 6 * 3_600_000 - 60_000)), day - 1, "03:59 belongs to the day before");
    }

    #[test]
    fn configuration_faults_are_named() {
        let bad = [
            (DISTANCE.replace("\"max_fare_fen\":600", "\"max_fare_fen\":300"), "exceeds max_fare_fen"),
            (DISTANCE.replace("\"position_m\":5000", "\"zone\":1"), "no position_m"),
            (DISTANCE.replace("12000", "5000"), "ascending"),
            (DISTANCE.replace("\"pay_percent\":25", "\"pay_percent\":125"), "above 100"),
            (DISTANCE.replace("\"from\":\"D\"", "\"from\":\"Z\""), "unknown station"),
            (DISTANCE.replace("\"max_fare_fen\":600", "\"max_fare_fen\":600,\"service_day_starts\":\"4am\""), "HH:MM"),
            (DISTANCE.replace("\"max_fare_fen\":600", "\"max_fare_fen\":600,\"replay_window_minutes\":0"), "replay_window"),
        ];
        for (json, needle) in bad {
            let err = config(&json).validate().unwrap_err();
            assert!(err.message().contains(needle), "{needle}: {}", err.message());
        }
        assert!(serde_json::from_str::<Config>(&DISTANCE.replace("\"max_fare_fen\"", "\"surprise\":1,\"max_fare_fen\"")).is_err());
    }
}
