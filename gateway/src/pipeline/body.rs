//! The invoke request body: the card credential, the action's parameters, the idempotency key
//! and where the request comes from. Covered by the channel's signature like the headers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{GatewayError, codes};

/// `POST /v1/apps/{app}/actions/{action}` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// The card credential as scanned (the dynamic QR token), when the action needs a card.
    #[serde(default)]
    pub credential: Option<String>,
    /// The action's parameters (checked against its filed JSON Schema).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub params: Value,
    /// Makes a retry safe: the plugin answers a retried key as the first time. Required for
    /// money-moving actions.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The venue the request comes from (registered to the application in the catalog).
    #[serde(default)]
    pub venue: Option<String>,
    /// The venue's terminal (gate, counter) that read the card.
    #[serde(default)]
    pub terminal: Option<String>,
    /// Checks the channel performed on the holder for this request; `real_person` (face match
    /// with liveness) is the one the 实人 assurance level needs.
    #[serde(default)]
    pub verified: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Longest idempotency key, bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

impl InvokeBody {
    /// Parses the body; an error names the offending field.
    pub fn parse(bytes: &[u8]) -> Result<InvokeBody, GatewayError> {
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let body: InvokeBody = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let err = GatewayError::of(codes::INVALID_BODY, format!("the body is not an invoke request: {}", e.inner()));
            if field == "." { err } else { err.with_field(field) }
        })?;
        if let Some(key) = &body.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(char::is_control))
        {
            return Err(GatewayError::of(codes::INVALID_BODY, format!("an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} printable characters"))
                .with_field("idempotency_key"));
        }
        if !body.params.is_object() {
            return Err(GatewayError::of(codes::INVALID_BODY, "params is a JSON object").with_field("params"));
        }
        Ok(body)
    }

    /// Whether the channel asserted a real-person check.
    pub fn real_person_verified(&self) -> bool {
        self.verified.iter().any(|v| v == "real_person")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_bad_types_name_the_field() {
        let e = InvokeBody::parse(br#"{"params":{},"colour":1}"#).unwrap_err();
        assert_eq!(e.code, "INVALID_BODY");
        let e = InvokeBody::parse(br#"{"venue":7}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("venue"));
        let e = InvokeBody::parse(br#"{"params":[1]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("params"));
        assert_eq!(InvokeBody::parse(b"").unwrap(), InvokeBody { params: empty_object(), ..InvokeBody::default() });
    }
}
