//! Redis's errors as the library's: [`BackendError`] with its kind read from redis-rs's error.

use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::error::{BackendError, BackendErrorKind, Error};

impl From<RedisError> for BackendError {
    fn from(error: RedisError) -> Self {
        let kind = if error.is_timeout() {
            BackendErrorKind::Timeout
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            // A server loading its data, or demoted to a replica by a failover: another try,
            // on the new master, may work.
            || matches!(
                error.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                )
            )
        {
            BackendErrorKind::Connection
        } else {
            BackendErrorKind::Refused
        };
        BackendError::new("redis", kind, error)
    }
}

impl From<RedisError> for Error {
    fn from(error: RedisError) -> Self {
        Error::Backend(error.into())
    }
}
