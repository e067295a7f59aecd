//! Why a core module could not be made into a component; each variant's message starts with its
//! stable code.

/// Why [`crate::componentize`] refused its input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a wasm binary that parses.
    #[error("COMPONENTIZE_INVALID_WASM: {0}")]
    InvalidWasm(String),
    /// The input is already a component: the plugin was linked without `--skip-wit-component`.
    #[error(
        "COMPONENTIZE_NOT_A_CORE_MODULE: the input is already a component; link the plugin as a core module \
         (CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS=\"-C link-arg=--skip-wit-component\", which cargo ignores when \
         RUSTFLAGS or CARGO_ENCODED_RUSTFLAGS is set)"
    )]
    NotACoreModule,
    /// The module imports a WASI memory, table, global or tag, which no trap can replace.
    #[error("COMPONENTIZE_WASI_NOT_A_FUNCTION: the module imports the {kind} `{module}#{name}` from WASI; only WASI functions can be replaced by traps")]
    WasiNotAFunction { module: String, name: String, kind: &'static str },
    /// Re-encoding the module with its WASI imports replaced failed.
    #[error("COMPONENTIZE_REWRITE_FAILED: {0}")]
    Rewrite(String),
    /// The module or the component could not be read or written.
    #[error("COMPONENTIZE_IO: {0}")]
    Io(String),
    /// `wit-component` could not make a component of the rewritten module.
    #[error("COMPONENTIZE_ENCODE_FAILED: {0}")]
    Encode(String),
}

impl From<wasmparser::BinaryReaderError> for Error {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Error::InvalidWasm(e.to_string())
    }
}

impl From<wasm_encoder::reencode::Error<Error>> for Error {
    fn from(e: wasm_encoder::reencode::Error<Error>) -> Self {
        match e {
            wasm_encoder::reencode::Error::UserError(e) => e,
            wasm_encoder::reencode::Error::ParseError(e) => Error::InvalidWasm(e.to_string()),
            other => Error::Rewrite(other.to_string()),
        }
    }
}
