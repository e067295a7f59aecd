//! Admin API: catalog entities, the filing workflow, tokens, the journal and gateway rollout.
//! Every change is made through `service`, recorded with the token holder as actor.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{Auth, Json, Path, Query, Text};
use crate::catalog::{Catalog, policy_key};
use crate::declarative;
use crate::error::{Error, Result, codes};
use crate::feed::ChangePage;
use crate::model::{
    Application, CardStatusPolicy, Channel, City, Department, Grant, GrantStatus, IssuerKey, Limits, Policy,
    PolicyScope, Province, Venue,
};
use crate::roles::{Principal, Role};
use crate::service::{self, ChangeReport, NewFiling};
use crate::store::{GatewayStatus, NewToken, RolloutEntry, TokenInfo};
use crate::store::HistoryEntry;
use crate::validate::effective_limits;
use crate::workflow::FilingState;

const READERS: &[Role] = &[
    Role::ProvinceAdmin,
    Role::DepartmentStaff,
    Role::DepartmentReviewer,
    Role::SecurityTester,
    Role::Auditor,
    Role::CityOperator,
    Role::CardIssuer,
];

/// Who is calling.
#[utoipa::path(get, path = "/v1/admin/whoami", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Principal), (status = 401, body = super::response::ErrorBody)))]
pub async fn whoami(Auth(who): Auth) -> axum::Json<Principal> {
    axum::Json(who)
}

/// The whole catalog (entities and filings, no secrets).
#[utoipa::path(get, path = "/v1/admin/catalog", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Catalog), (status = 403, body = super::response::ErrorBody)))]
pub async fn catalog(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<Catalog>> {
    who.require(READERS)?;
    Ok(axum::Json(s.store.catalog().await?.without_secrets()))
}

/// The declarative TOML of the whole catalog (no secrets).
#[utoipa::path(get, path = "/v1/admin/export", tag = "admin", security(("bearer" = [])),
    responses((status = 200, content_type = "application/toml", body = String)))]
pub async fn export(State(s): State<AppState>, Auth(who): Auth) -> Result<impl IntoResponse> {
    who.require(&[Role::ProvinceAdmin, Role::Auditor])?;
    let toml = declarative::export_toml(&s.store).await?;
    Ok(([(header::CONTENT_TYPE, "application/toml; charset=utf-8")], toml))
}

/// Options of `apply`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApplyQuery {
    /// Show the diff without writing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Applies a declarative TOML catalog (body: the file). Idempotent.
#[utoipa::path(post, path = "/v1/admin/apply", tag = "admin", security(("bearer" = [])), params(ApplyQuery),
    request_body(content = String, content_type = "application/toml"),
    responses((status = 200, body = ChangeReport), (status = 400, body = super::response::ErrorBody)))]
pub async fn apply(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<ApplyQuery>,
    Text(src): Text,
) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    Ok(axum::Json(declarative::apply_str(&s.store, &who, &src, q.dry_run).await?))
}

fn same_id(path: &str, body: &str, what: &str) -> Result<()> {
    if path == body {
        Ok(())
    } else {
        Err(Error::bad_request(codes::INVALID_PATH, format!("the {what} in the path ({path}) differs from the body ({body})")))
    }
}

fn upsert<T: Clone>(list: &mut Vec<T>, item: T, same: impl Fn(&T) -> bool) {
    match list.iter_mut().find(|x| same(x)) {
        Some(x) => *x = item,
        None => list.push(item),
    }
}

/// Creates or replaces a province.
#[utoipa::path(put, path = "/v1/admin/provinces/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Province, responses((status = 200, body = ChangeReport)))]
pub async fn put_province(State(s): State<AppState>, Auth(who): Auth, Path(code): Path<String>, Json(p): Json<Province>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    same_id(&code, &p.code, "province code")?;
    Ok(axum::Json(service::update(&s.store, &who, "put province", |c| {
        upsert(&mut c.provinces, p.clone(), |x| x.code == p.code);
        Ok(())
    }).await?))
}

/// Creates or replaces a city.
#[utoipa::path(put, path = "/v1/admin/cities/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = City, responses((status = 200, body = ChangeReport)))]
pub async fn put_city(State(s): State<AppState>, Auth(who): Auth, Path(code): Path<String>, Json(p): Json<City>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    same_id(&code, &p.code, "city code")?;
    Ok(axum::Json(service::update(&s.store, &who, "put city", |c| {
        upsert(&mut c.cities, p.clone(), |x| x.code == p.code);
        Ok(())
    }).await?))
}

/// Creates or replaces a department.
#[utoipa::path(put, path = "/v1/admin/departments/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Department, responses((status = 200, body = ChangeReport)))]
pub async fn put_department(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(d): Json<Department>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    same_id(&id, &d.id, "department id")?;
    Ok(axum::Json(service::update(&s.store, &who, "put department", |c| {
        upsert(&mut c.departments, d.clone(), |x| x.id == d.id);
        Ok(())
    }).await?))
}

/// An application's catalog entry (its filings are managed by the workflow).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    /// Display name.
    pub name: String,
    /// Scenario.
    pub scenario: String,
    /// Owning department (only a province admin may change it).
    pub department: String,
    /// Card-status policy per action.
    #[serde(default)]
    pub card_status_policy: BTreeMap<String, CardStatusPolicy>,
    /// Configuration passed to the plugin.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<Value>,
}

/// Creates or updates an application entry (province admin, or staff of its department).
#[utoipa::path(put, path = "/v1/admin/applications/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ApplicationInput, responses((status = 200, body = ChangeReport)))]
pub async fn put_application(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(a): Json<ApplicationInput>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin, Role::DepartmentStaff])?;
    Ok(axum::Json(service::update(&s.store, &who, "put application", |c| {
        if let Some(existing) = c.application(&id) {
            who.require_department(&existing.department)?;
        }
        who.require_department(&a.department)?;
        let mut app = c.application(&id).cloned().unwrap_or(Application {
            id: id.clone(),
            name: String::new(),
            scenario: String::new(),
            department: a.department.clone(),
            card_status_policy: BTreeMap::new(),
            config: Value::Object(Default::default()),
            notice: None,
            filings: vec![],
        });
        app.name = a.name.clone();
        app.scenario = a.scenario.clone();
        app.department = a.department.clone();
        app.card_status_policy = a.card_status_policy.clone();
        if let Some(cfg) = &a.config {
            app.config = cfg.clone();
        }
        upsert(&mut c.applications, app, |x| x.id == id);
        Ok(())
    }).await?))
}

/// An application with its filing history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationView {
    /// The entry and its filings.
    pub application: Application,
    /// Effective state.
    pub state: FilingState,
    /// Every filing transition.
    pub history: Vec<HistoryEntry>,
}

/// An application, its filings and their history.
#[utoipa::path(get, path = "/v1/admin/applications/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ApplicationView), (status = 404, body = super::response::ErrorBody)))]
pub async fn get_application(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>) -> Result<axum::Json<ApplicationView>> {
    who.require(READERS)?;
    let c = s.store.catalog().await?;
    let app = c
        .application(&id)
        .cloned()
        .ok_or_else(|| Error::not_found(codes::APP_NOT_FOUND, format!("application {id} does not exist")))?;
    Ok(axum::Json(ApplicationView { state: app.state(), history: s.store.history(&id).await?, application: app }))
}

/// The number of a new filing.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilingCreated {
    /// Filing number.
    pub number: u32,
    /// What changed.
    pub report: ChangeReport,
}

/// Files a new draft (a new plugin version) of an application.
#[utoipa::path(post, path = "/v1/admin/applications/{id}/filings", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewFiling, responses((status = 200, body = FilingCreated)))]
pub async fn create_filing(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(f): Json<NewFiling>) -> Result<axum::Json<FilingCreated>> {
    let (number, report) = service::create_filing(&s.store, &who, &id, f).await?;
    Ok(axum::Json(FilingCreated { number, report }))
}

/// A workflow transition.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    /// Target state.
    pub to: FilingState,
    /// Note kept in the history.
    pub note: String,
    /// Notice shown to callers (suspension); defaults to the note.
    #[serde(default)]
    pub notice: Option<String>,
}

/// Moves a filing along the workflow (each transition by its role only).
#[utoipa::path(post, path = "/v1/admin/applications/{id}/filings/{number}/transitions", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("number" = u32, Path)), request_body = TransitionInput,
    responses((status = 200, body = ChangeReport), (status = 409, body = super::response::ErrorBody)))]
pub async fn transition(State(s): State<AppState>, Auth(who): Auth, Path((id, number)): Path<(String, u32)>, Json(t): Json<TransitionInput>) -> Result<axum::Json<ChangeReport>> {
    if t.note.trim().is_empty() {
        return Err(Error::invalid("note is empty: say why"));
    }
    Ok(axum::Json(service::transition(&s.store, &who, &id, number, t.to, &t.note, t.notice).await?))
}

/// Creates or replaces a channel (keys included).
#[utoipa::path(put, path = "/v1/admin/channels/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Channel, responses((status = 200, body = ChangeReport)))]
pub async fn put_channel(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(ch): Json<Channel>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    same_id(&id, &ch.id, "channel id")?;
    Ok(axum::Json(service::update(&s.store, &who, "put channel", |c| {
        let mut ch = ch.clone();
        // A key sent without its secret keeps the stored one.
        if let Some(old) = c.channel(&id) {
            for k in &mut ch.keys {
                if k.secret.is_none() && k.algorithm.is_symmetric() {
                    k.secret = old.keys.iter().find(|o| o.key_id == k.key_id && o.algorithm == k.algorithm).and_then(|o| o.secret.clone());
                }
            }
        }
        upsert(&mut c.channels, ch, |x| x.id == id);
        Ok(())
    }).await?))
}

/// A grant as set through the API.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// Actions allowed.
    pub actions: BTreeSet<String>,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// Grants a channel actions of an application (replacing an earlier grant).
#[utoipa::path(put, path = "/v1/admin/grants/{channel}/{application}", tag = "admin", security(("bearer" = [])),
    params(("channel" = String, Path), ("application" = String, Path)), request_body = GrantInput, responses((status = 200, body = ChangeReport)))]
pub async fn put_grant(State(s): State<AppState>, Auth(who): Auth, Path((channel, application)): Path<(String, String)>, Json(g): Json<GrantInput>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    let grant = Grant { channel: channel.clone(), application: application.clone(), actions: g.actions, not_before: g.not_before, not_after: g.not_after, status: GrantStatus::Active };
    Ok(axum::Json(service::update(&s.store, &who, "put grant", |c| {
        upsert(&mut c.grants, grant.clone(), |x| x.channel == channel && x.application == application);
        Ok(())
    }).await?))
}

/// Why something is revoked.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// Note kept in the journal.
    pub note: String,
}

/// Revokes a grant (a first-class event in the change feed).
#[utoipa::path(post, path = "/v1/admin/grants/{channel}/{application}/revoke", tag = "admin", security(("bearer" = [])),
    params(("channel" = String, Path), ("application" = String, Path)), request_body = NoteInput, responses((status = 200, body = ChangeReport)))]
pub async fn revoke_grant(State(s): State<AppState>, Auth(who): Auth, Path((channel, application)): Path<(String, String)>, Json(n): Json<NoteInput>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    Ok(axum::Json(service::update(&s.store, &who, &n.note, |c| {
        let g = c
            .grants
            .iter_mut()
            .find(|g| g.channel == channel && g.application == application)
            .ok_or_else(|| Error::not_found(codes::GRANT_NOT_FOUND, format!("channel {channel} has no grant for {application}")))?;
        g.status = GrantStatus::Revoked;
        Ok(())
    }).await?))
}

/// Creates or replaces a venue.
#[utoipa::path(put, path = "/v1/admin/venues/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Venue, responses((status = 200, body = ChangeReport)))]
pub async fn put_venue(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(v): Json<Venue>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin, Role::DepartmentStaff])?;
    same_id(&id, &v.id, "venue id")?;
    Ok(axum::Json(service::update(&s.store, &who, "put venue", |c| {
        let dept = |app: &str| c.application(app).map(|a| a.department.clone());
        for app in [Some(v.application.clone()), c.venue(&id).map(|x| x.application.clone())].into_iter().flatten() {
            if let Some(d) = dept(&app) {
                who.require_department(&d)?;
            }
        }
        upsert(&mut c.venues, v.clone(), |x| x.id == id);
        Ok(())
    }).await?))
}

/// Sets a rate-limit policy. Province admins set any level; a city operator sets its own
/// city's level (tightening only, like everyone).
#[utoipa::path(put, path = "/v1/admin/policies", tag = "admin", security(("bearer" = [])),
    request_body = Policy, responses((status = 200, body = ChangeReport), (status = 400, body = super::response::ErrorBody)))]
pub async fn put_policy(State(s): State<AppState>, Auth(who): Auth, Json(p): Json<Policy>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin, Role::CityOperator])?;
    let scope = p.scope().map_err(Error::invalid)?;
    if who.role == Role::CityOperator && !matches!(&scope, PolicyScope::City(c) if Some(c) == who.city.as_ref()) {
        return Err(Error::forbidden(codes::ROLE_FORBIDDEN, "a city operator sets only its own city's limits"));
    }
    let key = policy_key(&p);
    Ok(axum::Json(service::update(&s.store, &who, "put policy", |c| {
        upsert(&mut c.policies, p.clone(), |x| policy_key(x) == key);
        Ok(())
    }).await?))
}

/// A policy with who set it and the limits in force there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// The policy as set.
    pub policy: Policy,
    /// Level.
    pub scope: String,
    /// Limits in force at this level (parents applied).
    pub effective: Limits,
    /// Who set it last.
    pub set_by: String,
    /// When.
    pub set_at: String,
}

/// Every policy, who set it, and what is in force.
#[utoipa::path(get, path = "/v1/admin/policies", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [PolicyView])))]
pub async fn list_policies(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<Vec<PolicyView>>> {
    who.require(READERS)?;
    let c = s.store.catalog().await?;
    let meta = s.store.entity_meta("policy").await?;
    let out = c
        .policies
        .iter()
        .filter_map(|p| {
            let scope = p.scope().ok()?;
            let (set_by, set_at) = meta.get(&policy_key(p)).cloned().unwrap_or_default();
            Some(PolicyView { policy: p.clone(), effective: effective_limits(&c, &scope), scope: scope.to_string(), set_by, set_at })
        })
        .collect();
    Ok(axum::Json(out))
}

/// Creates or replaces an issuer trust anchor.
#[utoipa::path(put, path = "/v1/admin/issuer-keys/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = IssuerKey, responses((status = 200, body = ChangeReport)))]
pub async fn put_issuer_key(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>, Json(k): Json<IssuerKey>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    same_id(&id, &k.key_id, "key id")?;
    Ok(axum::Json(service::update(&s.store, &who, "put issuer key", |c| {
        upsert(&mut c.issuer_keys, k.clone(), |x| x.key_id == id);
        Ok(())
    }).await?))
}

/// A new token, shown once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenCreated {
    /// The bearer token: store it now, it is not shown again.
    pub token: String,
    /// Its record.
    pub info: TokenInfo,
}

/// Creates a bearer token (province admins).
#[utoipa::path(post, path = "/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    request_body = NewToken, responses((status = 200, body = TokenCreated)))]
pub async fn create_token(State(s): State<AppState>, Auth(who): Auth, Json(t): Json<NewToken>) -> Result<axum::Json<TokenCreated>> {
    who.require(&[Role::ProvinceAdmin])?;
    let mut w = s.store.begin_write(&who.name).await?;
    let (info, token) = w.create_token(&t).await?;
    w.commit().await?;
    Ok(axum::Json(TokenCreated { token, info }))
}

/// Lists tokens (never their secrets).
#[utoipa::path(get, path = "/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [TokenInfo])))]
pub async fn list_tokens(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<Vec<TokenInfo>>> {
    who.require(&[Role::ProvinceAdmin, Role::Auditor])?;
    Ok(axum::Json(s.store.tokens().await?))
}

/// Revokes a token.
#[utoipa::path(post, path = "/v1/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke_token(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>) -> Result<axum::http::StatusCode> {
    who.require(&[Role::ProvinceAdmin])?;
    let mut w = s.store.begin_write(&who.name).await?;
    w.revoke_token(&id).await?;
    w.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Paging of the journal.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    /// Changes after this version.
    #[serde(default)]
    pub after: i64,
    /// At most this many (≤ 1000).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// The change journal: every change with its actor (auditors, province admins).
#[utoipa::path(get, path = "/v1/admin/changes", tag = "admin", security(("bearer" = [])), params(JournalQuery),
    responses((status = 200, body = ChangePage)))]
pub async fn journal(State(s): State<AppState>, Auth(who): Auth, Query(q): Query<JournalQuery>) -> Result<axum::Json<ChangePage>> {
    who.require(&[Role::ProvinceAdmin, Role::Auditor])?;
    Ok(axum::Json(s.store.changes_after(q.after, q.limit).await?))
}

/// Gateways and the version each enforces.
#[utoipa::path(get, path = "/v1/admin/gateways", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [GatewayStatus])))]
pub async fn gateways(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<Vec<GatewayStatus>>> {
    who.require(&[Role::ProvinceAdmin, Role::Auditor, Role::CityOperator])?;
    Ok(axum::Json(s.store.gateways().await?))
}

/// Per application: "effective at N of M gateways".
#[utoipa::path(get, path = "/v1/admin/rollout", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [RolloutEntry])))]
pub async fn rollout(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<Vec<RolloutEntry>>> {
    who.require(READERS)?;
    Ok(axum::Json(s.store.rollout().await?))
}

/// A principal (exported for the OpenAPI document).
pub type Whoami = Principal;

fn remove<T>(list: &mut Vec<T>, what: &str, id: &str, matches: impl Fn(&T) -> bool) -> Result<()> {
    let before = list.len();
    list.retain(|x| !matches(x));
    if list.len() == before {
        return Err(Error::not_found(codes::ENTITY_NOT_FOUND, format!("there is no {what} {id}")));
    }
    Ok(())
}

/// Which catalog entity to delete.
#[derive(Debug, Clone, Copy)]
enum EntityKind {
    Provinces,
    Cities,
    Departments,
    Applications,
    Channels,
    Venues,
    IssuerKeys,
    Policies,
}

async fn delete_entity(s: AppState, who: Principal, kind: EntityKind, id: String) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    Ok(axum::Json(service::update(&s.store, &who, "delete", |c| match kind {
        EntityKind::Provinces => remove(&mut c.provinces, "province", &id, |x| x.code == id),
        EntityKind::Cities => remove(&mut c.cities, "city", &id, |x| x.code == id),
        EntityKind::Departments => remove(&mut c.departments, "department", &id, |x| x.id == id),
        EntityKind::Applications => remove(&mut c.applications, "application", &id, |x| x.id == id),
        EntityKind::Channels => remove(&mut c.channels, "channel", &id, |x| x.id == id),
        EntityKind::Venues => remove(&mut c.venues, "venue", &id, |x| x.id == id),
        EntityKind::IssuerKeys => remove(&mut c.issuer_keys, "issuer key", &id, |x| x.key_id == id),
        EntityKind::Policies => remove(&mut c.policies, "policy", &id, |x| policy_key(x) == id),
    }).await?))
}

/// One DELETE handler per entity route. Deletion is refused while anything still refers to
/// the entity (the whole catalog is validated), and for applications with filings past draft.
macro_rules! delete_handler {
    ($name:ident, $kind:ident, $path:literal, $what:literal) => {
        #[doc = concat!("Deletes a ", $what, ".")]
        #[utoipa::path(delete, path = $path, tag = "admin", security(("bearer" = [])),
            params(("id" = String, Path)),
            responses((status = 200, body = ChangeReport), (status = 404, body = super::response::ErrorBody)))]
        pub async fn $name(State(s): State<AppState>, Auth(who): Auth, Path(id): Path<String>) -> Result<axum::Json<ChangeReport>> {
            delete_entity(s, who, EntityKind::$kind, id).await
        }
    };
}

delete_handler!(delete_province, Provinces, "/v1/admin/provinces/{id}", "province");
delete_handler!(delete_city, Cities, "/v1/admin/cities/{id}", "city");
delete_handler!(delete_department, Departments, "/v1/admin/departments/{id}", "department");
delete_handler!(delete_application, Applications, "/v1/admin/applications/{id}", "application (only while no filing is past draft)");
delete_handler!(delete_channel, Channels, "/v1/admin/channels/{id}", "channel (prefer suspending it)");
delete_handler!(delete_venue, Venues, "/v1/admin/venues/{id}", "venue");
delete_handler!(delete_issuer_key, IssuerKeys, "/v1/admin/issuer-keys/{id}", "issuer key (prefer revoking it)");
delete_handler!(delete_policy, Policies, "/v1/admin/policies/{id}", "policy, named by its key (`city:3301`, `channel:parks:3300000001`)");

/// Deletes a grant outright (prefer revoking: revocation is a first-class feed event).
#[utoipa::path(delete, path = "/v1/admin/grants/{channel}/{application}", tag = "admin", security(("bearer" = [])),
    params(("channel" = String, Path), ("application" = String, Path)),
    responses((status = 200, body = ChangeReport), (status = 404, body = super::response::ErrorBody)))]
pub async fn delete_grant(State(s): State<AppState>, Auth(who): Auth, Path((channel, application)): Path<(String, String)>) -> Result<axum::Json<ChangeReport>> {
    who.require(&[Role::ProvinceAdmin])?;
    Ok(axum::Json(service::update(&s.store, &who, "delete grant", |c| {
        remove(&mut c.grants, "grant", &format!("{channel}/{application}"), |g| g.channel == channel && g.application == application)
    }).await?))
}

/// What an artifact upload stored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactStored {
    /// SHA-256 of the bytes, hex: the value a filing names.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
}

/// Uploads a plugin component (raw bytes). Idempotent: the same bytes give the same hash.
#[utoipa::path(post, path = "/v1/admin/artifacts", tag = "admin", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 200, body = ArtifactStored), (status = 400, body = super::response::ErrorBody)))]
pub async fn put_artifact(State(s): State<AppState>, Auth(who): Auth, body: axum::body::Bytes) -> Result<axum::Json<ArtifactStored>> {
    who.require(&[Role::ProvinceAdmin, Role::DepartmentStaff])?;
    let sha256 = s.store.put_artifact(&who.name, &body).await?;
    Ok(axum::Json(ArtifactStored { sha256, size: body.len() }))
}
