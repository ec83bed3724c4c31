//! Output helpers shared by commands: JSON to stdout and human-friendly numbers.

use std::io::Write;

/// Print a serializable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_stdout(&text)?;
    Ok(())
}

/// Write `text` to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `3.21 GiB` style sizes (binary units, as `max_bytes` limits are written).
pub fn human_bytes(bytes: u64) -> String {
    minerfleet::report::lines::human_bytes_with(bytes, 2)
}

/// `3.21B` / `772.0M` / `12.3K` style counts (decimal units, as parameter limits are written).
pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// `5Grwva…utQY`: enough of an SS58 address to recognise it in a table.
pub fn short_ss58(ss58: &str) -> String {
    if ss58.len() > 12 && ss58.is_ascii() {
        format!("{}…{}", &ss58[..6], &ss58[ss58.len() - 4..])
    } else {
        ss58.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(29 * 1024 * 1024 * 1024), "29.00 GiB");
        assert_eq!(human_count(3_210_000_000), "3.21B");
        assert_eq!(human_count(772_000_000), "772.0M");
        assert_eq!(
            short_ss58("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"),
            "5Grwva…utQY"
        );
    }
}
