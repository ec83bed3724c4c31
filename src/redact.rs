//! URLs fit for messages: what an operator needs to recognise an endpoint (scheme, host, port, path) without what
//! must never be printed (user names, passwords, query strings that carry signatures or API keys, fragments).
//!
//! Pure string work, used wherever a URL reaches a log line, an error or JSON output: the Hub client's errors, a
//! custom chain endpoint (`--network wss://user:key@node/?apikey=…`) in `status`/`check` and in connection errors.

/// `url` fit for a message: scheme, host, port and path only. The query (presigned URLs carry signatures there,
/// RPC providers API keys), the fragment and any user name or password are dropped.
pub fn url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if matches!(u.scheme(), "http" | "https" | "ws" | "wss") => {
            if u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
            {
                // Nothing to hide: shown exactly as given (no normalisation surprises in messages).
                return url.to_string();
            }
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // Not a URL we know: keep what comes before any `?`/`#` and after any `@`.
        _ => {
            let cut = url.split(['?', '#']).next().unwrap_or_default();
            cut.rsplit_once('@')
                .map_or(cut, |(_, host)| host)
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn urls_in_messages_lose_query_and_credentials() {
        assert_eq!(
            url("https://user:pw@s3.example/bucket/obj?X-Amz-Signature=abc#frag"),
            "https://s3.example/bucket/obj"
        );
        assert_eq!(
            url("http://127.0.0.1:8765/api/models/a/b"),
            "http://127.0.0.1:8765/api/models/a/b"
        );
        assert_eq!(
            url("wss://miner:s3cret@rpc.example:443/ws?apikey=k"),
            "wss://rpc.example/ws"
        );
        assert_eq!(url("ws://127.0.0.1:9944"), "ws://127.0.0.1:9944");
        assert_eq!(url("not a url?sig=1"), "not a url");
        assert_eq!(url("u:p@host/x?y"), "host/x");
    }
}
