//! JSON-RPC errors: the five codes of JSON-RPC 2.0 section 5.1 and the
//! negative errno codes SPDK answers with (`spdk_jsonrpc_send_error_response(
//! request, rc, spdk_strerror(-rc))` in its bdev and vhost modules).

use serde::Serialize;

/// JSON-RPC 2.0 §5.1: "Invalid JSON was received by the server."
pub const PARSE_ERROR: i32 = -32700;
/// §5.1: "The JSON sent is not a valid Request object."
pub const INVALID_REQUEST: i32 = -32600;
/// §5.1: "The method does not exist / is not available."
pub const METHOD_NOT_FOUND: i32 = -32601;
/// §5.1: "Invalid method parameter(s)."
pub const INVALID_PARAMS: i32 = -32602;
/// §5.1: "Internal JSON-RPC error."
pub const INTERNAL_ERROR: i32 = -32603;

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpcError {
    /// JSON-RPC code, or a negative errno (SPDK's convention).
    pub code: i32,
    /// Human-readable text.
    pub message: String,
}

impl RpcError {
    /// An error with this code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// -32700, as SPDK: "Parse error".
    pub fn parse() -> Self {
        Self::new(PARSE_ERROR, "Parse error")
    }

    /// -32600, as SPDK: "Invalid request".
    pub fn invalid_request() -> Self {
        Self::new(INVALID_REQUEST, "Invalid request")
    }

    /// -32601, as SPDK: "Method not found" (SPDK adds no name; we do).
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// -32602 with the decoder's complaint.
    pub fn invalid_params(why: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid parameters: {why}"))
    }

    /// -32603.
    pub fn internal(why: impl std::fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("Internal error: {why}"))
    }

    /// SPDK's errno form: code `-errno`, message `strerror(errno)` followed
    /// by what happened (`File exists: bdev n0 already exists`).
    pub fn errno(errno: i32, detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        let text = strerror(errno);
        let message = if detail.is_empty() {
            text
        } else {
            format!("{text}: {detail}")
        };
        Self::new(-errno, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// The C library's text for `errno` (what `spdk_strerror` returns).
pub fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_codes_and_texts_match_spdk() {
        let e = RpcError::errno(libc::ENODEV, "");
        assert_eq!(e.code, -19);
        assert_eq!(e.message, "No such device");
        let e = RpcError::errno(libc::EEXIST, "bdev n0 already exists");
        assert_eq!(e.code, -17);
        assert_eq!(e.message, "File exists: bdev n0 already exists");
    }
}
