//! The OpenAPI document of the catalog API, served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, holder, issuer, sync};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The catalog API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "onecard catalog",
        description = "The province catalog: admin (entities, filing workflow, tokens), issuer (card status), \
holder (consents through a channel) and sync (signed snapshot, change feed) APIs. Every error is \
`{\"error\":{\"code\",\"message\",\"blame\"}}` with a stable code: MALFORMED_JSON, UNKNOWN_FIELD, WRONG_TYPE, \
MISSING_FIELD, INVALID_BODY, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, INVALID_QUERY, INVALID_PATH, \
INVALID_CATALOG, INVALID_TOML, TOKEN_MISSING, TOKEN_INVALID, ROLE_FORBIDDEN, FOREIGN_DEPARTMENT, \
INVALID_TRANSITION, INVALID_CARD_TRANSITION, NOT_FOUND, APP_NOT_FOUND, FILING_NOT_FOUND, CARD_NOT_FOUND, \
CONSENT_NOT_FOUND, GRANT_NOT_FOUND, ENTITY_NOT_FOUND, TOKEN_NOT_FOUND, ALREADY_EXISTS, CONSENT_REVOKED, CHANNEL_NOT_ACTIVE, \
HOLDER_MISSING, INVALID_SSN, METHOD_NOT_ALLOWED, NOT_INITIALISED, DATABASE_UNAVAILABLE, INTERNAL."
    ),
    paths(
        admin::whoami, admin::catalog, admin::export, admin::apply,
        admin::put_province, admin::put_city, admin::put_department,
        admin::put_application, admin::get_application, admin::create_filing, admin::transition,
        admin::put_channel, admin::put_grant, admin::revoke_grant, admin::put_venue,
        admin::put_policy, admin::list_policies, admin::put_issuer_key,
        admin::delete_province, admin::delete_city, admin::delete_department, admin::delete_application,
        admin::delete_channel, admin::delete_venue, admin::delete_issuer_key, admin::delete_policy, admin::delete_grant,
        admin::create_token, admin::list_tokens, admin::revoke_token,
        admin::journal, admin::gateways, admin::rollout,
        issuer::register, issuer::get, issuer::set_status,
        holder::list, holder::grant, holder::revoke, holder::accesses,
        sync::snapshot, sync::changes, sync::report, sync::accesses, sync::public_key, sync::artifact, admin::put_artifact,
    ),
    components(schemas(super::response::ErrorBody, crate::snapshot::Snapshot, crate::feed::ChangeEvent)),
    modifiers(&Bearer),
    tags(
        (name = "admin", description = "Catalog administration and the filing workflow"),
        (name = "issuer", description = "Card registry, for card issuers"),
        (name = "holder", description = "Consents, through an authorized channel"),
        (name = "sync", description = "Distribution to gateways"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;
