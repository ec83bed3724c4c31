//! What the node says while a submitted transaction is watched, and what RPC failures mean, in plain words.
//!
//! `author_submitAndWatchExtrinsic` notifications are read as raw JSON rather than through subxt's typed status:
//! nodes (and Chopsticks) send `invalid`/`dropped` with a reason object (`{"invalid":{"stale":null}}`) where subxt
//! expects a bare word, which surfaced to operators as `watch failed: RPC error: cannot deserialize response:
//! invalid type: map, expected unit`. Here every status is understood, and the reason kept.

use serde_json::Value;
use subxt::utils::H256;

/// One status notification of a watched transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolUpdate {
    /// Accepted, waiting in the pool (`future`, `ready`, `broadcast`).
    Pooled,
    /// Included in a (best) block.
    InBlock(H256),
    /// The block that included it was retracted (a re-org); it may be included again.
    Retracted,
    /// Finalized in this block.
    Finalized(H256),
    /// The node gave up watching for finality (too many watchers); the transaction's fate is unknown.
    FinalityTimeout,
    /// Replaced in the pool by another transaction with the same signer and nonce.
    Usurped,
    /// Dropped from the pool (full pool); it may still be in other nodes' pools.
    Dropped(Option<String>),
    /// The node found it invalid (e.g. its nonce was used, its era ended), with the node's reason when it sent one.
    Invalid(Option<String>),
    /// A notification this client does not know, kept verbatim.
    Unknown(String),
}

impl PoolUpdate {
    /// Read one notification (`"ready"`, `{"inBlock":"0x…"}`, `{"invalid":{…}}`, …).
    pub fn parse(raw: &Value) -> PoolUpdate {
        let (tag, body) = match raw {
            Value::String(tag) => (tag.as_str(), &Value::Null),
            Value::Object(map) if map.len() == 1 => {
                let (tag, body) = map.iter().next().expect("one entry");
                (tag.as_str(), body)
            }
            other => return PoolUpdate::Unknown(other.to_string()),
        };
        let reason = || (!body.is_null()).then(|| body.to_string());
        let hash = || {
            body.as_str()
                .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(H256)
        };
        match tag {
            "future" | "ready" | "broadcast" => PoolUpdate::Pooled,
            "inBlock" => {
                hash().map_or_else(|| PoolUpdate::Unknown(raw.to_string()), PoolUpdate::InBlock)
            }
            "finalized" => hash().map_or_else(
                || PoolUpdate::Unknown(raw.to_string()),
                PoolUpdate::Finalized,
            ),
            "retracted" => PoolUpdate::Retracted,
            "finalityTimeout" => PoolUpdate::FinalityTimeout,
            "usurped" => PoolUpdate::Usurped,
            "dropped" => PoolUpdate::Dropped(reason()),
            "invalid" => PoolUpdate::Invalid(reason()),
            _ => PoolUpdate::Unknown(raw.to_string()),
        }
    }

    /// Why watching stops here without a final status, in words; `None` while the watch goes on.
    pub fn ends_watch(&self) -> Option<String> {
        let with = |what: &str, reason: &Option<String>| match reason {
            Some(r) => format!("{what} ({r})"),
            None => what.to_string(),
        };
        match self {
            PoolUpdate::Pooled
            | PoolUpdate::InBlock(_)
            | PoolUpdate::Retracted
            | PoolUpdate::Finalized(_) => None,
            PoolUpdate::FinalityTimeout => {
                Some("the node stopped watching the transaction before it was finalized".into())
            }
            PoolUpdate::Usurped => Some(
                "the node replaced it with another transaction of this hotkey with the same nonce (is another program \
                 using this hotkey?)"
                    .into(),
            ),
            PoolUpdate::Dropped(reason) => {
                Some(with("the node dropped it from its transaction pool", reason))
            }
            PoolUpdate::Invalid(reason) => Some(with("the node found it no longer valid", reason)),
            PoolUpdate::Unknown(raw) => Some(format!("the node sent a status minerfleet does not know: {raw}")),
        }
    }
}

/// An RPC failure in words an operator can act on. The reconnecting client reports a dropped connection as
/// `RPC error: the connection was lost (The background task closed connection closed; restart required); reconnect
/// automatically initiated`, and a status it could not read as `cannot deserialize response: …`.
pub fn plain_rpc_error(error: &subxt::rpcs::Error) -> String {
    let text = error.to_string();
    if error.is_disconnected_will_reconnect()
        || text.contains("background task closed")
        || text.contains("connection closed")
        || text.contains("connection was lost")
    {
        return "the connection to the chain node was lost (the node restarted or the network dropped); \
                reconnecting and reading the outcome from the chain"
            .into();
    }
    if text.contains("invalid type: map, expected unit") {
        return "the node reported the transaction invalid or dropped it".into();
    }
    if let subxt::rpcs::Error::Deserialization(e) = error {
        return format!("the node sent an answer minerfleet cannot read ({e})");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_status_shape_nodes_send_is_understood() {
        let h = format!("0x{}", "ab".repeat(32));
        assert_eq!(PoolUpdate::parse(&json!("ready")), PoolUpdate::Pooled);
        assert_eq!(
            PoolUpdate::parse(&json!({"ready": null})),
            PoolUpdate::Pooled
        );
        assert_eq!(PoolUpdate::parse(&json!("future")), PoolUpdate::Pooled);
        assert_eq!(
            PoolUpdate::parse(&json!({"broadcast": ["12D3Koo"]})),
            PoolUpdate::Pooled
        );
        assert_eq!(
            PoolUpdate::parse(&json!({"inBlock": h})),
            PoolUpdate::InBlock(H256([0xab; 32]))
        );
        assert_eq!(
            PoolUpdate::parse(&json!({"finalized": h})),
            PoolUpdate::Finalized(H256([0xab; 32]))
        );
        assert_eq!(
            PoolUpdate::parse(&json!("invalid")),
            PoolUpdate::Invalid(None)
        );
        // Chopsticks sends the reason object that subxt's typed status cannot read
        let invalid = PoolUpdate::parse(&json!({"invalid": {"stale": null}}));
        assert_eq!(
            invalid,
            PoolUpdate::Invalid(Some(r#"{"stale":null}"#.into()))
        );
        let why = invalid.ends_watch().unwrap();
        assert!(
            why.contains("no longer valid") && why.contains("stale"),
            "{why}"
        );
        assert_eq!(
            PoolUpdate::parse(&json!("dropped")),
            PoolUpdate::Dropped(None)
        );
        assert!(matches!(
            PoolUpdate::parse(&json!({"usurped": h})),
            PoolUpdate::Usurped
        ));
        assert!(matches!(
            PoolUpdate::parse(&json!({"inBlock": "0x12"})),
            PoolUpdate::Unknown(_)
        ));
        assert!(matches!(
            PoolUpdate::parse(&json!(42)),
            PoolUpdate::Unknown(_)
        ));
        assert!(PoolUpdate::Pooled.ends_watch().is_none());
        assert!(PoolUpdate::Retracted.ends_watch().is_none());
    }

    #[test]
    fn rpc_failures_seen_by_operators_are_put_in_words() {
        let lost = subxt::rpcs::Error::DisconnectedWillReconnect(
            "The background task closed connection closed; restart required".into(),
        );
        let words = plain_rpc_error(&lost);
        assert!(
            words.contains("connection to the chain node was lost"),
            "{words}"
        );
        assert!(!words.contains("background task"), "{words}");
        let map =
            subxt::rpcs::Error::Deserialization(serde_json::from_str::<()>("{}").unwrap_err());
        assert!(map.to_string().contains("invalid type: map, expected unit"));
        assert_eq!(
            plain_rpc_error(&map),
            "the node reported the transaction invalid or dropped it"
        );
        let other = subxt::rpcs::Error::Client("boom".into());
        assert!(plain_rpc_error(&other).contains("boom"));
    }
}
