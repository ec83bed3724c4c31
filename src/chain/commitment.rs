//! The `Commitments` payload as metadata-driven values: building `set_commitment`'s `info` argument and decoding
//! a stored `Registration` (subnet-protocol §8.2, §8.3, §8.7).
//!
//! minerfleet writes exactly one field, a `Raw{len}` holding the metadata string. The encoder (subxt/scale-encode,
//! driven by the chain's `Data` type) picks the variant by name, so tags come from metadata, never from here.

use scale_value::{Composite, Value, ValueDef};

use super::ChainError;
use crate::model::ModelId;

/// The largest payload a `Raw` field holds.
pub const MAX_RAW_LEN: usize = 128;

/// `info` for `set_commitment`: `{ fields: [Raw{len}(bytes)] }`.
pub fn commitment_info(data: &[u8]) -> Result<Value, ChainError> {
    if data.len() > MAX_RAW_LEN {
        return Err(ChainError::DataTooLong { len: data.len() });
    }
    let field = Value::unnamed_variant(format!("Raw{}", data.len()), [Value::from_bytes(data)]);
    Ok(Value::named_composite([(
        "fields",
        Value::unnamed_composite([field]),
    )]))
}

/// The dynamic `Commitments.set_commitment(netuid, info)` call.
pub fn set_commitment_call(
    netuid: u16,
    data: &[u8],
) -> Result<subxt::tx::DynamicPayload<(u16, Value)>, ChainError> {
    Ok(subxt::dynamic::transaction(
        "Commitments",
        "set_commitment",
        (netuid, commitment_info(data)?),
    ))
}

/// One field of a stored commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `Raw{n}` with its bytes.
    Raw(Vec<u8>),
    /// Any other variant, by name (hashes, timelocked data, `BigRaw`, `ResetBondsFlag`, …).
    Other(String),
}

/// A decoded `CommitmentOf` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Deposit held (zero on current subtensor).
    pub deposit: u128,
    /// Block the commitment was written at (the model's upload block).
    pub block: u64,
    /// The fields, in order; validators read only the first.
    pub fields: Vec<Field>,
}

impl Registration {
    /// The bytes of the first field when it is `Raw`.
    pub fn raw(&self) -> Option<&[u8]> {
        match self.fields.first() {
            Some(Field::Raw(b)) => Some(b),
            _ => None,
        }
    }

    /// The first field parsed as a model metadata string, as validators do.
    pub fn model_id(&self) -> Option<Result<ModelId, crate::model::id::MetadataError>> {
        let raw = self.raw()?;
        let s = std::str::from_utf8(raw).ok()?;
        Some(ModelId::parse(s))
    }

    /// Decode from a metadata-driven `Value` of the chain's `Registration` type.
    pub fn from_value<T>(v: &Value<T>) -> Result<Registration, ChainError> {
        let bad = |what: &str| ChainError::Metadata {
            what: format!("decodable Registration ({what})"),
        };
        let deposit = field(v, "deposit")
            .and_then(as_uint)
            .ok_or_else(|| bad("deposit"))?;
        let block = field(v, "block")
            .and_then(as_uint)
            .ok_or_else(|| bad("block"))? as u64;
        let info = field(v, "info").ok_or_else(|| bad("info"))?;
        let list = field(info, "fields").ok_or_else(|| bad("info.fields"))?;
        let items = composite_values(list).ok_or_else(|| bad("info.fields list"))?;
        let mut fields = Vec::with_capacity(items.len());
        for item in items {
            let ValueDef::Variant(var) = &item.value else {
                return Err(bad("field variant"));
            };
            if let Some(len) = var
                .name
                .strip_prefix("Raw")
                .and_then(|n| n.parse::<usize>().ok())
            {
                let bytes = var
                    .values
                    .values()
                    .next()
                    .and_then(bytes_of)
                    .ok_or_else(|| bad("Raw bytes"))?;
                if bytes.len() != len {
                    return Err(bad("Raw length"));
                }
                fields.push(Field::Raw(bytes));
            } else {
                fields.push(Field::Other(var.name.clone()));
            }
        }
        Ok(Registration {
            deposit,
            block,
            fields,
        })
    }
}

fn field<'a, T>(v: &'a Value<T>, name: &str) -> Option<&'a Value<T>> {
    match &v.value {
        ValueDef::Composite(Composite::Named(fs)) => {
            fs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        // Newtype wrappers (e.g. `TaoBalance(u64)`, `BoundedVec(Vec<…>)`) may appear as one unnamed field.
        ValueDef::Composite(Composite::Unnamed(fs)) if fs.len() == 1 => field(&fs[0], name),
        _ => None,
    }
}

fn unwrap_newtype<T>(v: &Value<T>) -> &Value<T> {
    match &v.value {
        ValueDef::Composite(Composite::Unnamed(fs)) if fs.len() == 1 => unwrap_newtype(&fs[0]),
        ValueDef::Composite(Composite::Named(fs)) if fs.len() == 1 => unwrap_newtype(&fs[0].1),
        _ => v,
    }
}

fn as_uint<T>(v: &Value<T>) -> Option<u128> {
    unwrap_newtype(v).as_u128()
}

fn composite_values<T>(v: &Value<T>) -> Option<Vec<&Value<T>>> {
    // BoundedVec<Data, _> decodes as a sequence, possibly wrapped in a newtype composite.
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<T>> = c.values().collect();
            if vals.len() == 1 && matches!(vals[0].value, ValueDef::Composite(_)) {
                composite_values(vals[0])
            } else {
                Some(vals)
            }
        }
        _ => None,
    }
}

fn bytes_of<T>(v: &Value<T>) -> Option<Vec<u8>> {
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<T>> = c.values().collect();
            if vals.len() == 1 && matches!(vals[0].value, ValueDef::Composite(_)) {
                return bytes_of(vals[0]);
            }
            vals.into_iter()
                .map(|b| b.as_u128().and_then(|n| u8::try_from(n).ok()))
                .collect()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_payloads_over_128_bytes() {
        assert!(commitment_info(&[b'a'; 128]).is_ok());
        let err = commitment_info(&[b'a'; 129]).unwrap_err();
        assert!(err.to_string().contains("129 bytes"), "{err}");
    }

    #[test]
    fn decodes_registration_values() {
        let v = Value::named_composite([
            ("deposit", Value::u128(0)),
            ("block", Value::u128(4)),
            (
                "info",
                Value::named_composite([(
                    "fields",
                    Value::unnamed_composite([
                        Value::unnamed_variant("Raw5", [Value::from_bytes(b"world")]),
                        Value::unnamed_variant("ResetBondsFlag", []),
                    ]),
                )]),
            ),
        ]);
        let r = Registration::from_value(&v).unwrap();
        assert_eq!(r.block, 4);
        assert_eq!(r.raw(), Some(&b"world"[..]));
        assert_eq!(r.fields[1], Field::Other("ResetBondsFlag".into()));
        let broken = Value::named_composite([("deposit", Value::u128(0))]);
        assert!(Registration::from_value(&broken).is_err());
    }
}
