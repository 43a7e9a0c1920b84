//! How secrets are kept out of what vecdrill shows: URLs named without their passwords or
//! the paths that are their tokens. One place, so every message, log and report agrees.

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Every `http(s)://…?query` in `text` without its query: a signed or SAS URL carries its
/// token there (an object store's error names the request it made).
pub fn redact_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let next_url = |s: &str| {
        ["http://", "https://"]
            .iter()
            .filter_map(|p| s.find(p))
            .min()
    };
    while let Some(at) = next_url(rest) {
        out.push_str(&rest[..at]);
        let url_len = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(rest.len() - at);
        let url = &rest[at..at + url_len];
        match url.split_once('?') {
            Some((before, _)) => {
                out.push_str(before);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = &rest[at + url_len..];
    }
    out.push_str(rest);
    out
}

/// `scheme://host[:port]/…`: enough to recognise a webhook, without a token in its path.
pub fn redact_webhook(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "an invalid URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_named_without_its_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn urls_in_text_lose_their_queries() {
        assert_eq!(
            redact_queries("Error performing GET https://acct.blob.core.windows.net/c/config?sv=2022&sig=SECRET in 1s - HTTP error"),
            "Error performing GET https://acct.blob.core.windows.net/c/config?… in 1s - HTTP error"
        );
        assert_eq!(
            redact_queries("a (http://h/x?t=1) and http://h/y then https://h/z?u=2"),
            "a (http://h/x?…) and http://h/y then https://h/z?…"
        );
        assert_eq!(redact_queries("no url here"), "no url here");
    }

    #[test]
    fn a_webhook_is_named_without_its_secret_path() {
        assert_eq!(
            redact_webhook("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_webhook("http://127.0.0.1:9/hook?token=abc"),
            "http://127.0.0.1:9/…"
        );
    }
}
