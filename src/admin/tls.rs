//! HTTPS for the admin server: `[http] tls_cert` and `tls_key`, read again
//! on SIGHUP.
//!
//! rustls asks a [`CertResolver`] for the certificate of every handshake; the
//! resolver holds the current certified key behind a lock, and
//! [`CertResolver::reload`] swaps in what the files hold now. So after the
//! operator (or certbot's deploy hook) replaces the files and sends SIGHUP,
//! every new connection gets the new certificate, without a restart and
//! without dropping the connections open. A reload that fails (a file half
//! written, a key that does not match) keeps the certificate in use and says
//! why in the log: the server never ends up without one.
//!
//! The files are parsed by [`crate::config::HttpConfig::tls_files`], which
//! config validation also runs, so `rowhook check-config` and the start
//! refuse what a reload would.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{ConfigError, HttpConfig, TlsFiles};

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Files(#[from] ConfigError),
    #[error("http.tls_key: rustls cannot sign with this key ({0}): use an RSA, ECDSA (P-256, P-384) or Ed25519 key")]
    Key(rustls::Error),
    #[error(
        "http.tls_key: the key does not belong to the certificate of http.tls_cert ({0}): \
         give the key the certificate was issued for"
    )]
    Mismatch(rustls::Error),
    #[error("TLS settings: {0}")]
    Config(rustls::Error),
}

/// The certified key the files hold now.
fn certified_key(files: TlsFiles) -> Result<CertifiedKey, TlsError> {
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(files.key)
        .map_err(TlsError::Key)?;
    let certified = CertifiedKey::new(files.certs, key);
    match certified.keys_match() {
        // A key type whose public half rustls cannot tell: the handshake will.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(TlsError::Mismatch(e)),
    }
}

/// Hands rustls the current certificate; [`CertResolver::reload`] replaces it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
    http: HttpConfig,
}

impl CertResolver {
    /// The certificate of `[http] tls_cert` / `tls_key`; None without TLS.
    pub fn load(http: &HttpConfig) -> Result<Option<Arc<CertResolver>>, TlsError> {
        let Some(files) = http.tls_files()? else {
            return Ok(None);
        };
        let key = certified_key(files)?;
        Ok(Some(Arc::new(CertResolver {
            current: RwLock::new(Arc::new(key)),
            http: http.clone(),
        })))
    }

    /// Reads the files again; on success new handshakes use the new
    /// certificate, on failure the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = self.http.tls_files()?.ok_or_else(|| ConfigError::Value {
            message: "TLS is not configured".into(),
            at: None,
        })?;
        let key = Arc::new(certified_key(files)?);
        match self.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }

    /// The rustls settings of the admin server: TLS 1.2 and 1.3, no client
    /// certificates, this resolver's certificate, and no session resumption:
    /// a resumed session skips the certificate, so after a reload a client
    /// could go on trusting the one replaced (revoked, perhaps). Every
    /// connection's full handshake costs nothing that matters here.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(config)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(current.clone())
    }
}

/// Reloads the certificate on every SIGHUP until dropped (aborted). Without
/// TLS (`resolver` None) a SIGHUP is said in the log and changes nothing: it
/// never stops rowhook, so `systemctl reload` is always safe.
pub async fn reload_on_sighup(resolver: Option<Arc<CertResolver>>) {
    #[cfg(unix)]
    {
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: the admin server's certificate is reloaded only by a restart");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match resolver.as_ref().map(|r| r.reload()) {
                None => tracing::info!("SIGHUP: nothing to reload (no [http] tls_cert)"),
                Some(Ok(())) => tracing::info!(
                    "SIGHUP: the admin server's certificate is reloaded; new connections use it"
                ),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "SIGHUP: the admin server's certificate could not be reloaded; the current one stays in use")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = resolver;
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_files_no_tls() {
        assert!(CertResolver::load(&HttpConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_pem_that_is_no_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let http = HttpConfig {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..HttpConfig::default()
        };
        let err = CertResolver::load(&http).unwrap_err().to_string();
        assert!(
            err.starts_with("http.tls_key: rustls cannot sign with this key"),
            "{err}"
        );
    }
}
