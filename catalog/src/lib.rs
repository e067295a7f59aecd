//! The province catalog (work in progress).
#![forbid(unsafe_code)]
