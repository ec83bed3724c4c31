//! One read of the chain with a deadline per attempt, asked again when the reconnecting client lost the connection
//! while it was in flight.

use std::future::Future;
use std::time::Instant;

use super::ChainClient;
use crate::chain::error::ChainError;

impl ChainClient {
    /// One read (every caller of this is a read: submission has its own path), with a deadline per attempt. A read
    /// that was in flight when the connection dropped fails with the reconnecting client's "will reconnect" error;
    /// it is asked again once the client is back (subxt's advice for that client), for up to `stall_after`, so a
    /// node restart between two steps of a commit does not fail the commit. At most
    /// [`super::ClientOptions::max_reads_in_flight`] reads are sent at once; the others wait here, and their deadline
    /// starts when they are sent.
    pub(in crate::chain) async fn within<C, F, T, E>(
        &self,
        what: &str,
        call: C,
    ) -> Result<T, ChainError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<T, E>>,
        E: ReadError,
    {
        // The semaphore is never closed, so acquiring only waits.
        let _sent = self.reads.acquire().await;
        let started = Instant::now();
        loop {
            match tokio::time::timeout(self.opts.rpc_timeout, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => match e.into_parts() {
                    (true, reason) if started.elapsed() < self.opts.stall_after => {
                        tracing::debug!(what, %reason, "chain read lost its connection; asking again");
                        tokio::time::sleep(self.opts.poll_interval).await;
                    }
                    (_, reason) => return Err(ChainError::rpc(what, reason)),
                },
                Err(_) => {
                    return Err(ChainError::RpcTimeout {
                        what: what.to_string(),
                        after: self.opts.rpc_timeout,
                    });
                }
            }
        }
    }
}

/// What [`ChainClient::within`] needs of a read's error: whether the reconnecting client lost the connection while
/// the read was in flight (then asking again is safe), and the error's message.
pub(in crate::chain) trait ReadError {
    fn into_parts(self) -> (bool, String);
}

impl ReadError for subxt::rpcs::Error {
    fn into_parts(self) -> (bool, String) {
        (self.is_disconnected_will_reconnect(), self.to_string())
    }
}

/// subxt's typed errors answer through `subxt::Error` (into which they convert transparently: same message).
macro_rules! read_error_via_subxt_error {
    ($($error:ty),* $(,)?) => {$(
        impl ReadError for $error {
            fn into_parts(self) -> (bool, String) {
                let e = subxt::Error::from(self);
                (e.is_disconnected_will_reconnect(), e.to_string())
            }
        }
    )*};
}

read_error_via_subxt_error!(
    subxt::error::OnlineClientAtBlockError,
    subxt::error::ExtrinsicError,
    subxt::error::StorageError,
    subxt::error::EventsError,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_lost_to_a_reconnect_is_asked_again_and_its_message_is_kept() {
        use subxt::error::{BackendError, StorageError};
        let lost = || subxt::rpcs::Error::DisconnectedWillReconnect("connection closed".into());

        let (again, reason) = lost().into_parts();
        assert!(again);
        assert!(
            reason.contains("reconnect automatically initiated"),
            "{reason}"
        );

        // subxt's typed errors carry the RPC error inside; the conversion must neither hide it nor reword it.
        let typed = StorageError::CannotFetchValue(BackendError::from(lost()));
        let message = typed.to_string();
        assert_eq!(typed.into_parts(), (true, message));

        let other = StorageError::CannotFetchValue(BackendError::Other("bad key".into()));
        let message = other.to_string();
        assert_eq!(other.into_parts(), (false, message));
        let (again, _) = subxt::rpcs::Error::Client("refused".into()).into_parts();
        assert!(!again);
    }
}
