//! Settings, in this order of precedence: `QUORUM_*` environment variables, the TOML file
//! given with `--config`, built-in defaults. Nested keys use a double underscore in the
//! environment (`QUORUM_WORKER__CONCURRENCY=32` sets `[worker] concurrency`).
//!
//! With no file and no variables Quorum runs: SQLite under `./data/`, the web on
//! `127.0.0.1:8080`, and a master key generated once into `./data/secret.key`.

use std::{
    fs,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use quorum_domain::{AuthMethod, EmailAddress, Keys, SecretError, Security, secrets::Password};
use serde::Deserialize;

/// The longest `summary.reply_local`: with `+cnfm-<id>.<day>.<token>` (up to 39 more
/// characters for ids below ten billion) an address's local part stays within 64.
pub const MAX_REPLY_LOCAL: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or decoding the settings; `file` when one was given (the environment may
    /// also be the cause).
    #[error("configuration{}: {message}", file.as_ref().map(|f| format!(" ({})", f.display())).unwrap_or_default())]
    Load { file: Option<PathBuf>, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("master key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("master key: {0}")]
    Key(#[from] SecretError),
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::Load { file: None, message: e.to_string() }
    }
}

/// `QUORUM_*` variables that are not settings (so unknown-key checking can stay strict):
/// the log filter, the config file path, a password for one command, test switches.
const NOT_SETTINGS: &[&str] = &[
    "QUORUM_LOG",
    "QUORUM_CONFIG",
    "QUORUM_POP3_PASSWORD",
    "QUORUM_ADMIN_PASSWORD",
    "QUORUM_FAILPOINT",
    "QUORUM_TEST_",
    "QUORUM_MAILSTACK_DIR",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path` or `postgres://user@host/db`.
    pub database_url: String,
    /// Address of the web service.
    pub listen: SocketAddr,
    /// Where the default SQLite file and generated key live.
    pub data_dir: PathBuf,
    /// The master key itself (base64 or hex). Prefer `secret_key_file`.
    #[serde(default)]
    pub secret_key: Option<Password>,
    /// File holding the master key; created with a fresh key if missing.
    pub secret_key_file: PathBuf,
    pub worker: WorkerSettings,
    pub smtp: SmtpSettings,
    pub summary: SummarySettings,
    pub dns: DnsSettings,
    pub confirmations: ConfirmationSettings,
    pub statistics: StatisticsSettings,
    /// The operators' reputation tables' good / suspicious / blocked rule (seed 001).
    pub reputation: quorum_reputation::Thresholds,
    pub web: WebSettings,
    /// The robot mailbox; without it replies can only be applied with `quorum reply apply`.
    #[serde(default)]
    pub robot: Option<RobotSettings>,
}

/// The service's own POP3 mailbox, where replies to summaries arrive (SPEC 2.3). It must
/// receive every `<reply_local>+...@<reply_domain>` address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    #[serde(default = "auto")]
    pub auth: AuthMethod,
    pub user: String,
    pub password: Password,
    /// The authserv-id with which the robot mailbox's provider writes
    /// `Authentication-Results` (the host name before the first `;`). Set it and a reply
    /// whose From fails DMARC there is refused as forged.
    #[serde(default)]
    pub authserv_id: Option<String>,
}

fn auto() -> AuthMethod {
    AuthMethod::Auto
}

/// How summaries are addressed and what they promise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummarySettings {
    /// Replies go to `<reply_local>+<summary id>.<token>@<reply_domain>`: the robot
    /// mailbox must receive every such address (plus addressing or a catch-all).
    pub reply_local: String,
    pub reply_domain: String,
    /// Nothing is held longer than this many days.
    pub max_retention_days: i64,
}

/// The SMTP server through which Quorum delivers released mail (and, later, summaries).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `plain`, `starttls` or `tls`.
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// Envelope sender of released mail: Quorum's own address, so the subscriber's provider
    /// does not judge our relay by the original sender's SPF record.
    pub envelope_from: String,
    /// Longest wait for any answer from the SMTP server.
    pub timeout_secs: u64,
    /// Extra CA certificates (PEM) trusted for SMTP TLS, besides the system's.
    pub tls_ca_files: Vec<PathBuf>,
}

/// The web pages (SPEC 5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// How people reach the web service: the start of links in emails (welcome).
    pub base_url: String,
    /// Session cookies get the `Secure` attribute: set when the service is behind TLS.
    pub secure_cookies: bool,
    /// A login lasts this many days.
    pub session_days: i64,
    /// Failed logins, signups and password resets allowed per client address (and per
    /// account for logins) in any 15 minutes.
    pub attempts_per_15_minutes: u32,
}

/// Collaborative statistics (SPEC 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsSettings {
    /// What counts as one piece of evidence against a domain: `senders` (each distinct
    /// sender address once, its voters' consensus) or `votes` (every vote, as in seed 002;
    /// `quorum simulate` shows what that costs in deleted ham).
    pub evidence: String,
    /// Mail is deleted as statistically certain spam only above this P(spammer).
    pub delete_above: f64,
    /// How often a running worker reads new votes and refreshes trust and correlations.
    pub refresh_secs: u64,
    /// Campaign fingerprints as evidence beside sender domains (votes on a campaign's
    /// copies count for all of its copies).
    pub fingerprints: bool,
    /// Campaigns not seen for this many days are forgotten, with their votes.
    pub fingerprint_keep_days: i64,
}

/// Confirmations to unknown senders (SPEC 2.4). They go from a VERP address under
/// `[summary]`'s reply address (`<reply_local>+cnfm-<id>.<token>@<reply_domain>`), so the
/// robot mailbox receives their bounces and replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationSettings {
    /// Off: no confirmation is sent for anyone (subscribers can also turn them off).
    pub enabled: bool,
    /// At most this many confirmations by the whole service in any hour.
    pub hourly_cap: i64,
}

/// DNS for the forgery checks (reverse DNS, SPF, DKIM, DMARC).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Resolvers to ask (`ip:port`); empty means the system's (/etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// Longest wait for one DNS answer.
    pub timeout_ms: u64,
    /// Longest time all lookups for one message may take; after that the unanswered
    /// checks count as failed (the message is held, never deleted, and checked again).
    pub check_budget_ms: u64,
    /// Messages checked at the same time by one process.
    pub concurrency: usize,
    /// DNS answers kept in the cache.
    pub cache_size: u64,
}

impl DnsSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.check_budget_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// How often each mailbox is polled (SPEC 2.1: every 3 minutes).
    pub poll_interval_secs: u64,
    /// When a mailbox was locked by another client (`[IN-USE]`), try again after this long.
    pub retry_busy_secs: u64,
    /// After an error (wrong password, server down), try again after this long.
    pub retry_error_secs: u64,
    /// Mailboxes polled at the same time by one worker process. A poll mostly waits for
    /// the network (an empty POP3 poll is four to five round trips), so this bounds how
    /// many mailboxes a worker keeps up with: about `concurrency × interval / poll time`
    /// (64 × 180 s / 0.25 s ≈ 46,000 at 50 ms of round trip, fewer with TLS; the `scale`
    /// benchmark).
    pub concurrency: usize,
    /// Longest wait for any single answer from a mail server (POP3 or IMAP).
    pub pop3_timeout_secs: u64,
    /// IMAP mailboxes this worker watches with IDLE, one connection each, so new mail is
    /// quarantined within seconds; beyond it (and where a server lacks IDLE) mailboxes are
    /// only polled. 0 turns IDLE off.
    pub idle_connections: usize,
    /// How long one IDLE lasts before it is re-issued (RFC 2177: servers may end an IDLE
    /// after 30 minutes of it), and the watch claim renewed (it lasts twice this).
    pub idle_renew_secs: u64,
    /// Messages larger than this stay in the mailbox and are reported.
    pub max_message_size: u64,
    /// How long a worker owns a mailbox it leased; another worker may take it after that.
    pub lease_secs: u64,
    /// Extra CA certificates (PEM) trusted for POP3 TLS, besides the system's.
    pub tls_ca_files: Vec<PathBuf>,
    /// Name of this worker in leases and logs; defaults to host name and process id.
    pub name: Option<String>,
}

impl WorkerSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }
    pub fn pop3_timeout(&self) -> Duration {
        Duration::from_secs(self.pop3_timeout_secs)
    }
    pub fn idle_renew(&self) -> Duration {
        Duration::from_secs(self.idle_renew_secs.max(1))
    }
}

impl Settings {
    /// Loads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars = std::env::vars().filter(|(k, _)| !NOT_SETTINGS.iter().any(|n| k.starts_with(n))).collect();
        Self::load_with_env(
            file,
            config::Environment::with_prefix("QUORUM").prefix_separator("_").separator("__").source(Some(vars)),
        )
    }

    fn load_with_env(file: Option<&Path>, env: config::Environment) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .set_default("database_url", "sqlite://data/quorum.db")?
            .set_default("listen", "127.0.0.1:8080")?
            .set_default("data_dir", "data")?
            .set_default("secret_key_file", "data/secret.key")?
            .set_default("worker.poll_interval_secs", 180)?
            .set_default("worker.retry_busy_secs", 60)?
            .set_default("worker.retry_error_secs", 300)?
            .set_default("worker.concurrency", 64)?
            .set_default("worker.pop3_timeout_secs", 30)?
            .set_default("worker.idle_connections", 1000)?
            .set_default("worker.idle_renew_secs", 1500)?
            .set_default("worker.max_message_size", 100 * 1024 * 1024)?
            .set_default("worker.lease_secs", 600)?
            .set_default("worker.tls_ca_files", Vec::<String>::new())?
            .set_default("smtp.host", "127.0.0.1")?
            .set_default("smtp.port", 25)?
            .set_default("smtp.security", "plain")?
            .set_default("smtp.envelope_from", "quorum@localhost")?
            .set_default("smtp.timeout_secs", 30)?
            .set_default("smtp.tls_ca_files", Vec::<String>::new())?
            .set_default("summary.reply_local", "summary")?
            .set_default("summary.reply_domain", "localhost")?
            .set_default("summary.max_retention_days", 30)?
            .set_default("statistics.evidence", "senders")?
            .set_default("statistics.delete_above", 0.999999)?
            .set_default("statistics.refresh_secs", 60)?
            .set_default("statistics.fingerprints", true)?
            .set_default("statistics.fingerprint_keep_days", 30)?
            .set_default("reputation.suspicious_invalid", 0.30)?
            .set_default("reputation.suspicious_spam", 0.10)?
            .set_default("reputation.blocked_invalid", 0.50)?
            .set_default("reputation.blocked_spam", 0.30)?
            .set_default("reputation.min_messages", 5.0)?
            .set_default("web.base_url", "http://127.0.0.1:8080")?
            .set_default("web.secure_cookies", false)?
            .set_default("web.session_days", 14)?
            .set_default("web.attempts_per_15_minutes", 10)?
            .set_default("confirmations.enabled", true)?
            .set_default("confirmations.hourly_cap", 1000)?
            .set_default("dns.nameservers", Vec::<String>::new())?
            .set_default("dns.timeout_ms", 2000)?
            .set_default("dns.check_budget_ms", 5000)?
            .set_default("dns.concurrency", 64)?
            .set_default("dns.cache_size", 16384)?;
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("file {} does not exist", file.display())));
            }
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        let loaded =
            |e: config::ConfigError| ConfigError::Load { file: file.map(Path::to_path_buf), message: e.to_string() };
        let settings: Settings = builder
            .add_source(
                env.list_separator(",")
                    .with_list_parse_key("worker.tls_ca_files")
                    .with_list_parse_key("smtp.tls_ca_files")
                    .with_list_parse_key("dns.nameservers")
                    .try_parsing(true),
            )
            .build()
            .map_err(loaded)?
            .try_deserialize()
            .map_err(loaded)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        if !(self.database_url.starts_with("sqlite:") || self.is_postgres()) {
            return Err(ConfigError::Invalid(format!(
                "database_url must start with sqlite:// or postgres://, got `{}`",
                self.database_url.split('@').next_back().unwrap_or_default()
            )));
        }
        if w.poll_interval_secs == 0 || w.concurrency == 0 || w.pop3_timeout_secs == 0 || w.lease_secs == 0 {
            return Err(ConfigError::Invalid(
                "worker poll_interval_secs, concurrency, pop3_timeout_secs and lease_secs must be above 0".into(),
            ));
        }
        let st = &self.statistics;
        if !["senders", "votes"].contains(&st.evidence.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "statistics.evidence must be senders or votes, not `{}`",
                st.evidence
            )));
        }
        if !(0.5..1.0).contains(&st.delete_above) || st.refresh_secs == 0 || st.fingerprint_keep_days < 1 {
            return Err(ConfigError::Invalid(
                "statistics.delete_above must be in [0.5, 1), and statistics.refresh_secs and \
                 statistics.fingerprint_keep_days at least 1"
                    .into(),
            ));
        }
        self.reputation.validate().map_err(ConfigError::Invalid)?;
        if self.web.session_days < 1 || self.web.attempts_per_15_minutes == 0 {
            return Err(ConfigError::Invalid(
                "web.session_days and web.attempts_per_15_minutes must be at least 1".into(),
            ));
        }
        let d = &self.dns;
        if d.timeout_ms == 0 || d.check_budget_ms < d.timeout_ms || d.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "dns.timeout_ms and dns.concurrency must be above 0, and dns.check_budget_ms at least dns.timeout_ms"
                    .into(),
            ));
        }
        if w.lease_secs <= w.pop3_timeout_secs {
            return Err(ConfigError::Invalid("worker.lease_secs must be longer than worker.pop3_timeout_secs".into()));
        }
        self.validate_addresses()
    }

    /// The addresses Quorum writes into mail: they must be addresses, and a reply or
    /// confirmation address (`<reply_local>+cnfm-<id>.<day>.<token>`) must fit RFC 5321's
    /// 64-character local part.
    fn validate_addresses(&self) -> Result<(), ConfigError> {
        let s = &self.summary;
        let local_ok = (1..=MAX_REPLY_LOCAL).contains(&s.reply_local.len())
            && s.reply_local.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !local_ok {
            return Err(ConfigError::Invalid(format!(
                "summary.reply_local must be 1 to {MAX_REPLY_LOCAL} letters, digits, `.`, `_` or `-` (Quorum \
                 adds `+<summary>.<day>.<token>`), not `{}`",
                s.reply_local
            )));
        }
        let robot = format!("{}@{}", s.reply_local, s.reply_domain);
        if EmailAddress::parse(&robot).is_err() || !s.reply_domain.contains('.') && s.reply_domain != "localhost" {
            return Err(ConfigError::Invalid(format!(
                "summary.reply_domain must be a domain name (e.g. quorum.example.org), not `{}`",
                s.reply_domain
            )));
        }
        if EmailAddress::parse(&self.smtp.envelope_from).is_err() {
            return Err(ConfigError::Invalid(format!(
                "smtp.envelope_from must be an email address, not `{}`",
                self.smtp.envelope_from
            )));
        }
        if !(self.web.base_url.starts_with("http://") || self.web.base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "web.base_url must start with http:// or https://, not `{}`",
                self.web.base_url
            )));
        }
        if self
            .robot
            .as_ref()
            .and_then(|r| r.authserv_id.as_deref())
            .is_some_and(|id| id.trim().is_empty() || id.contains(';'))
        {
            return Err(ConfigError::Invalid(
                "robot.authserv_id must be a host name (the part before the first `;`)".into(),
            ));
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://")
    }

    /// The master keys if configured, without creating a key file (for commands that must
    /// change nothing).
    pub fn existing_keys(&self) -> Result<Option<Keys>, ConfigError> {
        if self.secret_key.is_some() || self.secret_key_file.exists() { self.keys().map(Some) } else { Ok(None) }
    }

    /// The master keys: from `secret_key`, else from `secret_key_file`, which is created
    /// (mode 0600) with a new random key the first time.
    pub fn keys(&self) -> Result<Keys, ConfigError> {
        if let Some(text) = &self.secret_key {
            return Ok(Keys::from_master_text(text.expose())?);
        }
        let path = &self.secret_key_file;
        let key_err = |source| ConfigError::KeyFile { path: path.clone(), source };
        match fs::read_to_string(path) {
            Ok(text) => Ok(Keys::from_master_text(&text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(key_err)?;
                }
                let key = Keys::generate_master();
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(key_err)?;
                file.write_all(format!("{key}\n").as_bytes()).map_err(key_err)?;
                file.sync_all().map_err(key_err)?;
                tracing::warn!(path = %path.display(), "generated a new master key; back it up: stored POP3 passwords cannot be decrypted without it");
                Ok(Keys::from_master_text(&key)?)
            }
            Err(e) => Err(key_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> config::Environment {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        config::Environment::with_prefix("QUORUM").prefix_separator("_").separator("__").source(Some(map))
    }

    #[test]
    fn defaults_run_out_of_the_box() {
        let s = Settings::load_with_env(None, env(&[("QUORUM_SECRET_KEY", "c2VjcmV0")])).unwrap();
        assert!(!format!("{s:?}").contains("c2VjcmV0"), "the master key must not show in Debug output");
        assert_eq!(s.database_url, "sqlite://data/quorum.db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.worker.poll_interval(), Duration::from_secs(180));
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("quorum.toml");
        fs::write(&file, "listen = \"127.0.0.1:9000\"\n[worker]\nconcurrency = 4\npoll_interval_secs = 60\n").unwrap();
        let s = Settings::load_with_env(
            Some(&file),
            env(&[
                ("QUORUM_DATABASE_URL", "postgres://postgres@127.0.0.1/q"),
                ("QUORUM_LISTEN", "0.0.0.0:8081"),
                ("QUORUM_WORKER__CONCURRENCY", "32"),
                ("QUORUM_WORKER__TLS_CA_FILES", "/a.pem,/b.pem"),
            ]),
        )
        .unwrap();
        assert!(s.is_postgres());
        assert_eq!(s.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(s.worker.concurrency, 32);
        assert_eq!(s.worker.poll_interval_secs, 60);
        assert_eq!(s.worker.tls_ca_files, vec![PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]);
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Settings::load_with_env(None, env(&[("QUORUM_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("sqlite://"), "{err}");
        let err = Settings::load_with_env(None, env(&[("QUORUM_SMTP__SECURITY", "ssl3")])).unwrap_err();
        assert!(err.to_string().contains("ssl3"), "{err}");
        let err = Settings::load_with_env(None, env(&[("QUORUM_WORKER__CONCURRENCY", "0")])).unwrap_err();
        assert!(err.to_string().contains("concurrency"), "{err}");
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/q.toml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        fs::write(&file, "[worker]\nconcurency = 4\n").unwrap();
        let err = Settings::load_with_env(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
    }

    #[test]
    fn each_error_once_with_the_file_the_key_and_the_choices() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        fs::write(&file, "[smtp]\nsecurity = \"ssl\"\n").unwrap();
        let err = Settings::load_with_env(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()) && err.contains("ssl"), "{err}");
        assert!(err.contains("expected one of: tls, starttls, plain"), "{err}");
        assert_eq!(err.matches("ssl").count(), 1, "said once: {err}");
        for (key, value, says) in [
            ("QUORUM_SUMMARY__REPLY_DOMAIN", "quorum test", "summary.reply_domain"),
            ("QUORUM_SUMMARY__REPLY_LOCAL", "summary+x", "summary.reply_local"),
            ("QUORUM_SUMMARY__REPLY_LOCAL", "a-very-long-robot-mailbox-name", "summary.reply_local"),
            ("QUORUM_SMTP__ENVELOPE_FROM", "quorum", "smtp.envelope_from"),
            ("QUORUM_WEB__BASE_URL", "quorum.example.org", "web.base_url"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)])).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(value), "{key}={value}: {err}");
        }
        let ok = env(&[
            ("QUORUM_SUMMARY__REPLY_DOMAIN", "quorum.example.org"),
            ("QUORUM_SMTP__ENVELOPE_FROM", "q@x.example"),
        ]);
        assert!(Settings::load_with_env(None, ok).is_ok());
    }

    #[test]
    fn the_example_config_loads_and_states_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/quorum.example.toml");
        let from_file = Settings::load_with_env(Some(&example), env(&[])).unwrap();
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"), "example and built-in defaults differ");
    }

    #[test]
    fn key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::load_with_env(None, env(&[])).unwrap();
        s.secret_key_file = dir.path().join("sub/secret.key");
        let k1 = s.keys().unwrap();
        let blob = k1.encrypt_password(&quorum_domain::secrets::Password::new("pw"), "ctx");
        let k2 = s.keys().unwrap();
        assert_eq!(k2.decrypt_password(&blob, "ctx").unwrap().expose(), "pw");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&s.secret_key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
