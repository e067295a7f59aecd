//! The gateway's answer to one call, as a venue shows it: allowed with the plugin's result, or
//! refused with the stable code, the message for the operator and the request id to quote.

use std::fmt;

use serde_json::Value;

use crate::ClientError;

/// What the gateway decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The action ran; `result` is the plugin's answer.
    Allowed {
        /// The gateway's request id (quote it in a dispute).
        request_id: String,
        /// The plugin's result.
        result: Value,
    },
    /// The gateway or the plugin refused.
    Refused {
        /// The gateway's request id.
        request_id: String,
        /// HTTP status.
        status: u16,
        /// Stable code (docs/ERRORS.md), e.g. `CONSENT_REQUIRED`.
        code: String,
        /// What happened, for the operator.
        message: String,
        /// The request field at fault, if any.
        field: Option<String>,
        /// A notice to show the holder (e.g. a suspended service's notice), if any.
        notice: Option<String>,
        /// `Retry-After` seconds of a rate-limit refusal.
        retry_after: Option<String>,
    },
}

impl Decision {
    /// Reads an answer: `{request_id, decision: "allowed", result}` or
    /// `{request_id, decision: "refused", error: {code, message, field?, notice?}}`.
    pub fn from_answer(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<Decision, ClientError> {
        let unexpected = || ClientError::UnexpectedAnswer { status, excerpt: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned() };
        let v: Value = serde_json::from_slice(body).map_err(|_| unexpected())?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let request_id = text(&v["request_id"]).unwrap_or_default();
        match v["decision"].as_str() {
            Some("allowed") if (200..300).contains(&status) => Ok(Decision::Allowed { request_id, result: v["result"].clone() }),
            Some("refused") => {
                let error = &v["error"];
                let code = text(&error["code"]).ok_or_else(unexpected)?;
                Ok(Decision::Refused {
                    request_id,
                    status,
                    code,
                    message: text(&error["message"]).unwrap_or_default(),
                    field: text(&error["field"]),
                    notice: text(&error["notice"]),
                    retry_after,
                })
            }
            _ => Err(unexpected()),
        }
    }

    /// Whether the action was allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        match self {
            Decision::Allowed { request_id, .. } | Decision::Refused { request_id, .. } => request_id,
        }
    }

    /// The refusal code, if refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Decision::Allowed { .. } => None,
            Decision::Refused { code, .. } => Some(code),
        }
    }

    /// The plugin's result, if allowed.
    pub fn result(&self) -> Option<&Value> {
        match self {
            Decision::Allowed { result, .. } => Some(result),
            Decision::Refused { .. } => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allowed { request_id, result } => {
                let pretty = serde_json::to_string_pretty(result).unwrap_or_else(|_| result.to_string());
                write!(f, "ALLOWED  request {request_id}\n{pretty}")
            }
            Decision::Refused { request_id, status, code, message, field, notice, retry_after } => {
                write!(f, "REFUSED  {code} (HTTP {status})  request {request_id}\n{message}")?;
                if let Some(field) = field {
                    write!(f, "\nfield: {field}")?;
                }
                if let Some(notice) = notice {
                    write!(f, "\nnotice for the holder: {notice}")?;
                }
                if let Some(after) = retry_after {
                    write!(f, "\nretry after {after} s")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_and_refused_answers_are_read() {
        let ok = Decision::from_answer(200, None, br#"{"request_id":"r1","decision":"allowed","result":{"admitted":true}}"#).unwrap();
        assert!(ok.allowed());
        assert_eq!(ok.result().unwrap()["admitted"], true);
        assert!(ok.to_string().starts_with("ALLOWED  request r1"));

        let body = br#"{"request_id":"r2","decision":"refused","error":{"code":"CONSENT_REQUIRED","message":"no consent","blame":"holder"}}"#;
        let refused = Decision::from_answer(403, None, body).unwrap();
        assert_eq!(refused.code(), Some("CONSENT_REQUIRED"));
        assert_eq!(refused.request_id(), "r2");
        assert!(refused.to_string().contains("REFUSED  CONSENT_REQUIRED (HTTP 403)"), "{refused}");

        let limited = Decision::from_answer(429, Some("3".into()), br#"{"request_id":"r3","decision":"refused","error":{"code":"RATE_LIMITED","message":"m","field":"x"}}"#).unwrap();
        assert!(limited.to_string().contains("retry after 3 s") && limited.to_string().contains("field: x"));
    }

    #[test]
    fn anything_else_is_an_unexpected_answer() {
        for (status, body) in [
            (502, &b"<html>bad gateway</html>"[..]),
            (200, br#"{"decision":"maybe"}"#),
            (500, br#"{"decision":"allowed","result":1}"#),
            (400, br#"{"decision":"refused","error":{}}"#),
        ] {
            let err = Decision::from_answer(status, None, body).unwrap_err();
            assert_eq!(err.code(), "GATEWAY_ANSWER_UNEXPECTED", "{status}");
        }
    }
}
