//! What the chain's runtime offers a publish, read from its metadata before anything is uploaded.
//!
//! Subtensor runtimes differ in what the commitment flow can use (subnet-protocol §8.1, §8.6): today's runtimes limit
//! commits by a per-epoch space budget (`Commitments.MaxSpace`, `UsedSpaceOf`, the subnet's `Tempo`); runtimes from
//! before March 2025 (e.g. specs 143, 218, 219, 224) allow one commit per `RateLimit` blocks since
//! `Commitments.LastCommitment` — a constant `RateLimit` in specs up to 219, a root-settable `RateLimit` storage value
//! (default from the `DefaultRateLimit` constant) later. [`capabilities`] checks every call, storage item and
//! transaction extension a publish uses and picks the budget rule, naming everything missing in one error, so an
//! incompatible runtime fails the publish before the first upload instead of after each one.

use scale_info::{PortableRegistry, TypeDef};
use subxt::Metadata;

use super::ChainError;
use super::commitment::MAX_RAW_LEN;
use super::extensions::check_signable;

/// How the runtime limits a hotkey's commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetRule {
    /// A byte budget per (netuid, hotkey) per subnet epoch: `MaxSpace`, `UsedSpaceOf`, `Tempo` (current runtimes).
    Space,
    /// At most one commit per `RateLimit` blocks since `LastCommitment` (runtimes before the space budget).
    RateLimit(RateLimitSource),
}

/// Where a rate-limit runtime keeps its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSource {
    /// The `Commitments.RateLimit` storage value (its default is the runtime's `DefaultRateLimit`).
    Storage,
    /// The `Commitments.RateLimit` constant, in blocks.
    Constant(u64),
}

/// What a publish can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// How the runtime limits a hotkey's commits.
    pub budget: BudgetRule,
}

/// Check `metadata` for everything a publish uses; one error names every missing item.
pub fn capabilities(metadata: &Metadata) -> Result<Capabilities, ChainError> {
    let mut missing = Vec::new();
    let storage = |pallet: &str, item: &str| {
        metadata
            .pallet_by_name(pallet)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(item))
            .is_some()
    };
    let need_storage = |missing: &mut Vec<String>, pallet: &str, item: &str| {
        if !storage(pallet, item) {
            missing.push(format!("storage {pallet}.{item}"));
        }
    };

    match metadata.pallet_by_name("Commitments") {
        None => missing.push("pallet Commitments".into()),
        Some(pallet) => match pallet.call_variant_by_name("set_commitment") {
            None => missing.push("call Commitments.set_commitment".into()),
            Some(call) => {
                let names: Vec<Option<&str>> =
                    call.fields.iter().map(|f| f.name.as_deref()).collect();
                if names != [Some("netuid"), Some("info")] {
                    missing.push(format!(
                        "call Commitments.set_commitment(netuid, info) (it takes {})",
                        names
                            .iter()
                            .map(|n| n.unwrap_or("_"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                } else if !has_variant(
                    metadata.types(),
                    call.fields[1].ty.id,
                    &format!("Raw{MAX_RAW_LEN}"),
                    8,
                ) {
                    missing.push(format!(
                        "a Raw{MAX_RAW_LEN} commitment field in Commitments.set_commitment's info"
                    ));
                }
            }
        },
    }
    need_storage(&mut missing, "Commitments", "CommitmentOf");
    need_storage(&mut missing, "SubtensorModule", "Uids");
    need_storage(&mut missing, "System", "Events");

    let budget = if storage("Commitments", "MaxSpace") {
        need_storage(&mut missing, "Commitments", "UsedSpaceOf");
        need_storage(&mut missing, "SubtensorModule", "Tempo");
        Some(BudgetRule::Space)
    } else if storage("Commitments", "LastCommitment") {
        match rate_limit_source(metadata) {
            Some(source) => Some(BudgetRule::RateLimit(source)),
            None => {
                missing
                    .push("Commitments.RateLimit (neither a storage value nor a constant)".into());
                None
            }
        }
    } else {
        missing.push(
            "a commit budget: storage Commitments.MaxSpace (space budget) or Commitments.LastCommitment (rate \
             limit)"
                .into(),
        );
        None
    };

    if let Err(e) = check_signable(metadata) {
        missing.push(match e {
            ChainError::UnsupportedExtension { name } => {
                format!("transaction extension minerfleet can sign for (`{name}` is unknown to this version: upgrade minerfleet)")
            }
            other => other.to_string(),
        });
    }

    match budget {
        Some(budget) if missing.is_empty() => Ok(Capabilities { budget }),
        _ => Err(ChainError::Incompatible { missing }),
    }
}

fn rate_limit_source(metadata: &Metadata) -> Option<RateLimitSource> {
    let pallet = metadata.pallet_by_name("Commitments")?;
    if pallet
        .storage()
        .and_then(|s| s.entry_by_name("RateLimit"))
        .is_some()
    {
        return Some(RateLimitSource::Storage);
    }
    let constant = pallet.constant_by_name("RateLimit")?;
    let mut bytes = constant.value();
    let value =
        scale_value::scale::decode_as_type(&mut bytes, constant.ty(), metadata.types()).ok()?;
    super::client::as_u64(&value, "Commitments.RateLimit")
        .ok()
        .map(RateLimitSource::Constant)
}

/// Whether the type `id` (or a type inside it, up to `depth` levels) is an enum with a variant called `name`.
fn has_variant(types: &PortableRegistry, id: u32, name: &str, depth: u8) -> bool {
    let Some(ty) = types.resolve(id) else {
        return false;
    };
    if depth == 0 {
        return false;
    }
    let inner = |id: u32| has_variant(types, id, name, depth - 1);
    match &ty.type_def {
        TypeDef::Variant(v) => {
            v.variants.iter().any(|v| v.name == name)
                || v.variants
                    .iter()
                    .flat_map(|v| &v.fields)
                    .any(|f| inner(f.ty.id))
        }
        TypeDef::Composite(c) => c.fields.iter().any(|f| inner(f.ty.id)),
        TypeDef::Sequence(s) => inner(s.type_param.id),
        TypeDef::Array(a) => inner(a.type_param.id),
        TypeDef::Tuple(t) => t.fields.iter().any(|f| inner(f.id)),
        _ => false,
    }
}
