//! clap value parsers shared by the commands: byte sizes (`8M`, `1.5GiB`) and durations. clap names the flag in
//! its error ("invalid value '5 parsecs' for '--chunk-size <SIZE>'"); these errors say which forms are accepted.

use std::time::Duration;

/// The size forms every size flag takes, for help texts and errors.
pub const SIZE_FORMS: &str = "a number of bytes with an optional unit: 1000, 8M, 500MB, 1.5GiB (k, M, G, T are \
                              powers of 1000; KiB, MiB, GiB, TiB powers of 1024; case-insensitive)";

/// Why a size flag's value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error("{original:?} is not a size ({source}): use {SIZE_FORMS}")]
    Parse {
        original: String,
        #[source]
        source: parse_size::Error,
    },
    #[error("{original:?} is 0 bytes, which would refuse everything: give a positive size")]
    Zero { original: String },
}

/// A byte size (see [`SIZE_FORMS`]); 0 is allowed.
pub fn size(text: &str) -> Result<u64, SizeError> {
    parse_size::parse_size(text.trim()).map_err(|source| SizeError::Parse {
        original: text.to_string(),
        source,
    })
}

/// A byte size above 0: for limits, where 0 would refuse everything.
pub fn positive_size(text: &str) -> Result<u64, SizeError> {
    match size(text)? {
        0 => Err(SizeError::Zero {
            original: text.to_string(),
        }),
        n => Ok(n),
    }
}

/// A positive number of seconds, fractions allowed (`0.5`, `30`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// A positive duration with a unit (`30s`, `5m`, `1h`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); e.g. 30s, 5m, 1h"))?;
    if d.is_zero() {
        return Err("must be longer than 0s".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units_and_fractions() {
        assert_eq!(size("500GB").ok(), Some(500_000_000_000));
        assert_eq!(size("32MiB").ok(), Some(32 << 20));
        assert_eq!(size("8M").ok(), Some(8_000_000));
        assert_eq!(size("1.5GiB").ok(), Some(3 << 29));
        assert_eq!(size("1000").ok(), Some(1000));
        assert_eq!(size("2 k").ok(), Some(2000));
        assert_eq!(size("0").ok(), Some(0));
        assert!(positive_size("0").is_err());
        for bad in ["GB", "5 parsecs", "99999999999TB", "-1", ""] {
            let err = size(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("1.5GiB") && err.contains("KiB"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn durations_and_seconds_are_positive() {
        assert_eq!(duration("5m").ok(), Some(Duration::from_secs(300)));
        assert!(duration("0s").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(seconds("0.5").ok(), Some(Duration::from_millis(500)));
        assert!(seconds("0").is_err());
        assert!(seconds("inf").is_err());
    }
}
