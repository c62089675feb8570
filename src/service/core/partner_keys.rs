//! The keys a secret-scanning partner (GitHub) signs its alerts with: its published key document,
//! fetched when first needed, cached, and fetched again — rarely, conditionally, backing off after
//! failures — when an alert names a key we do not know.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::signature::P256Key;

/// A refetch of the key document for an unknown key identifier happens at most this often, so
/// a stream of made-up identifiers cannot become a stream of fetches: at most 60 an hour, the
/// quota GitHub gives an unauthenticated client. Each refetch is conditional (`If-None-Match`).
const REFETCH_GAP: Duration = Duration::from_secs(60);
/// After a failed fetch (GitHub down or limiting us) the gap doubles, up to this.
const REFETCH_GAP_MAX: Duration = Duration::from_secs(30 * 60);

/// GitHub's published secret-scanning keys, by identifier, fetched when first needed and again
/// (at most once per [`REFETCH_GAP`], backing off after failures) when an alert names a key we
/// do not know.
pub struct PartnerKeys {
    url: String,
    client: std::sync::OnceLock<reqwest::Client>,
    keys: RwLock<HashMap<String, P256Key>>,
    fetching: tokio::sync::Mutex<Fetching>,
    /// The gap after a fetch that worked.
    gap: Duration,
}

/// When the key document was last asked for, how long until it may be again, and the `ETag` of
/// the copy we hold.
#[derive(Debug, Default)]
struct Fetching {
    last: Option<Instant>,
    gap: Duration,
    etag: Option<String>,
}

impl std::fmt::Debug for PartnerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerKeys")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PartnerKeys {
    pub fn new(url: String) -> Self {
        Self::with_gap(url, REFETCH_GAP)
    }

    fn with_gap(url: String, gap: Duration) -> Self {
        PartnerKeys {
            url,
            client: std::sync::OnceLock::new(),
            keys: RwLock::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(Fetching::default()),
            gap,
        }
    }

    /// The HTTP client, made on the first fetch (most processes never need it). rustls needs a
    /// process-wide crypto provider: the one in the tree (ring), unless one is installed.
    fn client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("memberpass/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(self.client.get_or_init(|| client))
    }

    fn cached(&self, id: &str) -> Option<P256Key> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// The key with this identifier, chosen by identifier (never by position in the document).
    /// Every key the document publishes is accepted, current or not: during a rotation GitHub
    /// may still sign with the previous key, and it stays GitHub's until it is unpublished.
    pub async fn key(&self, id: &str) -> Option<P256Key> {
        if let Some(key) = self.cached(id) {
            return Some(key);
        }
        let mut fetching = self.fetching.lock().await;
        // Another alert may have fetched while this one waited.
        if let Some(key) = self.cached(id) {
            return Some(key);
        }
        if fetching.last.is_some_and(|at| at.elapsed() < fetching.gap) {
            return None;
        }
        fetching.last = Some(Instant::now());
        let etag = fetching
            .etag
            .clone()
            .filter(|_| !self.keys.read().unwrap_or_else(PoisonError::into_inner).is_empty());
        match self.fetch(etag.as_deref()).await {
            Ok(Some((keys, etag))) => {
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
                fetching.etag = etag;
                fetching.gap = self.gap;
            }
            Ok(None) => fetching.gap = self.gap,
            Err(e) => {
                fetching.gap = (fetching.gap * 2).clamp(self.gap, REFETCH_GAP_MAX.max(self.gap));
                let wait = fetching.gap.as_secs();
                tracing::warn!(error = %e, url = %self.url, wait, "secret-scanning key document could not be fetched");
            }
        }
        self.cached(id)
    }

    /// The key document, or `None` when the copy whose `ETag` we sent is still current (304).
    async fn fetch(&self, etag: Option<&str>) -> anyhow::Result<Option<(HashMap<String, P256Key>, Option<String>)>> {
        let mut req = self.client()?.get(&self.url);
        if let Some(etag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let res = req.send().await?;
        if res.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let res = res.error_for_status()?;
        let etag = res
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.bytes().await?;
        anyhow::ensure!(bytes.len() <= 256 * 1024, "the key document is larger than 256 KiB");
        let doc: Value = serde_json::from_slice(&bytes)?;
        let keys = doc["public_keys"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no public_keys array"))?
            .iter()
            .filter_map(|k| {
                let id = k["key_identifier"].as_str()?;
                Some((id.to_owned(), P256Key::from_pem(k["key"].as_str()?)?))
            })
            .collect();
        Ok(Some((keys, etag)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use serde_json::json;

    use super::*;

    fn public_pem() -> String {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let key = P256Key::from_point(pair.public_key().as_ref()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.spki_der());
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// A key document server that records each request's `If-None-Match` and answers 304 to the
    /// `ETag` it gave, or 503 while told to fail.
    async fn key_server(seen: Arc<Mutex<Vec<Option<String>>>>, failing: Arc<AtomicBool>) -> String {
        let doc =
            json!({"public_keys": [{"key_identifier": "k1", "key": public_pem(), "is_current": true}]}).to_string();
        let route = axum::routing::get(move |headers: axum::http::HeaderMap| {
            let sent = headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().push(sent.clone());
            let (failing, doc) = (failing.load(Ordering::SeqCst), doc.clone());
            async move {
                use axum::response::IntoResponse;
                if failing {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else if sent.as_deref() == Some("\"v1\"") {
                    axum::http::StatusCode::NOT_MODIFIED.into_response()
                } else {
                    ([("etag", "\"v1\""), ("content-type", "application/json")], doc).into_response()
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, axum::Router::new().route("/keys", route)).await;
        });
        url
    }

    #[tokio::test]
    async fn the_key_document_is_asked_for_conditionally_and_less_often_after_failures() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let url = key_server(seen.clone(), failing.clone()).await;
        let asked = || seen.lock().unwrap().clone();
        let gap = Duration::from_millis(300);
        let step = Duration::from_millis(400);
        let keys = PartnerKeys::with_gap(url, gap);

        assert!(keys.key("k1").await.is_some());
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked(), [None], "one fetch; the unknown id waits for the gap");
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked(), [None, Some("\"v1\"".to_owned())], "a conditional refetch");
        assert!(keys.key("k1").await.is_some(), "a 304 keeps the keys held");

        // Failures double the gap: 600 ms after the first, 1.2 s after the second.
        failing.store(true, Ordering::SeqCst);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 3);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 3, "within the doubled gap");
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 4);
        tokio::time::sleep(2 * step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 4, "within the gap doubled again");
        // A fetch that works puts the gap back.
        failing.store(false, Ordering::SeqCst);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 5);
        assert!(keys.key("k1").await.is_some());
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 6, "back to the normal gap");
    }
}
