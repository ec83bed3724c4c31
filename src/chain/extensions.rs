//! Connect-time check of the chain's transaction extensions (subnet-protocol §9.1): every non-empty extension must
//! be one minerfleet encodes (fee slot under either identifier); zero-sized ones are skipped. Anything else is a
//! refusal that names the extension, before any signing.

use scale_info::{PortableRegistry, TypeDef};
use subxt::Metadata;

use super::ChainError;
use super::config::ENCODABLE_EXTENSIONS;

/// The extension identifiers the chain declares for signing (extension version 0, i.e. v4 transactions), in order.
pub fn extension_identifiers(metadata: &Metadata) -> Vec<String> {
    metadata
        .extrinsic()
        .transaction_extensions_by_version(0)
        .map(|exts| exts.map(|e| e.identifier().to_string()).collect())
        .unwrap_or_default()
}

/// Refuse when the chain declares a non-empty extension minerfleet cannot encode.
pub fn check_signable(metadata: &Metadata) -> Result<(), ChainError> {
    let types = metadata.types();
    let Some(exts) = metadata.extrinsic().transaction_extensions_by_version(0) else {
        return Err(ChainError::Metadata {
            what: "transaction extension list (version 0)".into(),
        });
    };
    for ext in exts {
        let empty =
            is_type_empty(ext.extra_ty(), types) && is_type_empty(ext.additional_ty(), types);
        if !empty && !ENCODABLE_EXTENSIONS.contains(&ext.identifier()) {
            return Err(ChainError::UnsupportedExtension {
                name: ext.identifier().to_string(),
            });
        }
    }
    Ok(())
}

/// Whether a type encodes to zero bytes (the rule frame-decode uses to skip an extension).
pub fn is_type_empty(type_id: u32, types: &PortableRegistry) -> bool {
    let Some(ty) = types.resolve(type_id) else {
        return false;
    };
    match &ty.type_def {
        TypeDef::Composite(c) => c.fields.iter().all(|f| is_type_empty(f.ty.id, types)),
        TypeDef::Tuple(t) => t.fields.iter().all(|f| is_type_empty(f.id, types)),
        TypeDef::Array(a) => a.len == 0 || is_type_empty(a.type_param.id, types),
        _ => false,
    }
}
