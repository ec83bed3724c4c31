//! Unit tests of [`super`]: step errors keep their cause and name a stable kind.

use std::error::Error as _;

use super::*;
use crate::chain::ChainError;
use crate::hub::client::HubError;

#[test]
fn step_errors_keep_their_cause_and_name_a_stable_kind() {
    let hub = StepError::from(HubError::ShuttingDown);
    assert_eq!(hub.kind(), "shutting_down");
    assert_eq!(hub.to_string(), HubError::ShuttingDown.to_string());
    let chain = StepError::from(ChainError::Stalled(std::time::Duration::from_secs(60)));
    assert_eq!(chain.kind(), "chain_rpc");
    let io = StepError::Io {
        path: "/models/m1".into(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
    };
    assert_eq!(io.kind(), "io");
    assert!(io.to_string().starts_with("/models/m1: "), "{io}");
    assert!(io.source().is_some(), "the io::Error is kept as the source");
    let gone = gone("Hub")(actix::MailboxError::Closed);
    assert_eq!(gone.kind(), "shutting_down");
    assert!(gone.to_string().starts_with("Hub actor: "), "{gone}");
    assert!(gone.source().is_some());
    let unregistered = StepError::NotRegistered {
        ss58: "5F".into(),
        netuid: 7,
        wallet: "w".into(),
        hotkey: "h".into(),
    };
    assert_eq!(unregistered.kind(), "not_registered");
    assert!(
        unregistered
            .to_string()
            .contains("btcli subnets register --netuid 7 --wallet.name w --wallet.hotkey h"),
        "{unregistered}"
    );
    assert_eq!(internal("x").kind(), "internal");
}
