//! Tests of the rate limiters, on governor's fake clock: no test sleeps to let quota replenish.

use std::sync::Arc;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use onecard_catalog::Catalog;
use onecard_catalog::model::Limits;
use onecard_catalog::snapshot::{ResolvedPolicy, Snapshot};

use super::limiter::ScopeLimiter;
use super::store::KeyId;
use super::*;

const APP: &str = "parks";

fn app(limits: Limits) -> ResolvedPolicy {
    ResolvedPolicy { application: APP.into(), channel: None, venue: None, holder: None, limits }
}

fn channel(id: &str, limits: Limits) -> ResolvedPolicy {
    ResolvedPolicy { channel: Some(id.into()), ..app(limits) }
}

fn venue(id: &str, limits: Limits) -> ResolvedPolicy {
    ResolvedPolicy { venue: Some(id.into()), ..app(limits) }
}

fn holder(card: &str, limits: Limits) -> ResolvedPolicy {
    ResolvedPolicy { holder: Some(card.into()), ..app(limits) }
}

fn limits(channel: Option<u32>, venue: Option<u32>, minute: Option<u32>, day: Option<u32>) -> Limits {
    Limits { channel_per_minute: channel, venue_per_minute: venue, holder_per_minute: minute, holder_per_day: day }
}

fn snapshot(policies: Vec<ResolvedPolicy>) -> Snapshot {
    let at = "2026-01-01T00:00:00Z".parse().expect("timestamp");
    let mut s = Snapshot::build(&Catalog::default(), 1, at, chrono::Duration::hours(1));
    s.policies = policies;
    s
}

fn limiters(policies: Vec<ResolvedPolicy>) -> (Limiters<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let l = Limiters::with_clock(LimitsConfig::default(), clock.clone());
    l.update(&snapshot(policies));
    (l, clock)
}

fn key<'a>(channel: &'a str, venue: Option<&'a str>, holder: Option<&'a str>) -> LimitKey<'a> {
    LimitKey { app: APP, channel, venue, holder }
}

fn admitted(l: &Limiters<FakeRelativeClock>, k: &LimitKey<'_>) -> LimitStatus {
    l.check(k).expect("admitted").expect("a limit applies")
}

fn refused(l: &Limiters<FakeRelativeClock>, k: &LimitKey<'_>) -> RateLimited {
    l.check(k).expect_err("refused")
}

fn header<'h>(h: &'h [(http::HeaderName, http::HeaderValue)], name: &str) -> &'h str {
    h.iter().find(|(n, _)| n.as_str() == name).and_then(|(_, v)| v.to_str().ok()).unwrap_or("")
}

#[test]
fn no_policy_means_no_limit_and_no_state() {
    let (l, _) = limiters(vec![app(Limits::default())]);
    for _ in 0..1000 {
        assert_eq!(l.check(&key("c1", Some("v1"), Some("card"))), Ok(None));
        assert_eq!(l.check(&LimitKey { app: "unknown", ..key("c1", None, None) }), Ok(None));
    }
    assert_eq!(l.tracked_keys(), 0);
}

#[test]
fn channel_limit_admits_its_burst_then_refuses_until_a_request_replenishes() {
    let (l, clock) = limiters(vec![app(limits(Some(2), None, None, None))]);
    let k = key("c1", None, None);
    let first = admitted(&l, &k);
    assert_eq!((first.limit, first.remaining, first.policy.as_str()), (2, 1, "2;w=60"));
    assert_eq!(first.reset, Duration::from_secs(30));
    assert_eq!(admitted(&l, &k).remaining, 0);

    let r = refused(&l, &k);
    assert_eq!((r.level, r.limit, r.retry_after), (Level::Channel, 2, Duration::from_secs(30)));
    // Another channel has its own state.
    assert_eq!(admitted(&l, &key("c2", None, None)).remaining, 1);

    clock.advance(Duration::from_secs(29));
    assert_eq!(refused(&l, &k).retry_after, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&l, &k).remaining, 0);
}

#[test]
fn refused_holder_requests_do_not_consume_channel_quota() {
    let (l, _) = limiters(vec![app(limits(Some(100), None, Some(1), None))]);
    admitted(&l, &key("c1", None, Some("card-a")));
    for _ in 0..10 {
        assert_eq!(refused(&l, &key("c1", None, Some("card-a"))).level, Level::HolderMinute);
    }
    // Only the one admitted request counted on the channel: this is its second.
    let channel_only = admitted(&l, &key("c1", None, None));
    assert_eq!((channel_only.limit, channel_only.remaining), (100, 98));
}

#[test]
fn a_request_that_loses_a_race_after_the_peek_gives_back_what_it_took() {
    let (l, _) = limiters(vec![app(limits(Some(100), None, Some(1), None))]);
    let racer = key("c2", None, Some("card-a"));
    let r = l
        .check_with(&key("c1", None, Some("card-a")), || {
            // Passes the peek of the request below, then takes the holder's only request.
            admitted(&l, &racer);
        })
        .expect_err("the holder's request went to the racer");
    assert_eq!(r.level, Level::HolderMinute);
    // The loser took channel c1 before finding the holder spent, and gave it back.
    assert_eq!(admitted(&l, &key("c1", None, None)).remaining, 99);
    assert_eq!(admitted(&l, &key("c2", None, None)).remaining, 98);
}

#[test]
fn refused_channel_requests_do_not_consume_holder_quota() {
    let (l, _) = limiters(vec![
        app(limits(Some(100), None, Some(5), None)),
        channel("narrow", limits(Some(1), None, Some(5), None)),
        channel("wide", limits(Some(100), None, Some(5), None)),
    ]);
    admitted(&l, &key("narrow", None, Some("card-a")));
    for _ in 0..10 {
        let r = refused(&l, &key("narrow", None, Some("card-a")));
        assert_eq!((r.level, r.limit), (Level::Channel, 1));
    }
    // The holder spent one request, not eleven: this is the second of five.
    let s = admitted(&l, &key("wide", None, Some("card-a")));
    assert_eq!((s.limit, s.remaining), (5, 3));
}

#[test]
fn refused_venue_requests_consume_neither_channel_nor_holder_quota() {
    let (l, _) = limiters(vec![
        app(limits(Some(100), Some(10), Some(50), None)),
        venue("gate-1", limits(Some(100), Some(1), Some(50), None)),
    ]);
    admitted(&l, &key("c1", Some("gate-1"), Some("card-a")));
    for _ in 0..5 {
        assert_eq!(refused(&l, &key("c1", Some("gate-1"), Some("card-a"))).level, Level::Venue);
    }
    assert_eq!(admitted(&l, &key("c1", None, None)).remaining, 98);
    let holder = admitted(&l, &key("c2", None, Some("card-a")));
    assert_eq!((holder.limit, holder.remaining), (50, 48));
}

#[test]
fn holder_day_quota_refuses_while_the_minute_quota_would_admit() {
    let (l, clock) = limiters(vec![app(limits(None, None, Some(10), Some(3)))]);
    let k = key("c1", None, Some("card-a"));
    for expected in [2, 1, 0] {
        let s = admitted(&l, &k);
        assert_eq!((s.limit, s.remaining, s.policy.as_str()), (3, expected, "3;w=86400"));
    }
    let r = refused(&l, &k);
    assert_eq!((r.level, r.limit), (Level::HolderDay, 3));
    assert_eq!(r.retry_after, Duration::from_secs(86_400 / 3));
    assert!(r.message().contains("per day"), "{}", r.message());

    // A minute later the minute quota is full again and the day quota still refuses.
    clock.advance(Duration::from_secs(60));
    assert_eq!(refused(&l, &k).level, Level::HolderDay);
    // One day-replenishment later, one more request.
    clock.advance(Duration::from_secs(86_400 / 3));
    assert_eq!(admitted(&l, &k).remaining, 0);
    assert_eq!(refused(&l, &k).level, Level::HolderDay);
}

#[test]
fn when_several_levels_refuse_the_one_freeing_up_last_is_reported() {
    let (l, _) = limiters(vec![app(limits(Some(1), None, Some(1), Some(1)))]);
    let k = key("c1", None, Some("card-a"));
    admitted(&l, &k);
    let r = refused(&l, &k);
    assert_eq!((r.level, r.retry_after), (Level::HolderDay, Duration::from_secs(86_400)));
}

#[test]
fn the_tightest_level_is_reported_with_draft_06_headers() {
    let (l, _) = limiters(vec![app(limits(Some(100), Some(5), Some(10), Some(1000)))]);
    let s = admitted(&l, &key("c1", Some("gate-1"), Some("card-a")));
    assert_eq!((s.limit, s.remaining, s.policy.as_str()), (5, 4, "5;w=60"));
    assert_eq!(s.reset, Duration::from_secs(12));
    let h = s.headers();
    assert_eq!(header(&h, "ratelimit-limit"), "5");
    assert_eq!(header(&h, "ratelimit-remaining"), "4");
    assert_eq!(header(&h, "ratelimit-reset"), "12");
    assert_eq!(header(&h, "ratelimit-policy"), "5;w=60");
}

#[test]
fn entries_of_their_own_override_the_application_default() {
    let (l, _) = limiters(vec![
        app(limits(None, Some(10), Some(2), None)),
        venue("small", limits(None, Some(1), Some(2), None)),
        holder("vip", limits(None, Some(10), None, None)),
    ]);
    admitted(&l, &key("c1", Some("small"), None));
    assert_eq!(refused(&l, &key("c1", Some("small"), None)).limit, 1);
    for _ in 0..10 {
        admitted(&l, &key("c1", Some("big"), None));
    }
    assert_eq!(refused(&l, &key("c1", Some("big"), None)).limit, 10);
    // A holder whose own entry sets no per-minute limit is not limited per minute.
    for _ in 0..5 {
        assert_eq!(l.check(&key("c1", None, Some("vip"))), Ok(None));
    }
    admitted(&l, &key("c1", None, Some("someone")));
    admitted(&l, &key("c1", None, Some("someone")));
    assert_eq!(refused(&l, &key("c1", None, Some("someone"))).limit, 2);
}

#[test]
fn a_zero_limit_admits_nothing_and_consumes_nothing_elsewhere() {
    let (l, _) = limiters(vec![
        app(limits(Some(10), None, Some(5), None)),
        venue("closed", limits(Some(10), Some(0), Some(5), None)),
    ]);
    for _ in 0..3 {
        let r = refused(&l, &key("c1", Some("closed"), Some("card-a")));
        assert_eq!((r.level, r.limit, r.retry_after), (Level::Venue, 0, Duration::from_secs(60)));
    }
    assert_eq!(admitted(&l, &key("c1", None, None)).remaining, 9);
}

#[test]
fn changing_a_venue_policy_keeps_a_limited_holder_limited() {
    let base = app(limits(Some(100), Some(50), Some(1), Some(3)));
    let (l, _) = limiters(vec![base.clone(), venue("gate-1", limits(Some(100), Some(50), Some(1), Some(3)))]);
    let k = key("c1", None, Some("card-a"));
    admitted(&l, &k);
    assert_eq!(refused(&l, &k).level, Level::HolderMinute);
    let channel_before = admitted(&l, &key("c1", None, None)).remaining;

    l.update(&snapshot(vec![base.clone(), venue("gate-1", limits(Some(100), Some(7), Some(1), Some(3)))]));
    assert_eq!(refused(&l, &k).level, Level::HolderMinute, "holder state survived the venue change");
    assert_eq!(admitted(&l, &key("c1", None, None)).remaining, channel_before - 1, "channel state survived");
    assert_eq!(admitted(&l, &key("c1", Some("gate-1"), None)).limit, 7, "the venue got its new limit");

    // Re-applying the same snapshot changes nothing either.
    l.update(&snapshot(vec![base, venue("gate-1", limits(Some(100), Some(7), Some(1), Some(3)))]));
    assert_eq!(refused(&l, &k).level, Level::HolderMinute);
}

#[test]
fn changing_the_application_holder_quota_restarts_that_level_only() {
    let (l, _) = limiters(vec![app(limits(None, None, Some(1), Some(3)))]);
    let k = key("c1", None, Some("card-a"));
    assert_eq!(admitted(&l, &k).remaining, 0);
    assert_eq!(refused(&l, &k).level, Level::HolderMinute);

    l.update(&snapshot(vec![app(limits(None, None, Some(10), Some(3)))]));
    // The per-minute state starts over under the new limit; the per-day state is kept (this is
    // the holder's second request of three for the day, so the day level is the tightest).
    let s = admitted(&l, &k);
    assert_eq!((s.limit, s.remaining), (3, 1));
}

#[test]
fn a_removed_entry_falls_back_to_the_application_default() {
    let (l, _) =
        limiters(vec![app(limits(None, Some(5), None, None)), venue("gate-1", limits(None, Some(1), None, None))]);
    admitted(&l, &key("c1", Some("gate-1"), None));
    assert_eq!(refused(&l, &key("c1", Some("gate-1"), None)).limit, 1);
    let keys_before = l.tracked_keys();
    l.update(&snapshot(vec![app(limits(None, Some(5), None, None))]));
    assert_eq!(l.tracked_keys(), keys_before - 1, "the removed venue limiter and its state are gone");
    assert_eq!(admitted(&l, &key("c1", Some("gate-1"), None)).limit, 5);
}

#[test]
fn an_application_removed_from_the_snapshot_is_no_longer_limited() {
    let (l, _) = limiters(vec![app(limits(Some(1), None, None, None))]);
    admitted(&l, &key("c1", None, None));
    refused(&l, &key("c1", None, None));
    l.update(&snapshot(vec![]));
    assert_eq!(l.check(&key("c1", None, None)), Ok(None));
    assert_eq!(l.tracked_keys(), 0);
}

#[test]
fn prune_bounds_memory_over_many_distinct_holders() {
    let (l, clock) = limiters(vec![app(limits(None, None, Some(10), Some(1000)))]);
    for i in 0..100_000 {
        let card = format!("card-{i}");
        admitted(&l, &key("c1", None, Some(&card)));
    }
    // Two levels (minute and day) per holder.
    assert_eq!(l.tracked_keys(), 200_000);
    l.prune();
    assert_eq!(l.tracked_keys(), 200_000, "nothing has replenished yet");

    // One holder stays active and limited.
    let active = key("c1", None, Some("active"));
    for _ in 0..10 {
        admitted(&l, &active);
    }
    // Past a day-replenishment (86.4 s) and then some, every one-off holder is back to full.
    clock.advance(Duration::from_secs(180));
    admitted(&l, &active);
    l.prune();
    assert_eq!(l.tracked_keys(), 2, "only the active holder's two states remain");
    // Pruning kept the active holder's state: this is its second request within the minute
    // window (a fresh state would show 9 remaining).
    let s = admitted(&l, &active);
    assert_eq!((s.limit, s.remaining), (10, 8));
}

#[test]
fn prune_keeps_a_holder_that_is_still_limited() {
    let (l, clock) = limiters(vec![app(limits(None, None, Some(1), None))]);
    let k = key("c1", None, Some("card-a"));
    admitted(&l, &k);
    clock.advance(Duration::from_secs(30));
    l.prune();
    assert_eq!(refused(&l, &k).retry_after, Duration::from_secs(30));
}

#[tokio::test]
async fn the_background_pruner_prunes_and_stops_with_the_limiters() {
    let clock = FakeRelativeClock::default();
    let config: LimitsConfig = toml::from_str("prune_interval_ms = 1").expect("config");
    let l = Arc::new(Limiters::with_clock(config, clock.clone()));
    l.update(&snapshot(vec![app(limits(None, None, Some(10), None))]));
    for i in 0..100 {
        let card = format!("card-{i}");
        l.check(&key("c1", None, Some(&card))).expect("admitted");
    }
    assert_eq!(l.tracked_keys(), 100);
    clock.advance(Duration::from_secs(60));
    let task = l.spawn_pruner();
    // Waits (in 1 ms steps, at most 10 s) for the pruner to have run: an event, not a timing goal.
    for _ in 0..10_000 {
        if l.tracked_keys() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(l.tracked_keys(), 0);
    drop(l);
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the pruner stops").expect("no panic");
}

#[test]
fn limits_config_defaults_and_refuses_bad_input() {
    let default: LimitsConfig = toml::from_str("").expect("empty config");
    assert_eq!(default, LimitsConfig::default());
    assert_eq!(default.prune_interval(), Duration::from_secs(60));
    let zero = toml::from_str::<LimitsConfig>("prune_interval_ms = 0").expect_err("zero refused");
    assert!(zero.to_string().contains("nonzero"), "{zero}");
    let unknown = toml::from_str::<LimitsConfig>("prune_every = 5").expect_err("unknown field refused");
    assert!(unknown.to_string().contains("prune_every"), "{unknown}");
}

#[test]
fn rate_limited_has_a_stable_code_a_message_and_rounded_up_retry_after() {
    let r = RateLimited { level: Level::HolderMinute, limit: 20, retry_after: Duration::from_millis(1200) };
    assert_eq!(r.code(), "RATE_LIMITED");
    assert!(
        r.message().contains("holder_per_minute") && r.message().contains("20 requests per minute"),
        "{}",
        r.message()
    );
    let h = r.headers();
    assert_eq!(header(&h, "retry-after"), "2");
    assert_eq!(header(&h, "ratelimit-limit"), "20");
    assert_eq!(header(&h, "ratelimit-remaining"), "0");
    assert_eq!(header(&h, "ratelimit-reset"), "2");
    assert_eq!(header(&h, "ratelimit-policy"), "20;w=60");
    let now = RateLimited { retry_after: Duration::ZERO, ..r };
    assert_eq!(header(&now.headers(), "retry-after"), "1", "Retry-After is at least 1");
}

#[test]
fn a_refund_gives_back_exactly_the_request_taken() {
    let clock = FakeRelativeClock::default();
    let lim = ScopeLimiter::new(Level::Channel, 3, false, &clock);
    let id = KeyId(7);
    assert_eq!(lim.take(id).expect("1").remaining_burst_capacity(), 2);
    assert_eq!(lim.take(id).expect("2").remaining_burst_capacity(), 1);
    lim.refund(id);
    assert_eq!(lim.take(id).expect("2 again").remaining_burst_capacity(), 1);
    // A refund of a fresh key changes nothing, and peeking consumes nothing.
    lim.refund(KeyId(8));
    for _ in 0..5 {
        lim.peek(KeyId(8)).expect("peek");
    }
    assert_eq!(lim.take(KeyId(8)).expect("fresh").remaining_burst_capacity(), 2);
    // Refunding after time has passed gives back one request, no more.
    clock.advance(Duration::from_secs(60));
    assert_eq!(lim.take(id).expect("full").remaining_burst_capacity(), 2);
    lim.refund(id);
    lim.refund(id);
    assert_eq!(lim.take(id).expect("full again").remaining_burst_capacity(), 2);
}

#[test]
fn concurrent_checks_never_admit_more_than_the_limit() {
    let (l, _) = limiters(vec![app(limits(Some(50), None, Some(30), None))]);
    let l = Arc::new(l);
    let count: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                s.spawn(move || (0..100).filter(|_| l.check(&key("c1", None, Some("card-a"))).is_ok()).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(count, 30);
    // Refused requests gave back whatever they took: the channel counted exactly 30.
    assert_eq!(admitted(&l, &key("c1", None, None)).remaining, 50 - 30 - 1);
}

#[test]
fn the_production_limiters_are_shareable_and_use_the_real_clock() {
    fn shareable<T: Send + Sync + 'static>(_: &T) {}
    let l: Arc<Limiters> = Arc::new(Limiters::new(LimitsConfig::default()));
    shareable(&l);
    l.update(&snapshot(vec![app(limits(Some(1), None, None, None))]));
    assert_eq!(admitted_real(&l).remaining, 0);
    let r = l.check(&key("c1", None, None)).expect_err("refused");
    assert_eq!((r.level, r.limit), (Level::Channel, 1));
    assert!(r.retry_after <= Duration::from_secs(60));
    assert!(format!("{l:?}").contains("tracked_keys: 1"), "{l:?}");
}

fn admitted_real(l: &Limiters) -> LimitStatus {
    l.check(&key("c1", None, None)).expect("admitted").expect("a limit applies")
}
