//! SQLite's errors as the library's: a [`BackendError`] whose kind says whether trying again may
//! help (a database locked by another process is a timeout), and whose message says what to do.

use rusqlite::ErrorCode;

use crate::error::{BackendError, BackendErrorKind, Error};

/// The library's error for a SQLite error.
pub(super) fn sqlite_error(error: &rusqlite::Error) -> Error {
    let (kind, advice) = match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            BackendErrorKind::Timeout,
            "the database stayed locked by another connection for the whole busy timeout; try \
             again, or raise busy_timeout in the URL",
        ),
        Some(ErrorCode::ReadOnly) => (
            BackendErrorKind::Refused,
            "the database is read-only: give the process write access to the file and its \
             directory",
        ),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => (
            BackendErrorKind::Refused,
            "the file is not a SQLite database, or is corrupt: point the URL at another file",
        ),
        Some(ErrorCode::DiskFull) => (
            BackendErrorKind::Refused,
            "the disk is full: free some space",
        ),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => (
            BackendErrorKind::Connection,
            "the database file cannot be opened: check that its directory exists and can be \
             written",
        ),
        Some(ErrorCode::SystemIoFailure) => (
            BackendErrorKind::Connection,
            "reading or writing the database file failed",
        ),
        _ => (BackendErrorKind::Refused, ""),
    };
    let message = if advice.is_empty() {
        error.to_string()
    } else {
        format!("{error} ({advice})")
    };
    Error::Backend(BackendError::new("sqlite", kind, message))
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        sqlite_error(&error)
    }
}
