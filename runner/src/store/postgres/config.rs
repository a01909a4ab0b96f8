//! `kind = "postgres"`: the settings of a PostgreSQL store, how they are
//! read and checked, and how the store opens.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::PostgresStore;
use super::connect::Target;
use super::latest::LatestLayout;
use crate::document::values::Period;
use crate::document::{Home, Kind};
use crate::store::fed_by::FedBy;
use crate::store::{Store, StoreConfig, StoreError};

/// The kind, for the registration list.
pub const KIND: Kind<dyn StoreConfig> = Kind {
    name: "postgres",
    read: |table| {
        let at = table.at();
        let config: PostgresConfig = table.read()?;
        check(&config).map_err(|message| at.error(message))?;
        Ok(Box::new(config))
    },
};

/// How long transient failures are retried, unless set.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(60);
/// The schema tables live in, unless set.
pub const DEFAULT_SCHEMA: &str = "public";

/// `kind = "postgres"`: tables in one schema of a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://USER@HOST:PORT/DATABASE`, with libpq's settings in the
    /// query (`?sslmode=require&connect_timeout=5`); never a password.
    pub url: String,
    /// The environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The certificate authority (PEM) the server's certificate must come
    /// from; without it TLS encrypts but does not check who answers, as
    /// libpq's `sslmode=require` does.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// The schema the tables live in (created when missing; default
    /// `public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// The tables plugins may write (needed by a replay into this store).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Tables kept as the latest row of each key, guarded by version,
    /// with typed columns: `[store.NAME.latest.messages] columns = { text
    /// = "d:text", posted_at = "d:posted_at bigint" }`. Other tables keep
    /// every version of every cell.
    #[serde(default)]
    pub latest: BTreeMap<String, LatestTable>,
    /// How long to keep retrying a call that failed transiently (a lost
    /// connection, a server restarting), with backoff (default 60s).
    #[serde(default)]
    pub retry_for: Option<Period>,
    /// The consumer that writes this store, when it is not the runner.
    #[serde(default)]
    pub fed_by: Option<FedBy>,
}

/// One table in the `latest` layout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatestTable {
    /// Typed columns: name → `family:qualifier [text|bytea|bigint|jsonb]`;
    /// cells not named here go to the `cells` jsonb column.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

impl PostgresConfig {
    /// The `latest` tables and their columns, checked.
    pub fn latest_layouts(&self) -> Result<BTreeMap<String, LatestLayout>, String> {
        self.latest
            .iter()
            .map(|(table, t)| {
                super::names::check_table(table).map_err(|e| format!("`latest`: {e}"))?;
                let layout = LatestLayout::parse(&t.columns)
                    .map_err(|e| format!("`latest.{table}`: {e}"))?;
                Ok((table.clone(), layout))
            })
            .collect()
    }

    /// The schema, as given or the default.
    pub fn schema(&self) -> &str {
        self.schema.as_deref().unwrap_or(DEFAULT_SCHEMA)
    }

    /// Where to connect, the password read from its variable now.
    pub fn target(&self, home: &Home, name: &str) -> Result<Target, StoreError> {
        Target::new(
            name,
            &self.url,
            self.password_env.as_deref(),
            self.tls_ca.as_deref().map(|p| home.path(p)),
        )
    }
}

fn check(config: &PostgresConfig) -> Result<(), String> {
    Target::parse(&config.url)?;
    super::names::check_schema(config.schema())?;
    for table in config.tables.iter().flatten() {
        super::names::check_table(table).map_err(|e| format!("`tables`: {e}"))?;
    }
    config.latest_layouts()?;
    if let Some(var) = &config.password_env
        && var.trim().is_empty()
    {
        return Err("`password_env` names no variable".into());
    }
    Ok(())
}

impl StoreConfig for PostgresConfig {
    fn describe(&self, _home: &Home) -> String {
        format!(
            "postgres {} schema `{}`",
            Target::shown(&self.url),
            self.schema()
        )
    }

    fn fed_by(&self) -> Option<&FedBy> {
        self.fed_by.as_ref()
    }

    fn declared_tables(&self) -> Option<Vec<String>> {
        self.tables.clone()
    }

    fn probe(&self, home: &Home, name: &str) -> Result<String, StoreError> {
        let mut client = self.target(home, name)?.connect_once()?;
        let version: String = client
            .query_one("SHOW server_version", &[])
            .map_err(|e| super::errors::store_error(name, "cannot ask its version", &e))?
            .get(0);
        Ok(format!(
            "PostgreSQL {version} at {}, schema `{}`",
            Target::shown(&self.url),
            self.schema()
        ))
    }

    fn open(&self, home: &Home, name: &str) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(PostgresStore::open(
            name,
            self.target(home, name)?,
            self.schema(),
            self.latest_layouts()
                .map_err(|e| StoreError::new(name, crate::fault::Fault::Refused, e))?,
            self.retry_for.map_or(DEFAULT_RETRY_FOR, |p| p.0),
        )?))
    }
}
