//! The gateway's OpenAPI document. Every stable error code of [`crate::error::CODES`] is listed
//! in its description, so the document and `docs/ERRORS.md` say the same.

use utoipa::openapi::OpenApi as Doc;

/// The document.
#[derive(Debug)]
pub struct GatewayApi;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "onecard gateway", description = "The data plane: channels call application actions with a card credential."),
    paths(super::router::invoke, super::health::health),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::error::Blame, crate::pipeline::body::InvokeBody, super::health::Health)),
    tags((name = "gateway", description = "The request path"))
)]
struct Generated;

impl GatewayApi {
    /// The document, with the error-code table in its description.
    pub fn openapi() -> Doc {
        let mut doc = <Generated as utoipa::OpenApi>::openapi();
        let mut table = String::from("\n\n## Error codes\n\n| code | status | blame | step |\n|---|---|---|---|\n");
        for c in crate::error::CODES {
            table.push_str(&format!("| `{}` | {} | {} | {} |\n", c.code, c.status, c.blame.as_str(), c.step));
        }
        let description = doc.info.description.take().unwrap_or_default();
        doc.info.description = Some(description + &table);
        doc
    }
}
