//! A native test harness: run a plugin's handler without a gateway, against in-memory backends,
//! and assert on the host calls it made.
//!
//! ```
//! # use onecard_sdk::{testing::{Harness, HostCall}, *};
//! # struct Echo;
//! # impl Plugin for Echo {
//! #     fn describe() -> PluginInfo { PluginInfo::new("echo", "1.0.0") }
//! #     fn handle(r: Request) -> Result<Response, HandleError> {
//! #         kv::increment("calls", 1, None)?;
//! #         Response::json(&r.params)
//! #     }
//! # }
//! let mut harness = Harness::new();
//! harness.call::<Echo>(&harness.request("echo", "{}")).unwrap();
//! assert_eq!(harness.kv_value("calls").as_deref(), Some(&b"1"[..]));
//! assert!(harness.calls().contains(&HostCall::KvIncrement { key: "calls".into(), delta: 1 }));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::errors::{CardError, HttpError, KvError, PaymentError};
use crate::host::clock::Datetime;
use crate::host::http::{IncomingResponse, OutgoingRequest};
use crate::host::log::Level;
use crate::host::payments::{Payment, Receipt};
use crate::plugin::Plugin;
use crate::types::{Assurance, CardStatus, CardView, HandleError, Request, Response};

/// What a plugin can ask of its host. The gateway implements it over real backends; the
/// [`Harness`] implements it in memory. Natively, the SDK's capability functions call the host
/// installed on the current thread.
pub trait Host {
    fn card_status(&mut self) -> Result<CardStatus, CardError>;
    fn card_attribute(&mut self, scope: &str) -> Result<String, CardError>;
    fn http_send(&mut self, backend: &str, request: &OutgoingRequest) -> Result<IncomingResponse, HttpError>;
    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn kv_set(&mut self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError>;
    fn kv_delete(&mut self, key: &str) -> Result<bool, KvError>;
    fn kv_compare_and_swap(&mut self, key: &str, expected: Option<&[u8]>, new: &[u8], ttl_ms: Option<u64>) -> Result<bool, KvError>;
    fn kv_increment(&mut self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError>;
    fn payments_submit(&mut self, payment: &Payment) -> Result<Receipt, PaymentError>;
    fn log(&mut self, level: Level, message: &str);
    fn now(&mut self) -> Datetime;
}

thread_local! {
    static HOST: RefCell<Option<Box<dyn Host>>> = const { RefCell::new(None) };
}

/// Run `f` against the host installed on this thread.
///
/// # Panics
/// When no host is installed: natively, plugin code runs only inside [`Harness::call`] or
/// [`with_installed_host`].
pub(crate) fn with_host<R>(f: impl FnOnce(&mut dyn Host) -> R) -> R {
    HOST.with(|cell| {
        let mut slot = cell.borrow_mut();
        let host = slot
            .as_mut()
            .expect("no onecard host on this thread: run plugin code through testing::Harness");
        f(host.as_mut())
    })
}

/// Install `host` on this thread while `f` runs (for custom hosts, e.g. benchmarks).
pub fn with_installed_host<R>(host: Box<dyn Host>, f: impl FnOnce() -> R) -> R {
    let previous = HOST.with(|cell| cell.borrow_mut().replace(host));
    let result = f();
    HOST.with(|cell| *cell.borrow_mut() = previous);
    result
}

/// A host call the plugin made, in order, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCall {
    CardStatus,
    CardAttribute { scope: String },
    Http { backend: String, path: String },
    KvGet { key: String },
    KvSet { key: String },
    KvDelete { key: String },
    KvCompareAndSwap { key: String, swapped: bool },
    KvIncrement { key: String, delta: i64 },
    Payment { kind: String, amount_fen: u64, idempotency_key: String },
    Log { level: String, message: String },
    Now,
}

type HttpScript = Box<dyn FnMut(&str, &OutgoingRequest) -> Result<IncomingResponse, HttpError>>;

#[derive(Default)]
struct State {
    now_ms: i64,
    utc_offset_minutes: i32,
    card: Option<CardView>,
    kv: BTreeMap<String, (Vec<u8>, Option<i64>)>,
    http: Option<HttpScript>,
    payment_failure: Option<PaymentError>,
    receipts: BTreeMap<String, Receipt>,
    ledger: Vec<Payment>,
    calls: Vec<HostCall>,
}

/// In-memory backends and a fixed clock for running a plugin natively.
pub struct Harness {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// 2026-11-23 10:00 in China (+08:00): a Monday morning, inside ordinary opening hours.
pub const DEFAULT_NOW_MS: i64 = 1_795_399_200_000;

impl Harness {
    pub fn new() -> Self {
        let state = State { now_ms: DEFAULT_NOW_MS, utc_offset_minutes: 480, ..State::default() };
        Harness { state: Rc::new(RefCell::new(state)) }
    }

    /// A request for `action` with `params` (JSON) and no card, on a test channel.
    pub fn request(&self, action: &str, params: &str) -> Request {
        Request {
            app: "test-app".into(),
            action: action.into(),
            request_id: format!("req-{}", self.state.borrow().calls.len()),
            channel: "3300000001".into(),
            venue: None,
            terminal: None,
            params: params.into(),
            config: "{}".into(),
            card: None,
            idempotency_key: format!("idem-{action}-{params}"),
        }
    }

    /// Call `P::handle` with this harness as the host.
    pub fn call<P: Plugin>(&mut self, request: &Request) -> Result<Response, HandleError> {
        self.state.borrow_mut().card = request.card.clone();
        let host = HarnessHost(Rc::clone(&self.state));
        with_installed_host(Box::new(host), || P::handle(request.clone()))
    }

    /// Move the clock (unix milliseconds).
    pub fn set_now_ms(&mut self, unix_ms: i64) {
        self.state.borrow_mut().now_ms = unix_ms;
    }

    pub fn now_ms(&self) -> i64 {
        self.state.borrow().now_ms
    }

    /// Script outbound HTTP: `f(backend, request)` answers every `http::send`.
    pub fn on_http(&mut self, f: impl FnMut(&str, &OutgoingRequest) -> Result<IncomingResponse, HttpError> + 'static) {
        self.state.borrow_mut().http = Some(Box::new(f));
    }

    /// Make every later payment fail with `error` (`None` to succeed again).
    pub fn fail_payments(&mut self, error: Option<PaymentError>) {
        self.state.borrow_mut().payment_failure = error;
    }

    /// Payments that moved money, in order (one per idempotency key).
    pub fn ledger(&self) -> Vec<Payment> {
        self.state.borrow().ledger.clone()
    }

    /// The live value of a key.
    pub fn kv_value(&self, key: &str) -> Option<Vec<u8>> {
        let mut state = self.state.borrow_mut();
        live(&mut state, key).cloned()
    }

    /// Every host call so far, in order.
    pub fn calls(&self) -> Vec<HostCall> {
        self.state.borrow().calls.clone()
    }

    /// Log messages so far.
    pub fn logs(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                HostCall::Log { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }
}

impl Request {
    /// Present a normal card with real-card assurance, issued in `330100`.
    pub fn with_card(mut self, holder_ref: &str) -> Self {
        self.card = Some(CardView {
            holder_ref: holder_ref.into(),
            status: CardStatus::Normal,
            financial_locked: false,
            assurance: Assurance::RealCard,
            issuing_region: "330100".into(),
            attributes: Vec::new(),
        });
        self
    }

    /// Add a consented attribute to the presented card.
    pub fn with_attribute(mut self, scope: &str, value: &str) -> Self {
        if let Some(card) = self.card.as_mut() {
            card.attributes.push((scope.into(), value.into()));
        }
        self
    }

    pub fn with_venue(mut self, venue: &str, terminal: &str) -> Self {
        self.venue = Some(venue.into());
        self.terminal = Some(terminal.into());
        self
    }

    pub fn with_config(mut self, config: &str) -> Self {
        self.config = config.into();
        self
    }

    pub fn with_idempotency_key(mut self, key: &str) -> Self {
        self.idempotency_key = key.into();
        self
    }
}

fn live<'a>(state: &'a mut State, key: &str) -> Option<&'a Vec<u8>> {
    let now = state.now_ms;
    if matches!(state.kv.get(key), Some((_, Some(expiry))) if *expiry <= now) {
        state.kv.remove(key);
    }
    state.kv.get(key).map(|(v, _)| v)
}

fn expiry(now_ms: i64, ttl_ms: Option<u64>) -> Option<i64> {
    ttl_ms.map(|ttl| now_ms.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)))
}

struct HarnessHost(Rc<RefCell<State>>);

impl HarnessHost {
    fn record(&self, call: HostCall) {
        self.0.borrow_mut().calls.push(call);
    }
}

impl Host for HarnessHost {
    fn card_status(&mut self) -> Result<CardStatus, CardError> {
        self.record(HostCall::CardStatus);
        self.0.borrow().card.as_ref().map(|c| c.status).ok_or(CardError::NoCard)
    }

    fn card_attribute(&mut self, scope: &str) -> Result<String, CardError> {
        self.record(HostCall::CardAttribute { scope: scope.into() });
        let state = self.0.borrow();
        let card = state.card.as_ref().ok_or(CardError::NoCard)?;
        card.attribute(scope).map(str::to_owned).ok_or_else(|| CardError::NotConsented(scope.into()))
    }

    fn http_send(&mut self, backend: &str, request: &OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        self.record(HostCall::Http { backend: backend.into(), path: request.path.clone() });
        let mut state = self.0.borrow_mut();
        match state.http.as_mut() {
            Some(script) => script(backend, request),
            None => Err(HttpError::Unavailable(format!("no script for backend `{backend}`"))),
        }
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.record(HostCall::KvGet { key: key.into() });
        Ok(live(&mut self.0.borrow_mut(), key).cloned())
    }

    fn kv_set(&mut self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError> {
        self.record(HostCall::KvSet { key: key.into() });
        let mut state = self.0.borrow_mut();
        let expires = expiry(state.now_ms, ttl_ms);
        state.kv.insert(key.into(), (value.to_vec(), expires));
        Ok(())
    }

    fn kv_delete(&mut self, key: &str) -> Result<bool, KvError> {
        self.record(HostCall::KvDelete { key: key.into() });
        let mut state = self.0.borrow_mut();
        let existed = live(&mut state, key).is_some();
        state.kv.remove(key);
        Ok(existed)
    }

    fn kv_compare_and_swap(&mut self, key: &str, expected: Option<&[u8]>, new: &[u8], ttl_ms: Option<u64>) -> Result<bool, KvError> {
        let mut state = self.0.borrow_mut();
        let swapped = live(&mut state, key).map(Vec::as_slice) == expected;
        if swapped {
            let expires = expiry(state.now_ms, ttl_ms);
            state.kv.insert(key.into(), (new.to_vec(), expires));
        }
        state.calls.push(HostCall::KvCompareAndSwap { key: key.into(), swapped });
        Ok(swapped)
    }

    fn kv_increment(&mut self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        self.record(HostCall::KvIncrement { key: key.into(), delta });
        let mut state = self.0.borrow_mut();
        let current = match live(&mut state, key) {
            None => None,
            Some(bytes) => Some(
                std::str::from_utf8(bytes).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(KvError::NotANumber)?,
            ),
        };
        let value = current.unwrap_or(0).checked_add(delta).ok_or(KvError::NotANumber)?;
        let expires = match current {
            Some(_) => state.kv.get(key).and_then(|(_, e)| *e),
            None => expiry(state.now_ms, ttl_ms),
        };
        state.kv.insert(key.into(), (value.to_string().into_bytes(), expires));
        Ok(value)
    }

    fn payments_submit(&mut self, payment: &Payment) -> Result<Receipt, PaymentError> {
        self.record(HostCall::Payment {
            kind: format!("{:?}", payment.kind).to_lowercase(),
            amount_fen: payment.amount_fen,
            idempotency_key: payment.idempotency_key.clone(),
        });
        let mut state = self.0.borrow_mut();
        if let Some(receipt) = state.receipts.get(&payment.idempotency_key) {
            return Ok(receipt.clone());
        }
        if let Some(error) = state.payment_failure.clone() {
            return Err(error);
        }
        let receipt = Receipt {
            id: format!("rcpt-{}", state.receipts.len() + 1),
            amount_fen: payment.amount_fen,
            settled_at_ms: state.now_ms,
        };
        state.receipts.insert(payment.idempotency_key.clone(), receipt.clone());
        state.ledger.push(payment.clone());
        Ok(receipt)
    }

    fn log(&mut self, level: Level, message: &str) {
        self.record(HostCall::Log { level: format!("{level:?}").to_lowercase(), message: message.into() });
    }

    fn now(&mut self) -> Datetime {
        self.record(HostCall::Now);
        let state = self.0.borrow();
        Datetime { unix_ms: state.now_ms, utc_offset_minutes: state.utc_offset_minutes }
    }
}
