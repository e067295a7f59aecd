//! A seeded random day of taps for several holders, checked against an independent, deliberately
//! plain computation of the rules (written from the module documentation, not from the plugin's
//! code), and the money balanced: per trip, the ledger's debits equal the fare the holder was
//! told.

use std::collections::BTreeMap;

use onecard_sdk::testing::Harness;

use super::*;

/// splitmix64: a tiny deterministic generator, so a failing seed replays exactly (the test
/// needs no random crate, and must not be random across runs).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- the independent model -------------------------------------------------------------

const STATIONS: [(&str, i64); 6] = [("A", 0), ("B", 2500), ("C", 6000), ("D", 9000), ("E", 15000), ("F", 30000)];
const MAX: u64 = 730;
const WINDOW: i64 = 5 * MINUTE;

fn position(station: &str) -> i64 {
    STATIONS.iter().find(|(s, _)| *s == station).unwrap().1
}

fn full_fare(a: &str, b: &str) -> u64 {
    let meters = if (a, b) == ("A", "F") || (a, b) == ("F", "A") { 8000 } else { (position(a) - position(b)).abs() };
    if meters <= 6000 {
        250
    } else if meters <= 12000 {
        390
    } else if meters <= 22000 {
        510
    } else {
        MAX
    }
}

fn pays(category: Option<&str>, full: u64) -> u64 {
    let percent = match category {
        Some("senior") => 0,
        Some("student") => 50,
        Some("child") => 45,
        _ => 100,
    };
    let hundredths = full * percent;
    hundredths / 100 + u64::from(hundredths % 100 >= 50)
}

/// Service day of an instant: local (+08:00) time minus the 04:00 start, in whole days.
fn service_day(at_ms: i64) -> i64 {
    (at_ms + 8 * HOUR - 4 * HOUR).div_euclid(24 * HOUR)
}

#[derive(Debug, Clone, PartialEq)]
struct Charged {
    rule: &'static str,
    entry: Option<String>,
    exit: Option<String>,
    fare: u64,
}

#[derive(Default)]
struct Rider {
    category: Option<&'static str>,
    open: Option<(String, i64, String)>, // station, at, idempotency key
    last_exit: Option<(String, i64, String, u64)>, // station, at, key, fare told
}

/// What the model expects a tap to answer: a replay (of a trip with this fare, for exits) or
/// the charges it makes, in the order the plugin reports them (`charged` first, then the trip).
#[derive(Debug, PartialEq)]
enum Expect {
    Replay(Option<u64>),
    Charges(Vec<Charged>),
}

impl Rider {
    fn open_entry(&self, station: &str) -> Charged {
        Charged { rule: "open_entry", entry: Some(station.into()), exit: None, fare: pays(self.category, MAX) }
    }

    fn tap_in(&mut self, station: &str, at: i64, key: &str) -> Expect {
        if let Some((s, t, k)) = &self.open
            && (k == key || (s == station && (0..=WINDOW).contains(&(at - t))))
        {
            return Expect::Replay(None);
        }
        let mut charges = Vec::new();
        if let Some((s, _, _)) = self.open.take() {
            charges.push(self.open_entry(&s));
        }
        self.open = Some((station.into(), at, key.into()));
        Expect::Charges(charges)
    }

    fn tap_out(&mut self, station: &str, at: i64, key: &str) -> Expect {
        if let Some((s, t, k, fare)) = &self.last_exit
            && at - t < WINDOW
            && (k == key || (self.open.is_none() && s == station))
        {
            return Expect::Replay(Some(*fare));
        }
        let mut charges = Vec::new();
        let trip = match self.open.take() {
            Some((s, t, _)) if service_day(t) == service_day(at) => {
                Charged { rule: "fare", entry: Some(s.clone()), exit: Some(station.into()), fare: pays(self.category, full_fare(&s, station)) }
            }
            stale => {
                if let Some((s, _, _)) = stale {
                    charges.push(self.open_entry(&s));
                }
                Charged { rule: "exit_without_entry", entry: None, exit: Some(station.into()), fare: pays(self.category, MAX) }
            }
        };
        self.last_exit = Some((station.into(), at, key.into(), trip.fare));
        charges.push(trip);
        Expect::Charges(charges)
    }
}

// ---- the day -----------------------------------------------------------------------------

struct Tap {
    at: i64,
    holder: usize,
    action: &'static str,
    station: &'static str,
    key: String,
}

const CATEGORIES: [Option<&str>; 6] = [None, Some("senior"), Some("student"), Some("child"), None, Some("pilot")];

/// Each holder taps from 05:00 to 06:00 the next day (across the 04:00 service-day boundary):
/// entries, exits, repeats at the same gate soon after, and exact retries.
fn day_of_taps(rng: &mut SplitMix) -> Vec<Tap> {
    let start = MONDAY_10AM - 5 * HOUR;
    let mut taps = Vec::new();
    for holder in 0..CATEGORIES.len() {
        let mut at = start + rng.below(60) as i64 * MINUTE;
        let mut n = 0;
        while at < start + 25 * HOUR {
            let roll = rng.below(100);
            let previous = taps.iter().rev().find(|t: &&Tap| t.holder == holder);
            let tap = match previous {
                Some(p) if roll < 8 => Tap { at: at.max(p.at), holder, action: p.action, station: p.station, key: p.key.clone() },
                Some(p) if roll < 16 => {
                    let at = p.at + rng.below(7) as i64 * MINUTE;
                    Tap { at, holder, action: p.action, station: p.station, key: format!("h{holder}-{n}") }
                }
                _ => {
                    // Mostly the other tap than the last one: riders mostly travel, sometimes not.
                    let last_in = previous.is_some_and(|p| p.action == "tap_in");
                    let action = if (rng.below(100) < 85) != last_in { "tap_in" } else { "tap_out" };
                    let station = STATIONS[rng.below(STATIONS.len() as u64) as usize].0;
                    Tap { at, holder, action, station, key: format!("h{holder}-{n}") }
                }
            };
            at = tap.at + (1 + rng.below(150) as i64) * MINUTE;
            taps.push(tap);
            n += 1;
        }
    }
    taps.sort_by_key(|t| (t.at, t.holder));
    taps
}

fn charged(v: &Value) -> Charged {
    let rule = match v["rule"].as_str().unwrap() {
        "fare" => "fare",
        "open_entry" => "open_entry",
        "exit_without_entry" => "exit_without_entry",
        other => panic!("rule {other}"),
    };
    let station = |s: &Value| s.as_str().map(str::to_owned);
    Charged { rule, entry: station(&v["entry_station"]), exit: station(&v["exit_station"]), fare: v["fare_fen"].as_u64().unwrap() }
}

fn run_day(seed: u64) {
    let mut rng = SplitMix(seed);
    let taps = day_of_taps(&mut rng);
    let mut h = Harness::new();
    let received = fare_system(&mut h);
    let mut riders: Vec<Rider> = CATEGORIES.iter().map(|c| Rider { category: *c, ..Rider::default() }).collect();
    // Per holder, trip id -> fare told at a tap; every trip the model expects, in order.
    let mut told: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); riders.len()];
    let mut expected: Vec<Vec<Charged>> = vec![Vec::new(); riders.len()];
    let (mut replays, mut rules) = (0, BTreeMap::<&str, usize>::new());

    for (i, t) in taps.iter().enumerate() {
        let holder = format!("holder-{}", t.holder);
        let mut request = tap(&h, t.action, &holder, t.station, &t.key);
        if let Some(c) = CATEGORIES[t.holder] {
            request = request.with_attribute("holder.category", c);
        }
        h.set_now_ms(t.at);
        let answer = h.ok(&request);
        let rider = &mut riders[t.holder];
        let expect = if t.action == "tap_in" { rider.tap_in(t.station, t.at, &t.key) } else { rider.tap_out(t.station, t.at, &t.key) };
        let context = format!("seed {seed}, tap {i}: {} {} {} at {}", holder, t.action, t.station, t.at);
        let mut reported: Vec<&Value> = answer["charged"].as_array().unwrap().iter().collect();
        if t.action == "tap_out" && answer["replayed"] == false {
            reported.push(&answer);
        }
        let actual = if answer["replayed"] == true {
            replays += 1;
            Expect::Replay(answer.get("fare_fen").and_then(Value::as_u64))
        } else {
            Expect::Charges(reported.iter().map(|v| charged(v)).collect())
        };
        assert_eq!(actual, expect, "{context}");
        for v in reported {
            told[t.holder].insert(v["trip_id"].as_str().unwrap().to_owned(), v["fare_fen"].as_u64().unwrap());
        }
        if let Expect::Charges(charges) = expect {
            for c in &charges {
                *rules.entry(c.rule).or_default() += 1;
            }
            expected[t.holder].extend(charges);
        }
    }

    // The next morning, after the service day ended: the uploads charge what is still open.
    h.set_now_ms(MONDAY_10AM + 43 * HOUR);
    for (i, rider) in riders.iter_mut().enumerate() {
        if let Some((s, _, _)) = rider.open.take() {
            let trip = rider.open_entry(&s);
            *rules.entry(trip.rule).or_default() += 1;
            expected[i].push(trip);
        }
    }
    for _ in 0..20 {
        let run = h.ok(&upload(&h));
        if run["remaining"] == 0 && run["open_entries_watched"] == 0 {
            break;
        }
    }

    let ledger = h.ledger();
    let mut all_trips = 0;
    for (i, want) in expected.iter().enumerate() {
        let history = h.ok(&history(&h, &format!("holder-{i}")));
        let trips: Vec<&Value> = history["trips"].as_array().unwrap().iter().rev().collect();
        let got: Vec<Charged> = trips.iter().map(|v| charged(v)).collect();
        assert_eq!(&got, want, "seed {seed}: holder {i}'s trips, in order");
        for trip in trips {
            let id = trip["trip_id"].as_str().unwrap();
            let fare = trip["fare_fen"].as_u64().unwrap();
            assert_eq!(trip["state"], "uploaded", "seed {seed}: {id}");
            if let Some(at_tap) = told[i].get(id) {
                assert_eq!(*at_tap, fare, "seed {seed}: {id}: the fare told at the gate is the fare stored");
            } else {
                assert_eq!(trip["rule"], "open_entry", "seed {seed}: only the sweep closes trips no gate told");
            }
            let debits: Vec<&onecard_sdk::payments::Payment> = ledger.iter().filter(|p| p.idempotency_key == id).collect();
            let debited: u64 = debits.iter().map(|p| p.amount_fen).sum();
            assert_eq!(debited, fare, "seed {seed}: {id}: ledger debits equal the fare");
            assert!(debits.iter().all(|p| p.account == format!("acct-holder-{i}") && p.reference == id));
            let uploads: Vec<_> = received.borrow().iter().filter(|(k, _)| k == id).map(|(_, b)| b["fare_fen"].as_u64()).collect();
            assert_eq!(uploads, [Some(fare)], "seed {seed}: {id}: uploaded once, with its fare");
            all_trips += 1;
        }
    }
    assert_eq!(ledger.len(), ledger.iter().map(|p| &p.idempotency_key).collect::<std::collections::BTreeSet<_>>().len(), "one debit per trip");
    let total: u64 = expected.iter().flatten().map(|c| c.fare).sum();
    assert_eq!(ledger.iter().map(|p| p.amount_fen).sum::<u64>(), total, "seed {seed}: money balances");
    assert_eq!(received.borrow().len(), all_trips);
    // The day must exercise every rule and the replays, or it proves little.
    eprintln!("seed {seed}: {} taps, {replays} replays, {rules:?}", taps.len());
    assert!(replays > 0 && rules.len() == 3 && rules.values().all(|n| *n > 1), "seed {seed}: {replays} replays, {rules:?}");
}

#[test]
fn a_day_of_random_taps_matches_an_independent_computation() {
    for seed in [1, 2, 3, 20_261_123, 0xDEAD_BEEF] {
        run_day(seed);
    }
}
