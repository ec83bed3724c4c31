//! Hugging Face Hub protocol: the upload/download client ([`client`]), the quotas it obeys ([`limits`], planned per
//! account by [`quota`]), where the access token comes from ([`token`]; for a fleet's accounts: [`accounts`]),
//! Hugging Face's local paths (token file, download cache: [`paths`]), the default LFS rules ([`gitattributes`]) and a
//! Hub-compatible server ([`server`]) used by tests and the local devnet.
//! Protocol code only: no actors, no terminal output.

pub mod accounts;
pub mod client;
pub mod gitattributes;
pub mod limits;
pub mod paths;
pub mod quota;
pub mod server;
pub mod token;

/// Checks a Hub endpoint (`--hub`, `HF_ENDPOINT`, the fleet's `hub:`) and returns it without a trailing `/`: an
/// `http://` or `https://` URL with a host, and no user name, password, query or fragment (those would end up in
/// every request and log line). The error says what is wrong and what to write instead.
pub fn parse_endpoint(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let example = "use e.g. https://huggingface.co or http://127.0.0.1:8765";
    let url = reqwest::Url::parse(trimmed)
        .map_err(|e| format!("Hub endpoint {text:?} is not a URL ({e}); {example}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "Hub endpoint {text:?} must start with http:// or https://; {example}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("Hub endpoint {text:?} has no host; {example}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "Hub endpoint {:?} carries a user name or password; give the token with HF_TOKEN instead",
            client::redact_url(trimmed)
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "Hub endpoint {text:?} has a query or fragment; give only scheme, host, port (and a path prefix)"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_endpoint;

    #[test]
    fn endpoints_are_checked_and_normalised() {
        assert_eq!(
            parse_endpoint("https://huggingface.co/").unwrap(),
            "https://huggingface.co"
        );
        assert_eq!(
            parse_endpoint("http://127.0.0.1:8765").unwrap(),
            "http://127.0.0.1:8765"
        );
        for bad in [
            "not a url",
            "ftp://x",
            "http://",
            "huggingface.co",
            "",
            "https://a?x=1",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        let e = parse_endpoint("https://user:hf_secret@host").unwrap_err();
        assert!(!e.contains("hf_secret"), "{e}");
    }
}
