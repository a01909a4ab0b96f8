//! Where a PostgreSQL store connects, and how: the URL as libpq reads it
//! (host, port, user, database, `sslmode`, `connect_timeout`), the
//! password from the environment (never from the workflow file, which is
//! committed and printed), and TLS through OpenSSL when `sslmode` asks
//! for it. As in libpq, `prefer` (the default) and `require` encrypt
//! without checking the server's certificate; with `tls_ca` (libpq's
//! `sslrootcert`) the certificate and the host name are checked against
//! that authority.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls};

use crate::fault::Fault;
use crate::store::StoreError;

/// How long connecting may take, unless the URL says (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database to connect to, with its password.
#[derive(Clone)]
pub struct Target {
    store: String,
    config: Config,
    /// The authority the server's certificate must come from, if checked.
    tls_ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Target {
    // The password stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Reads `url`; refuses one that holds a password.
    pub fn parse(url: &str) -> Result<Config, String> {
        let config = Config::from_str(url).map_err(|e| {
            format!("`url` is not a PostgreSQL URL ({e}); write one like `postgres://user@127.0.0.1:5432/database`")
        })?;
        if config.get_password().is_some() {
            return Err(
                "`url` holds a password, which would be kept in the workflow file and printed: name an environment variable that holds it in `password_env`".into(),
            );
        }
        if config.get_hosts().is_empty() {
            return Err("`url` names no host".into());
        }
        Ok(config)
    }

    /// The URL as it may be shown (it never holds a password).
    pub fn shown(url: &str) -> String {
        crate::text::foreign(url)
    }

    /// The target of store `store` at `url`, with the password from the
    /// variable `password_env` if one is named.
    pub fn new(
        store: &str,
        url: &str,
        password_env: Option<&str>,
        tls_ca: Option<std::path::PathBuf>,
    ) -> Result<Target, StoreError> {
        let mut config =
            Target::parse(url).map_err(|e| StoreError::new(store, Fault::Refused, e))?;
        if let Some(var) = password_env {
            let password = std::env::var(var).map_err(|_| {
                StoreError::new(
                    store,
                    Fault::Refused,
                    format!("`password_env` names `{var}`, which is not set"),
                )
            })?;
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // A checked certificate is asked for because TLS is wanted: never
        // fall back to a plain connection (where `prefer` would).
        if tls_ca.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        // A connection that died without a word is noticed within about a
        // minute, not the system's two hours; a lock held by an orphaned
        // session is given up after 30 s (and tried again).
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .options("-c lock_timeout=30s");
        config.application_name("switchyard");
        Ok(Target {
            store: store.to_string(),
            config,
            tls_ca,
        })
    }

    /// One attempt to connect.
    pub fn connect_once(&self) -> Result<Client, StoreError> {
        let connected = match self.config.get_ssl_mode() {
            SslMode::Disable => self.config.connect(NoTls),
            _ => self.config.connect(self.tls()?),
        };
        connected.map_err(|e| super::errors::store_error(&self.store, "cannot connect", &e))
    }

    /// The TLS set-up `sslmode` and `tls_ca` ask for.
    fn tls(&self) -> Result<postgres_openssl::MakeTlsConnector, StoreError> {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let refused = |e: openssl::error::ErrorStack| {
            StoreError::new(
                &self.store,
                Fault::Refused,
                format!("cannot set up TLS: {e}"),
            )
        };
        let mut builder = SslConnector::builder(SslMethod::tls()).map_err(refused)?;
        match &self.tls_ca {
            Some(ca) => {
                // That authority only, not the system's as well.
                let cannot = |e: String| {
                    StoreError::new(
                        &self.store,
                        Fault::Refused,
                        format!("cannot read `tls_ca` `{}`: {e}", ca.display()),
                    )
                };
                let pem = std::fs::read(ca).map_err(|e| cannot(e.to_string()))?;
                let certs =
                    openssl::x509::X509::stack_from_pem(&pem).map_err(|e| cannot(e.to_string()))?;
                if certs.is_empty() {
                    return Err(cannot("no certificate in it".into()));
                }
                let mut store = openssl::x509::store::X509StoreBuilder::new().map_err(refused)?;
                for cert in certs {
                    store.add_cert(cert).map_err(refused)?;
                }
                builder
                    .set_verify_cert_store(store.build())
                    .map_err(refused)?;
                builder.set_verify(SslVerifyMode::PEER);
            }
            None => builder.set_verify(SslVerifyMode::NONE),
        }
        let mut connector = postgres_openssl::MakeTlsConnector::new(builder.build());
        if self.tls_ca.is_none() {
            // Encrypted, not authenticated: libpq's `require`.
            connector.set_callback(|config, _| {
                config.set_verify_hostname(false);
                Ok(())
            });
        }
        Ok(connector)
    }
}
