//! HTTP clients: TLS set up once for the process, and what a failure was in words a user can
//! act on.

/// TLS for every HTTPS client of the process, reqwest's and object_store's through it, with
/// ring's primitives (reqwest is built without a provider of its own, so that none of the C
/// library aws-lc is compiled). Idempotent; [`client_builder`] and the repository's store call
/// it before building a client.
pub fn use_ring_for_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is installed already: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder whose TLS works.
pub fn client_builder() -> reqwest::ClientBuilder {
    use_ring_for_tls();
    reqwest::Client::builder()
}

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
