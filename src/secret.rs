//! The manage-link secret and the webhooks' encryption key: configured, or, for a SQLite
//! database and nothing configured, generated once into a file beside the database that
//! only its owner may read. On PostgreSQL they must be configured (the encryption key
//! only where webhooks are used), so every instance shares them and a dump of the
//! database alone can neither forge links nor sign. A value that was ever published is
//! refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::db::Backend;

/// Values that shipped in this repository at some time: anyone can read them, so they
/// protect nothing.
const PUBLISHED: &[&str] = &["development-only-manage-link-secret-0123456789"];

/// One secret this module resolves: its configuration key, the file it is generated
/// into beside a SQLite database, and whether PostgreSQL can run without it.
struct Secret {
    key: &'static str,
    file_suffix: &'static str,
    optional_on_postgres: bool,
}

const MANAGE_LINK: Secret = Secret {
    key: "auth.manage_link_secret (DERMABOOK__AUTH__MANAGE_LINK_SECRET)",
    file_suffix: ".manage-link-secret",
    optional_on_postgres: false,
};

const WEBHOOK_KEY: Secret = Secret {
    key: "webhooks.encryption_key (DERMABOOK__WEBHOOKS__ENCRYPTION_KEY)",
    file_suffix: ".webhook-key",
    optional_on_postgres: true,
};

/// Fills in `auth.manage_link_secret` and `webhooks.encryption_key` as described above,
/// or says which key to set.
pub fn resolve(settings: &mut Settings) -> anyhow::Result<()> {
    let url = settings.database.url.clone();
    settings.auth.manage_link_secret =
        resolve_one(&MANAGE_LINK, &settings.auth.manage_link_secret, &url)?;
    settings.webhooks.encryption_key =
        resolve_one(&WEBHOOK_KEY, &settings.webhooks.encryption_key, &url)?;
    Ok(())
}

fn resolve_one(secret: &Secret, configured: &str, database_url: &str) -> anyhow::Result<String> {
    let configured = configured.trim();
    if !configured.is_empty() {
        check(secret, configured)?;
        return Ok(configured.to_string());
    }
    match Backend::from_url(database_url).map_err(|e| anyhow::anyhow!(e))? {
        (Backend::Postgres, _) if secret.optional_on_postgres => Ok(String::new()),
        (Backend::Postgres, _) => anyhow::bail!(
            "configuration: {} must be set on PostgreSQL, the same on every instance (32+ characters)",
            secret.key
        ),
        (Backend::Sqlite, path) => read_or_create(secret, &file_beside(path, secret.file_suffix)),
    }
}

fn check(secret: &Secret, value: &str) -> anyhow::Result<()> {
    let key = secret.key;
    if PUBLISHED.contains(&value) {
        anyhow::bail!("configuration: {key} is a published example; set a secret of your own");
    }
    if value.chars().count() < 32 {
        anyhow::bail!("configuration: {key} must be at least 32 characters");
    }
    Ok(())
}

fn file_beside(database: &str, suffix: &str) -> PathBuf {
    let database = Path::new(database.split('?').next().unwrap_or(database));
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "dermabook.db".into());
    name.push(suffix);
    database.with_file_name(name)
}

/// The secret in `path`, or a new one put there first (owner read/write only). The new
/// one is written whole to a file of its own and then linked into place, which fails if
/// the path exists: a reader never sees half a secret, and two instances starting at
/// once on one SQLite file both end up with the first one's.
fn read_or_create(secret: &Secret, path: &Path) -> anyhow::Result<String> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    if !path.exists() {
        let draft = folder.join(format!("{}-{}", secret.file_suffix, std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&draft)?;
        file.write_all(crate::tokens::new_token().as_bytes())?;
        file.sync_all()?;
        let linked = std::fs::hard_link(&draft, path);
        std::fs::remove_file(&draft)?;
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), key = secret.key, "generated a secret")
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => anyhow::bail!("creating {}: {error}", path.display()),
        }
    }
    let value = std::fs::read_to_string(path)?.trim().to_string();
    check(secret, &value).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, secret: &str) -> Settings {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut settings = Settings::load(&config, None).unwrap();
        settings.database.url = url.into();
        settings.auth.manage_link_secret = secret.into();
        settings
    }

    #[test]
    fn sqlite_generates_a_private_secret_once_and_keeps_it() {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/clinic.db", folder.path().display());
        let mut first = settings(&url, "");
        resolve(&mut first).unwrap();
        assert!(first.auth.manage_link_secret.len() >= 32);
        let file = folder.path().join("clinic.db.manage-link-secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = settings(&url, "");
        resolve(&mut again).unwrap();
        assert_eq!(again.auth.manage_link_secret, first.auth.manage_link_secret);
        assert!(first.webhooks.encryption_key.len() >= 32);
        assert_ne!(first.webhooks.encryption_key, first.auth.manage_link_secret);
        assert_eq!(again.webhooks.encryption_key, first.webhooks.encryption_key);
    }

    #[test]
    fn postgres_needs_a_configured_secret_and_no_one_may_use_a_published_one() {
        let url = "postgres://postgres@127.0.0.1/dermabook";
        let error = resolve(&mut settings(url, "")).unwrap_err().to_string();
        assert!(error.contains("auth.manage_link_secret"), "{error}");
        let error = resolve(&mut settings(url, PUBLISHED[0]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("published"), "{error}");
        let error = resolve(&mut settings(url, "short"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("32"), "{error}");
        let mut ok = settings(
            url,
            "a production secret of more than thirty-two characters",
        );
        resolve(&mut ok).unwrap();
        assert_eq!(ok.webhooks.encryption_key, "", "webhooks are optional");
        let mut short_key = settings(
            url,
            "a production secret of more than thirty-two characters",
        );
        short_key.webhooks.encryption_key = "short".into();
        let error = resolve(&mut short_key).unwrap_err().to_string();
        assert!(error.contains("webhooks.encryption_key"), "{error}");
    }
}
