//! A minimal JSON-RPC-over-HTTP client for the devnet's own node: one call, the head number, hex decoding.
use serde_json::{Value, json};

use super::DevnetError;

/// Head block number of the chain serving JSON-RPC over HTTP at `url` (`chain_getHeader`).
pub(crate) async fn head_number_at(http: &reqwest::Client, url: &str) -> Result<u32, DevnetError> {
    let header = rpc_call(http, url, "chain_getHeader", json!([])).await?;
    let number = header["number"].as_str().unwrap_or_default();
    u32::from_str_radix(number.trim_start_matches("0x"), 16).map_err(|_| DevnetError::Rpc {
        method: "chain_getHeader".into(),
        message: format!("unexpected header {header}"),
    })
}

/// Call `method` with `params` on the node at `url`; the JSON-RPC `result` (`null` when absent).
pub(crate) async fn rpc_call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<Value, DevnetError> {
    let err = |message: String| DevnetError::Rpc {
        method: method.to_string(),
        message,
    };
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| err(format!("{url}: {e}")))?;
    let mut reply: Value = response
        .json()
        .await
        .map_err(|e| err(format!("{url}: bad JSON-RPC reply: {e}")))?;
    if let Some(error) = reply.get("error") {
        return Err(err(error.to_string()));
    }
    Ok(reply
        .get_mut("result")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// Bytes from a `0x…` hex string the node returned for `method`.
pub(super) fn decode_hex(method: &str, text: &str) -> Result<Vec<u8>, DevnetError> {
    hex::decode(text.trim_start_matches("0x")).map_err(|e| DevnetError::Rpc {
        method: method.to_string(),
        message: format!("bad hex {text:?}: {e}"),
    })
}
