//! Reading one storage entry through the runtime metadata, and decoding the dynamic values it returns.

use scale_value::{Composite, Value, ValueDef};

use super::ChainClient;
use crate::chain::config::SubtensorConfig;
use crate::chain::error::ChainError;

impl ChainClient {
    pub(super) async fn fetch<K>(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        pallet: &str,
        entry: &str,
        keys: K,
        optional: bool,
    ) -> Result<Option<Value>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues
            + Clone,
    {
        let what = format!("{pallet}.{entry}");
        let addr = || subxt::dynamic::storage::<K, Value>(pallet, entry);
        let storage = at.storage();
        let value = if optional {
            self.within(&what, || storage.try_fetch(addr(), keys.clone()))
                .await?
        } else {
            Some(
                self.within(&what, || storage.fetch(addr(), keys.clone()))
                    .await?,
            )
        };
        value
            .map(|v| {
                v.decode_as::<Value>()
                    .map_err(|e| ChainError::rpc(&what, e))
            })
            .transpose()
    }
}

pub(super) fn named<'a, T>(v: &'a Value<T>, name: &str) -> Option<&'a Value<T>> {
    match &v.value {
        ValueDef::Composite(Composite::Named(fs)) => {
            fs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        _ => None,
    }
}

pub(in crate::chain) fn as_u64<T>(v: &Value<T>, what: &str) -> Result<u64, ChainError> {
    let mut cur = v;
    loop {
        match &cur.value {
            ValueDef::Composite(c) if c.len() == 1 => cur = c.values().next().expect("len 1"),
            _ => break,
        }
    }
    cur.as_u128()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| ChainError::rpc(what, format!("expected a number, got {cur}")))
}

pub(super) fn value_bytes_u128<T>(v: &Value<T>) -> Option<Vec<u128>> {
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<T>> = c.values().collect();
            if vals.len() == 1 && matches!(vals[0].value, ValueDef::Composite(_)) {
                return value_bytes_u128(vals[0]);
            }
            vals.into_iter().map(|x| x.as_u128()).collect()
        }
        _ => None,
    }
}

pub(super) fn value_bytes<T>(v: &Value<T>) -> Option<Vec<u8>> {
    value_bytes_u128(v)?
        .into_iter()
        .map(|n| u8::try_from(n).ok())
        .collect()
}
