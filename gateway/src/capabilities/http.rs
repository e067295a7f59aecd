//! `http`: outbound requests to the backends the catalog lets this application reach, by name.
//!
//! A plugin never names a URL: it names a backend (`fare-system`, `medical-insurance`), and the
//! host resolves it from the application's grant, checks the path, bounds the body and applies
//! the backend's deadline. Backends: [`ScriptedHttp`] (tests and the local harness); the gateway's
//! real client comes with the request path (issue 4).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::http::{Host, HttpError, IncomingResponse, OutgoingRequest, add_to_linker};

/// One backend an application may reach.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTarget {
    /// Base URL; the plugin's path is appended.
    pub base_url: String,
    /// Deadline of one request, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    2_000
}

/// Sends a request to a resolved backend.
#[async_trait]
pub trait HttpClient: Send + Sync + fmt::Debug {
    async fn send(&self, name: &str, target: &BackendTarget, request: OutgoingRequest) -> Result<IncomingResponse, HttpError>;
}

type Script = dyn Fn(&str, &OutgoingRequest) -> Result<IncomingResponse, HttpError> + Send + Sync;

/// Answers every request with a function: a test double for external systems.
pub struct ScriptedHttp(Box<Script>);

impl ScriptedHttp {
    pub fn new(f: impl Fn(&str, &OutgoingRequest) -> Result<IncomingResponse, HttpError> + Send + Sync + 'static) -> Self {
        ScriptedHttp(Box::new(f))
    }

    /// Every backend is unreachable (the default when nothing is scripted).
    pub fn unreachable() -> Self {
        Self::new(|name, _| Err(HttpError::Unavailable(format!("no backend `{name}` in this environment"))))
    }
}

impl fmt::Debug for ScriptedHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScriptedHttp")
    }
}

#[async_trait]
impl HttpClient for ScriptedHttp {
    async fn send(&self, name: &str, _target: &BackendTarget, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        (self.0)(name, &request)
    }
}

/// Per-instance http state: the granted backends and the client.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub backends: Arc<BTreeMap<String, BackendTarget>>,
    pub client: Arc<dyn HttpClient>,
    pub max_body_bytes: usize,
}

impl HttpState {
    pub fn new(backends: Arc<BTreeMap<String, BackendTarget>>, client: Arc<dyn HttpClient>) -> Self {
        HttpState { backends, client, max_body_bytes: 1024 * 1024 }
    }

    fn validate(&self, request: &OutgoingRequest) -> Result<(), HttpError> {
        let path_ok = request.path.starts_with('/')
            && !request.path.contains("..")
            && !request.path.contains("://")
            && request.path.chars().all(|c| c.is_ascii_graphic());
        if !path_ok {
            return Err(HttpError::InvalidRequest(format!("path {:?} must be an absolute path below the backend", request.path)));
        }
        if request.body.len() > self.max_body_bytes {
            return Err(HttpError::InvalidRequest(format!("body of {} bytes exceeds {}", request.body.len(), self.max_body_bytes)));
        }
        Ok(())
    }
}

impl Host for Metered<'_, HttpState> {
    async fn send(&mut self, backend: String, request: OutgoingRequest) -> wasmtime::Result<Result<IncomingResponse, HttpError>> {
        let http = self.charge("http.send")?;
        let Some(target) = http.backends.get(&backend) else {
            return Ok(Err(HttpError::BackendNotAllowed(backend)));
        };
        if let Err(e) = http.validate(&request) {
            return Ok(Err(e));
        }
        let deadline = Duration::from_millis(target.timeout_ms);
        Ok(match tokio::time::timeout(deadline, http.client.send(&backend, target, request)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout),
        })
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<HttpState>>(linker, |s| Metered { state: &mut s.http, meter: &mut s.meter })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::onecard::plugin::http::Method;
    use crate::capabilities::Meter;

    fn state() -> HttpState {
        let backends = BTreeMap::from([("fares".to_string(), BackendTarget { base_url: "http://127.0.0.1:1".into(), timeout_ms: 50 })]);
        let client = ScriptedHttp::new(|_, r| Ok(IncomingResponse { status: 200, headers: vec![], body: r.body.clone() }));
        HttpState::new(Arc::new(backends), Arc::new(client))
    }

    fn get(path: &str) -> OutgoingRequest {
        OutgoingRequest { method: Method::Get, path: path.into(), headers: vec![], body: vec![] }
    }

    #[tokio::test]
    async fn only_granted_backends_and_clean_paths() {
        let (mut http, mut meter) = (state(), Meter::new(10));
        let mut host = Metered { state: &mut http, meter: &mut meter };
        assert!(host.send("fares".into(), get("/trips")).await.unwrap().is_ok());
        assert!(matches!(host.send("bank".into(), get("/x")).await.unwrap(), Err(HttpError::BackendNotAllowed(b)) if b == "bank"));
        for bad in ["trips", "/../admin", "/x?u=http://evil", "/a b"] {
            assert!(matches!(host.send("fares".into(), get(bad)).await.unwrap(), Err(HttpError::InvalidRequest(_))), "{bad}");
        }
    }
}
