//! The Hub's rate-limit headers (IETF draft-ietf-httpapi-ratelimit-headers, version 9, as the Hub sends them):
//!
//! * `RateLimit: "api";r=412;t=130`: 412 requests left in the bucket `api`, the window resets in 130 s;
//! * `RateLimit-Policy: "fixed window";"api";q=1000;w=300`: 1 000 requests per 300-second fixed window.
//!
//! Parsing is lenient (unknown parameters and items are skipped, numbers that do not parse drop the item) and
//! bounded: only the first [`MAX_HEADER_BYTES`] of a header are read.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Longest header value looked at.
pub const MAX_HEADER_BYTES: usize = 1024;

/// What one response says about one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// `RateLimit`: requests left in the current window.
    pub remaining: Option<u32>,
    /// `RateLimit`: time until the window resets.
    pub reset: Option<Duration>,
    /// `RateLimit-Policy`: requests per window.
    pub quota: Option<u32>,
    /// `RateLimit-Policy`: window length.
    pub window: Option<Duration>,
}

impl Observed {
    /// True when the answer carried no rate-limit header.
    pub fn is_empty(&self) -> bool {
        *self == Observed::default()
    }
}

/// The `RateLimit` and `RateLimit-Policy` values for `bucket` (`api`, `resolvers`) in `headers`.
pub fn observe(headers: &HeaderMap, bucket: &str) -> Observed {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| &s[..floor_char_boundary(s, MAX_HEADER_BYTES)])
    };
    let mut out = Observed::default();
    if let Some(params) = value("ratelimit").and_then(|v| item_for(v, bucket)) {
        out.remaining = param(&params, "r").and_then(|v| u32::try_from(v).ok());
        out.reset = param(&params, "t").map(Duration::from_secs);
    }
    if let Some(params) = value("ratelimit-policy").and_then(|v| item_for(v, bucket)) {
        // A quota of 0 is no policy anyone could follow (fault injection sends it): ignored.
        out.quota = param(&params, "q")
            .and_then(|v| u32::try_from(v).ok())
            .filter(|q| *q > 0);
        out.window = param(&params, "w")
            .filter(|w| *w > 0)
            .map(Duration::from_secs);
    }
    out
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// The `key=value` parameters of the comma-separated item that names `bucket` as a quoted string.
fn item_for(value: &str, bucket: &str) -> Option<Vec<(String, String)>> {
    value.split(',').find_map(|item| {
        let mut named = false;
        let mut params = Vec::new();
        for part in item.split(';').map(str::trim) {
            if let Some(name) = part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                named |= name.eq_ignore_ascii_case(bucket);
            } else if let Some((k, v)) = part.split_once('=') {
                params.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        named.then_some(params)
    })
}

fn param(params: &[(String, String)], key: &str) -> Option<u64> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_hubs_headers_parse() {
        let h = map(&[
            ("ratelimit", "\"api\";r=412;t=130"),
            ("ratelimit-policy", "\"fixed window\";\"api\";q=1000;w=300"),
        ]);
        assert_eq!(
            observe(&h, "api"),
            Observed {
                remaining: Some(412),
                reset: Some(Duration::from_secs(130)),
                quota: Some(1000),
                window: Some(Duration::from_secs(300)),
            }
        );
        assert!(observe(&h, "resolvers").is_empty());
    }

    #[test]
    fn several_buckets_and_odd_spacing() {
        let h = map(&[(
            "RateLimit",
            "\"resolvers\";r=4999;t=10, \"api\" ; r=0 ; t=55",
        )]);
        let o = observe(&h, "api");
        assert_eq!(o.remaining, Some(0));
        assert_eq!(o.reset, Some(Duration::from_secs(55)));
        assert_eq!(observe(&h, "resolvers").remaining, Some(4999));
    }

    #[test]
    fn garbage_is_ignored() {
        let h = map(&[
            ("ratelimit", "\"api\";r=-1;t=x"),
            ("ratelimit-policy", "\"api\";q=0;w=0"),
        ]);
        assert!(observe(&h, "api").is_empty(), "{:?}", observe(&h, "api"));
        let long = format!("\"api\";r=5;t=1;{}", "x".repeat(5000));
        let h = map(&[("ratelimit", long.as_str())]);
        assert_eq!(observe(&h, "api").remaining, Some(5));
    }
}
