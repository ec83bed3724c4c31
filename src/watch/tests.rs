//! Unit tests of [`super`]: backoff and which errors the watch retries.

use super::backoff::delay;
use super::*;

#[test]
fn backoff_doubles_up_to_the_cap() {
    let (min, max) = (Duration::from_secs(10), Duration::from_secs(300));
    let got: Vec<u64> = (1..=7).map(|n| delay(min, max, n).as_secs()).collect();
    assert_eq!(got, [10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(delay(min, max, 1000), max);
}

#[test]
fn a_service_down_is_retried_and_a_configuration_error_stops_the_watch() {
    let down = PublishError::ChainUnreachable {
        hint: String::new(),
        source: crate::chain::ChainError::Stalled(Duration::from_secs(60)),
    };
    assert!(down.is_unavailable() && !down.is_config());
    // The retry warning names the cause, which the typed error keeps out of its own message.
    assert_eq!(
        causes(down),
        format!(
            "the chain is unreachable: {}",
            crate::chain::ChainError::Stalled(Duration::from_secs(60))
        )
    );
    let refused = PublishError::HubRefused {
        hub: "http://127.0.0.1:1".into(),
        what: "the Hub token".into(),
        source: Box::new(crate::hub::client::HubError::ShuttingDown),
    };
    assert!(refused.is_unavailable());
    let config = PublishError::NoToken {
        hub: "https://huggingface.co".into(),
    };
    assert!(!config.is_unavailable());
    assert!(WatchError::from(config).is_config(), "exit code 2");

    let unwatchable = WatchError::Unwatchable(vec!["w/a: locked".into(), "w/b: no key".into()]);
    assert!(!unwatchable.is_config(), "exit code 1");
    assert_eq!(unwatchable.kind(), "unwatchable");
    assert_eq!(
        unwatchable.to_string(),
        "2 of the fleet's miners cannot be watched:\n  w/a: locked\n  w/b: no key"
    );
}
