//! What Chopsticks starts from: the runtime wasm (plain or zstd-compressed), the `:code`-only genesis, the
//! Chopsticks config and the seeded storage (`import-storage`) for the dev accounts and subnets.
use std::path::Path;

use serde_json::{Value, json};

use super::keys;
use super::{
    BlockMode, COMPRESSED_CODE_MAGIC, DevnetConfig, DevnetError, SPEC_NAME, WASM_MAGIC, ss58,
};

/// The plain runtime wasm in `path` (plain, or compressed as `scripts/build-runtime` writes it).
pub(super) fn read_runtime(path: &Path) -> Result<Vec<u8>, DevnetError> {
    let code = std::fs::read(path).map_err(|source| DevnetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if code.starts_with(&WASM_MAGIC) {
        return Ok(code);
    }
    if !code.starts_with(&COMPRESSED_CODE_MAGIC) {
        return Err(DevnetError::Config(format!(
            "{}: not a runtime wasm (neither the compressed-code magic 52bc537646db8e05 nor \\0asm); \
             use the .compact.compressed.wasm that scripts/build-runtime produces",
            path.display()
        )));
    }
    decompress_code(&code[COMPRESSED_CODE_MAGIC.len()..]).map_err(|source| {
        DevnetError::RuntimeCode {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Largest runtime we decompress (Substrate's own bomb limit for code blobs is 50 MiB).
const CODE_BOMB_LIMIT: u64 = 50 * 1024 * 1024;

/// The plain wasm of a zstd-compressed runtime (after the magic). The devnet genesis stores it uncompressed on
/// purpose: Chopsticks hands `:code` to its executor on every runtime call, and decompressing it there took about
/// 40 of the 90 ms each call costs (measured with `state_call Core_version` on a release-profile runtime: 85-100 ms
/// compressed, about 50 ms plain). Every transaction costs three such calls (nonce, pool validation, block
/// application). The rest of that cost grows with the wasm's size, which is why `scripts/build-runtime` builds the
/// test runtime for size (~28 ms a call).
pub(super) fn decompress_code(zstd: &[u8]) -> Result<Vec<u8>, RuntimeCodeError> {
    use std::io::Read;
    let decoder = ruzstd::decoding::StreamingDecoder::new(zstd)?;
    let mut plain = Vec::new();
    decoder.take(CODE_BOMB_LIMIT + 1).read_to_end(&mut plain)?;
    if plain.len() as u64 > CODE_BOMB_LIMIT {
        return Err(RuntimeCodeError::TooLarge);
    }
    if !plain.starts_with(&WASM_MAGIC) {
        return Err(RuntimeCodeError::NotWasm);
    }
    Ok(plain)
}

/// Why a compressed runtime does not decompress to wasm; the zstd or read error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeCodeError {
    /// Not a zstd frame.
    #[error("{0}")]
    Frame(#[from] ruzstd::decoding::errors::FrameDecoderError),
    /// The zstd stream is damaged.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// A decompression bomb.
    #[error("more than {CODE_BOMB_LIMIT} bytes once decompressed")]
    TooLarge,
    /// It decompressed, but not to wasm.
    #[error("the decompressed bytes are not wasm (no \\0asm header)")]
    NotWasm,
}

/// `0x`-prefixed lowercase hex.
pub(super) fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The raw chain spec with `:code` as its only storage entry.
pub fn genesis_json(code: &[u8]) -> Value {
    json!({
        "id": "minerfleet-devnet",
        "name": "minerfleet devnet",
        "chainType": "Development",
        "properties": { "ss58Format": 42, "tokenDecimals": 9, "tokenSymbol": "TAO" },
        "genesis": { "raw": { "top": { "0x3a636f6465": hex0x(code) } } }
    })
}

/// Chopsticks' config: loopback, no upstream, the seeded state in `import-storage`.
pub fn chopsticks_config(config: &DevnetConfig, genesis: &Path) -> Result<Value, DevnetError> {
    let mode = match config.block_mode {
        BlockMode::Instant => "Instant",
        BlockMode::Manual | BlockMode::Timer(_) => "Manual",
    };
    if let BlockMode::Timer(interval) = config.block_mode
        && interval.is_zero()
    {
        return Err(DevnetError::Config(
            "block timer interval must be greater than zero (use BlockMode::Instant or Manual instead)".into(),
        ));
    }
    Ok(json!({
        "genesis": genesis.to_string_lossy(),
        "host": "127.0.0.1",
        "port": config.port.unwrap_or(0),
        "build-block-mode": mode,
        "runtime-log-level": config.runtime_log_level,
        "import-storage": import_storage(config)?,
        // Lets Chopsticks' polkadot.js layer decode extrinsics of the wrapper-identifier variant.
        "registered-types": { "typesBundle": { "spec": { SPEC_NAME: { "signedExtensions": {
            "ChargeTransactionPaymentWrapper": { "extrinsic": { "tip": "Compact<Balance>" }, "payload": {} }
        } } } } }
    }))
}

/// The seeded state in Chopsticks' object form: pallet and item names are resolved through the runtime
/// metadata (an independent check of [`keys`]). Numbers are given as SCALE hex because Chopsticks drops
/// falsy values (a uid or tempo of 0 would otherwise delete the entry).
pub fn import_storage(config: &DevnetConfig) -> Result<Value, DevnetError> {
    let mut total: u64 = 0;
    let mut accounts = Vec::new();
    for (account, free) in &config.funded {
        total = total.checked_add(*free).ok_or_else(|| {
            DevnetError::Config("funded balances overflow u64 (TotalIssuance)".into())
        })?;
        accounts.push(json!([
            [ss58(account)],
            hex0x(&keys::funded_account_info(*free))
        ]));
    }
    let (mut added, mut tempo, mut count, mut uids, mut hotkeys, mut incentive) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut seen = std::collections::BTreeSet::new();
    for subnet in &config.subnets {
        if !seen.insert(subnet.netuid) {
            return Err(DevnetError::Config(format!(
                "subnet {} is listed twice in the devnet config",
                subnet.netuid
            )));
        }
        let n = u16::try_from(subnet.hotkeys.len()).map_err(|_| {
            DevnetError::Config(format!("subnet {}: more than 65535 hotkeys", subnet.netuid))
        })?;
        added.push(json!([[subnet.netuid], true]));
        tempo.push(json!([[subnet.netuid], scale_hex(&subnet.tempo)]));
        count.push(json!([[subnet.netuid], scale_hex(&n)]));
        for (uid, hotkey) in (0u16..).zip(&subnet.hotkeys) {
            uids.push(json!([[subnet.netuid, ss58(hotkey)], scale_hex(&uid)]));
            hotkeys.push(json!([[subnet.netuid, uid], hex0x(hotkey)]));
        }
        if !subnet.incentive.is_empty() {
            incentive.push(json!([
                [subnet.netuid],
                hex0x(&keys::encode_u16_vec(&subnet.incentive))
            ]));
        }
    }
    let mut storage = json!({
        "System": { "Account": accounts },
        "Balances": { "TotalIssuance": scale_hex(&total) },
        "SubtensorModule": {
            "NetworksAdded": added,
            "Tempo": tempo,
            "SubnetworkN": count,
            "Uids": uids,
            "Keys": hotkeys,
            "Incentive": incentive,
        },
    });
    if let Some(sudo) = &config.sudo {
        storage["Sudo"] = json!({ "Key": hex0x(sudo) });
    }
    if let Some(max_space) = config.max_space {
        storage["Commitments"] = json!({ "MaxSpace": scale_hex(&max_space) });
    }
    Ok(storage)
}

fn scale_hex<T: parity_scale_codec::Encode>(value: &T) -> String {
    hex0x(&value.encode())
}
