//! What the benches share: sizes from the environment, process readings from Linux `/proc` (0 where unavailable):
//! CPU seconds and peak RSS, and a link emulator ([`link`]) to put bandwidth and round-trip time between a client
//! and a server on one machine.
#![allow(dead_code)]

pub mod link;

/// `n` dev hotkeys (`//bench//0`…) written unencrypted as `bench/h0`… under `wallets`, with their signers.
pub fn dev_hotkeys(wallets: &std::path::Path, n: usize) -> Vec<minerfleet::chain::HotkeySigner> {
    (0..n)
        .map(|i| {
            let secret =
                minerfleet::wallet::KeySecret::from_dev_uri(&format!("//bench//{i}")).unwrap();
            minerfleet::wallet::write_hotkey(wallets, "bench", &format!("h{i}"), &secret, None)
                .unwrap();
            minerfleet::chain::HotkeySigner::from_hotkey(&secret.hotkey())
        })
        .collect()
}

/// User + system CPU seconds used so far by `process`: `"self"` or a PID. From `/proc/<process>/stat`: after the
/// `(comm)` field, utime and stime are the 12th and 13th fields, in clock ticks (100 a second on Linux).
pub fn cpu_seconds(process: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process in bytes (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `var` as a whole number, `default` when unset. A value that does not parse stops the bench: a typo must not
/// quietly measure the default.
pub fn env_num(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// `var` as a positive whole number; `default` when unset, zero or not a number.
pub fn env_positive(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}
