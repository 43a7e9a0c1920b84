//! What an HTTP failure was, in words a user can act on.

/// reqwest's Display hides the cause ("error sending request"); walk the chain for the reason.
pub fn describe_reqwest(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
