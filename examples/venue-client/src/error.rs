//! Why the client could not get a decision: each case has a stable code, distinct from the
//! gateway's own refusal codes (a refusal is a [`Decision`](crate::Decision), not an error).

/// A failure before or around the call; the gateway decided nothing.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The channel's key file is missing, malformed or holds an unusable key.
    #[error("channel key: {0}")]
    KeyFile(#[source] onecard_gateway::auth::KeyFileError),
    /// The channel number or key id is malformed.
    #[error("channel: {0}")]
    Channel(#[source] onecard_gateway::auth::SignerError),
    /// The issuer key file (demo tokens) is unusable.
    #[error("issuer key: {0}")]
    IssuerKey(String),
    /// Parameters or other input the client was given are malformed.
    #[error("{0}")]
    Input(String),
    /// The gateway URL is not an `http(s)://` URL.
    #[error("gateway URL {0:?} is not an http:// or https:// URL")]
    GatewayUrl(String),
    /// The gateway could not be reached or did not answer in time.
    #[error("cannot reach the gateway at {url}: {message}")]
    Unreachable {
        /// Where.
        url: String,
        /// What the transport said.
        message: String,
    },
    /// The gateway answered something that is not a decision.
    #[error("the gateway answered HTTP {status} without a decision: {excerpt}")]
    UnexpectedAnswer {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        excerpt: String,
    },
}

impl ClientError {
    /// The stable code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::KeyFile(_) => "KEY_FILE_INVALID",
            ClientError::Channel(_) => "CHANNEL_INVALID",
            ClientError::IssuerKey(_) => "ISSUER_KEY_INVALID",
            ClientError::Input(_) => "INPUT_INVALID",
            ClientError::GatewayUrl(_) => "GATEWAY_URL_INVALID",
            ClientError::Unreachable { .. } => "GATEWAY_UNREACHABLE",
            ClientError::UnexpectedAnswer { .. } => "GATEWAY_ANSWER_UNEXPECTED",
        }
    }
}
