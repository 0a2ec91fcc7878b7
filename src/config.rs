//! Typed settings, read in layers: built-in defaults (config/default.toml, compiled in),
//! then config/default.toml and config/{profile}.toml from the config folder when present,
//! then `DERMABOOK__SECTION__KEY` environment variables.

use std::path::Path;

use chrono_tz::Tz;
use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};

const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub clinic: ClinicSettings,
    pub booking: BookingSettings,
    pub slots: SlotSettings,
    pub auth: AuthSettings,
    pub email: EmailSettings,
    pub web: WebSettings,
    pub demo: DemoSettings,
    pub rate_limit: RateLimitSettings,
    pub challenge: ChallengeSettings,
    pub calendar: CalendarSettings,
    pub webhooks: WebhookSettings,
    pub privacy: PrivacySettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub shutdown_timeout_seconds: u64,
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy's address).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub busy_timeout_ms: u64,
}

/// The URL may carry a password, so it never prints.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &"[redacted]")
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClinicSettings {
    pub name: String,
    pub address: String,
    pub phone: String,
    #[serde(deserialize_with = "time_zone")]
    pub timezone: Tz,
    pub public_base_url: String,
    /// The clinic's privacy notice, linked from the booking form's consent.
    pub privacy_notice_url: String,
}

/// The challenge hook (`api::challenge`); off while `verify_url` is empty.
#[derive(Clone, Deserialize)]
pub struct ChallengeSettings {
    pub verify_url: String,
    pub secret: String,
    pub script_url: String,
    pub site_key: String,
    pub widget_class: String,
    pub response_field: String,
    pub timeout_ms: u64,
    /// Further origins the widget needs (hCaptcha's asset hosts), `https://host` or
    /// `https://*.host`, for the pages' Content Security Policy.
    pub csp_sources: Vec<String>,
}

impl std::fmt::Debug for ChallengeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeSettings")
            .field("verify_url", &self.verify_url)
            .field("secret", &"<hidden>")
            .field("script_url", &self.script_url)
            .field("site_key", &self.site_key)
            .field("widget_class", &self.widget_class)
            .field("response_field", &self.response_field)
            .field("timeout_ms", &self.timeout_ms)
            .field("csp_sources", &self.csp_sources)
            .finish()
    }
}

impl ChallengeSettings {
    pub fn enabled(&self) -> bool {
        !self.verify_url.trim().is_empty()
    }

    /// The scheme and host the widget's script comes from, which the pages' Content
    /// Security Policy must let in; `None` without a script.
    pub fn script_origin(&self) -> Option<String> {
        let url = self.script_url.trim();
        let rest = url.strip_prefix("https://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        is_host(host, false).then(|| format!("https://{host}"))
    }

    /// Every origin the pages must let the widget load from: its script's, and
    /// `csp_sources` (each checked, so nothing else can enter the policy).
    pub fn widget_sources(&self) -> Vec<String> {
        let mut sources: Vec<String> = self.script_origin().into_iter().collect();
        sources.extend(self.csp_sources.iter().filter_map(|s| {
            let host = s.trim().strip_prefix("https://")?;
            is_host(host, true).then(|| format!("https://{host}"))
        }));
        sources
    }
}

/// A host name with an optional port (and, where allowed, a leading `*.`): letters,
/// digits, dots and hyphens only, so nothing can break out of a policy.
fn is_host(host: &str, wildcard: bool) -> bool {
    let host = match host.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => host,
    };
    let (name, port) = host.split_once(':').unwrap_or((host, "1"));
    !name.is_empty()
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebSettings {
    /// A folder of page templates overriding the built-in ones by name; empty for none.
    pub templates_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookingSettings {
    pub min_notice_minutes: u32,
    pub max_days_ahead: u32,
    pub change_cutoff_hours: u32,
    pub idempotency_hours: u32,
    pub availability_cache_ms: u64,
    pub availability_cache_bytes: usize,
    pub max_live_bookings_per_email: u32,
    pub max_live_bookings_per_phone: u32,
    pub pending_review_expiry_hours: u32,
    pub manage_link_valid_days_after: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlotSettings {
    pub horizon_days: u32,
}

#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    pub session_hours: u32,
    pub login_burst: u32,
    pub login_replenish_seconds: u64,
    pub manage_link_secret: String,
}

/// The secret never prints.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("session_hours", &self.session_hours)
            .field("login_burst", &self.login_burst)
            .field("login_replenish_seconds", &self.login_replenish_seconds)
            .field("manage_link_secret", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    pub transport: EmailTransport,
    pub file_dir: String,
    pub templates_dir: String,
    pub from: String,
    pub front_desk: String,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
    pub poll_interval_ms: u64,
    pub reminder_hours_before: u32,
    pub body_retention_days: u32,
    pub smtp: SmtpSettings,
}

impl EmailSettings {
    /// The domain the clinic's mail comes from, which names its messages and calendar
    /// events (`{reference}@{domain}`).
    pub fn domain(&self) -> &str {
        self.from
            .rsplit_once('@')
            .map_or("dermabook.invalid", |(_, d)| d)
    }
}

#[derive(Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: String,
    pub timeout_seconds: u64,
}

/// The password never prints.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoSettings {
    pub seed_on_start: bool,
}

/// The dermatologists' calendar subscriptions.
#[derive(Debug, Clone, Deserialize)]
pub struct CalendarSettings {
    /// Whether a feed's events name the patient (else the treatment alone).
    pub show_patient_names: bool,
}

/// How long personal data is kept.
#[derive(Debug, Clone, Deserialize)]
pub struct PrivacySettings {
    /// Years after a patient's last appointment ended that their personal data is erased
    /// (housekeeping, hourly); 0 keeps it until an admin erases it.
    pub retention_years: u32,
}

/// Signed deliveries of booking events to the clinic's other systems (`webhooks`).
#[derive(Clone, Deserialize)]
pub struct WebhookSettings {
    /// Seals the endpoints' signing secrets in the database (32+ characters). Generated
    /// beside a SQLite database when empty; on PostgreSQL webhooks need it configured.
    pub encryption_key: String,
    /// Lets endpoints on loopback, private and link-local addresses through (tests, or a
    /// receiver on the clinic's own network). Off, such targets are refused.
    pub allow_private_targets: bool,
    /// Lets `http://` endpoints through; off, only `https://` is accepted.
    pub allow_http: bool,
    /// How long one attempt may take, connecting included.
    pub timeout_seconds: u64,
    /// The waits after each failed attempt; one attempt more than there are waits.
    pub retry_schedule_seconds: Vec<u64>,
    pub poll_interval_ms: u64,
    /// Days a delivered or skipped delivery stays listed before housekeeping forgets it.
    pub history_days: u32,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("encryption_key", &"[redacted]")
            .field("allow_private_targets", &self.allow_private_targets)
            .field("allow_http", &self.allow_http)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("retry_schedule_seconds", &self.retry_schedule_seconds)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("history_days", &self.history_days)
            .finish()
    }
}

/// `GET /metrics` answers only a bearer of this token; empty, it is not served.
#[derive(Clone, Deserialize)]
pub struct MetricsSettings {
    pub token: String,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Limits per client address, against scripts. See README, "Rate limits".
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests to the public endpoints one address may make in a burst, and the
    /// milliseconds after which one more is allowed again (per instance).
    pub public_burst: u32,
    pub public_replenish_ms: u64,
    /// Bookings one address may make in an hour, counted in the database (all instances).
    pub bookings_per_hour: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

fn time_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not an IANA time zone such as Europe/London"
        ))
    })
}

impl Settings {
    /// Loads the settings; an error names the key that is wrong.
    pub fn load(config_dir: &Path, profile: Option<&str>) -> anyhow::Result<Settings> {
        Settings::load_with_environment(config_dir, profile, None)
    }

    /// As `load`, reading `DERMABOOK__...` variables from `environment` when given
    /// instead of the process's environment (tests must not change that).
    fn load_with_environment(
        config_dir: &Path,
        profile: Option<&str>,
        environment: Option<config::Map<String, String>>,
    ) -> anyhow::Result<Settings> {
        let mut builder = Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .add_source(File::from(config_dir.join("default.toml")).required(false));
        if let Some(profile) = profile {
            let path = config_dir.join(format!("{profile}.toml"));
            if !path.exists() {
                anyhow::bail!("profile `{profile}`: {} does not exist", path.display());
            }
            builder = builder.add_source(File::from(path));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("DERMABOOK")
                    .prefix_separator("__")
                    .separator("__")
                    .source(environment),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        settings.check()?;
        Ok(settings)
    }

    /// Rules serde cannot express, each reported with its key.
    fn check(&self) -> anyhow::Result<()> {
        let url = &self.clinic.public_base_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!(
                "configuration: clinic.public_base_url must start with http:// or https://, not `{url}`"
            );
        }
        crate::db::Backend::from_url(&self.database.url)
            .map_err(|e| anyhow::anyhow!("configuration: database.url {e}"))?;
        if self.database.pool_size == 0 {
            anyhow::bail!("configuration: database.pool_size must be at least 1");
        }
        if self.auth.session_hours == 0
            || self.auth.login_burst == 0
            || self.auth.login_replenish_seconds == 0
        {
            anyhow::bail!(
                "configuration: auth.session_hours, auth.login_burst and auth.login_replenish_seconds must be above 0"
            );
        }
        for (key, address) in [
            ("email.from", &self.email.from),
            ("email.front_desk", &self.email.front_desk),
        ] {
            if address.parse::<lettre::Address>().is_err() {
                anyhow::bail!("configuration: {key} must be an email address, not `{address}`");
            }
        }
        let webhooks = &self.webhooks;
        if !(1..=300).contains(&webhooks.timeout_seconds) || webhooks.poll_interval_ms == 0 {
            anyhow::bail!(
                "configuration: webhooks.timeout_seconds must be 1 to 300 and webhooks.poll_interval_ms above 0"
            );
        }
        if webhooks.retry_schedule_seconds.len() > 20
            || webhooks
                .retry_schedule_seconds
                .iter()
                .any(|s| *s > 7 * 86_400)
        {
            anyhow::bail!(
                "configuration: webhooks.retry_schedule_seconds takes at most 20 waits of at most 7 days"
            );
        }
        if self.email.max_attempts == 0 || self.email.poll_interval_ms == 0 {
            anyhow::bail!(
                "configuration: email.max_attempts and email.poll_interval_ms must be above 0"
            );
        }
        let challenge = &self.challenge;
        if challenge.enabled() {
            let url = challenge.verify_url.trim();
            let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                .iter()
                .any(|p| url.starts_with(p));
            if !(url.starts_with("https://") || loopback) {
                anyhow::bail!(
                    "configuration: challenge.verify_url must be https:// (or http:// on loopback)"
                );
            }
            let host = url.split_once("://").map_or("", |(_, rest)| {
                rest.split(['/', '?', '#']).next().unwrap_or_default()
            });
            if host.is_empty() {
                anyhow::bail!("configuration: challenge.verify_url names no host");
            }
            if challenge.secret.trim().is_empty() || !(1..=60_000).contains(&challenge.timeout_ms) {
                anyhow::bail!(
                    "configuration: challenge.secret must be set and challenge.timeout_ms be 1 to 60000 when challenge.verify_url is"
                );
            }
            // The booking form's own fields cannot carry the widget's answer.
            let taken = [
                "idempotency_key",
                "consent",
                "name",
                "email",
                "phone",
                "notes",
                "date_of_birth",
                "sessions",
                "dermatologist_id",
                "starts_at",
                "csrf",
            ];
            if taken.contains(&challenge.response_field.as_str()) {
                anyhow::bail!(
                    "configuration: challenge.response_field names one of the booking form's own fields"
                );
            }
            let expected =
                usize::from(challenge.script_origin().is_some()) + challenge.csp_sources.len();
            if challenge.widget_sources().len() != expected {
                anyhow::bail!(
                    "configuration: challenge.csp_sources must each be https://host or https://*.host"
                );
            }
            let field_ok = |v: &str| {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if !field_ok(&challenge.response_field) || !field_ok(&challenge.widget_class) {
                anyhow::bail!(
                    "configuration: challenge.response_field and challenge.widget_class must be letters, digits, - and _"
                );
            }
            if !challenge.script_url.trim().is_empty() && challenge.script_origin().is_none() {
                anyhow::bail!("configuration: challenge.script_url must be an https:// URL");
            }
        }
        if self.booking.idempotency_hours < 24 {
            anyhow::bail!("configuration: booking.idempotency_hours must be at least 24");
        }
        if self.rate_limit.public_burst == 0
            || self.rate_limit.public_replenish_ms == 0
            || self.rate_limit.bookings_per_hour == 0
        {
            anyhow::bail!(
                "configuration: rate_limit.public_burst, rate_limit.public_replenish_ms and rate_limit.bookings_per_hour must be above 0"
            );
        }
        if self.slots.horizon_days == 0 || self.slots.horizon_days > 366 {
            anyhow::bail!("configuration: slots.horizon_days must be 1 to 366");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_load_without_any_file() {
        let settings = Settings::load(Path::new("/nonexistent"), None).unwrap();
        assert_eq!(settings.server.bind, "127.0.0.1:8080");
        assert_eq!(settings.clinic.timezone, chrono_tz::Europe::London);
        assert!(settings.database.url.starts_with("sqlite://"));
    }

    #[test]
    fn email_settings_come_from_the_environment() {
        let environment = [
            ("DERMABOOK__EMAIL__TRANSPORT", "smtp"),
            ("DERMABOOK__EMAIL__SMTP__PORT", "2525"),
            ("DERMABOOK__EMAIL__SMTP__TLS", "starttls"),
            ("DERMABOOK__EMAIL__SMTP__USERNAME", "mailer"),
            ("DERMABOOK__EMAIL__SMTP__PASSWORD", "hunter2-secret"),
            ("DERMABOOK__EMAIL__FRONT_DESK", "desk@clinic.example"),
            ("DERMABOOK__EMAIL__REMINDER_HOURS_BEFORE", "48"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into_iter()
        .collect();
        let settings =
            Settings::load_with_environment(Path::new("/nonexistent"), None, Some(environment))
                .unwrap();
        assert_eq!(settings.email.transport, EmailTransport::Smtp);
        assert_eq!(settings.email.smtp.port, 2525);
        assert_eq!(settings.email.smtp.tls, SmtpTls::Starttls);
        assert_eq!(settings.email.smtp.username, "mailer");
        assert_eq!(settings.email.front_desk, "desk@clinic.example");
        assert_eq!(settings.email.reminder_hours_before, 48);
        assert_eq!(settings.email.smtp.password, "hunter2-secret");
        assert!(
            !format!("{settings:?}").contains("hunter2"),
            "the password never prints"
        );

        let bad = [(
            "DERMABOOK__EMAIL__FROM".to_string(),
            "not an address".to_string(),
        )];
        let error = Settings::load_with_environment(
            Path::new("/nonexistent"),
            None,
            Some(bad.into_iter().collect()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("email.from"), "{error}");
    }

    #[test]
    fn production_refuses_to_start_on_postgres_without_a_manage_link_secret() {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let postgres = [(
            "DERMABOOK__DATABASE__URL".to_string(),
            "postgres://postgres@127.0.0.1/clinic".to_string(),
        )];
        let mut settings = Settings::load_with_environment(
            &config,
            Some("production"),
            Some(postgres.into_iter().collect()),
        )
        .unwrap();
        let error = crate::secret::resolve(&mut settings).unwrap_err();
        assert!(
            error.to_string().contains("auth.manage_link_secret"),
            "{error}"
        );
        let secret = [(
            "DERMABOOK__AUTH__MANAGE_LINK_SECRET".to_string(),
            "a production secret of more than thirty-two characters".to_string(),
        )];
        assert!(
            Settings::load_with_environment(
                &config,
                Some("production"),
                Some(secret.into_iter().collect())
            )
            .is_ok()
        );
    }

    #[test]
    fn a_missing_profile_is_an_error_naming_it() {
        let error = Settings::load(Path::new("/nonexistent"), Some("staging")).unwrap_err();
        assert!(error.to_string().contains("staging"), "{error}");
    }
}
