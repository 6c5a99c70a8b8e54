//! Errors from DPDK calls, with DPDK's own message for the code.

use std::ffi::CStr;
use std::fmt;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from the DPDK layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `Eal::init` was called while an EAL is (or was) initialised in this
    /// process; DPDK supports one initialisation per process.
    EalAlreadyInitialised,
    /// A DPDK call failed.
    Call {
        /// The DPDK function (or operation) that failed.
        op: &'static str,
        /// The positive errno / rte_errno value.
        code: i32,
        /// Extra context: a device name, a queue, a hint.
        context: String,
    },
    /// An argument was refused before DPDK was called.
    Invalid(String),
}

impl Error {
    /// Builds an error from a negative return value (`-errno`) or an
    /// rte_errno value.
    pub fn call(op: &'static str, code: i32, context: impl Into<String>) -> Self {
        Error::Call {
            op,
            code: code.abs(),
            context: context.into(),
        }
    }

    /// Builds an error from the thread's current `rte_errno`.
    pub fn from_rte_errno(op: &'static str, context: impl Into<String>) -> Self {
        // SAFETY: reads the calling thread's rte_errno (a per-lcore variable).
        let code = unsafe { dpdk_sys::shim_rte_errno() };
        Self::call(op, code, context)
    }

    /// The errno value of a failed call, if any.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// DPDK's text for an errno or rte_errno value.
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that
    // stays valid at least until the next call on this thread; we copy it.
    unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EalAlreadyInitialised => write!(
                f,
                "the DPDK EAL is already initialised in this process (DPDK allows one init per process)"
            ),
            Error::Call { op, code, context } => {
                write!(f, "{op} failed: {} (errno {code})", strerror(*code))?;
                if !context.is_empty() {
                    write!(f, ": {context}")?;
                }
                Ok(())
            }
            Error::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}
