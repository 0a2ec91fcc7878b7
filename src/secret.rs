//! The manage-link secret: configured, or, for a SQLite database and nothing configured,
//! generated once into a file beside the database that only its owner may read. On
//! PostgreSQL it must be configured, so every instance shares it and a dump of the
//! database alone cannot forge links. A value that was ever published is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::db::Backend;

/// Values that shipped in this repository at some time: anyone can read them, so they
/// protect nothing.
const PUBLISHED: &[&str] = &["development-only-manage-link-secret-0123456789"];

const KEY: &str = "auth.manage_link_secret (DERMABOOK__AUTH__MANAGE_LINK_SECRET)";

/// Fills in `auth.manage_link_secret` as described above, or says which key to set.
pub fn resolve(settings: &mut Settings) -> anyhow::Result<()> {
    let configured = settings.auth.manage_link_secret.trim().to_string();
    if !configured.is_empty() {
        check(&configured)?;
        settings.auth.manage_link_secret = configured;
        return Ok(());
    }
    match Backend::from_url(&settings.database.url).map_err(|e| anyhow::anyhow!(e))? {
        (Backend::Postgres, _) => anyhow::bail!(
            "configuration: {KEY} must be set on PostgreSQL, the same on every instance (32+ characters)"
        ),
        (Backend::Sqlite, path) => {
            settings.auth.manage_link_secret = read_or_create(&file_beside(path))?;
            Ok(())
        }
    }
}

fn check(secret: &str) -> anyhow::Result<()> {
    if PUBLISHED.contains(&secret) {
        anyhow::bail!("configuration: {KEY} is a published example; set a secret of your own");
    }
    if secret.chars().count() < 32 {
        anyhow::bail!("configuration: {KEY} must be at least 32 characters");
    }
    Ok(())
}

fn file_beside(database: &str) -> PathBuf {
    let database = Path::new(database.split('?').next().unwrap_or(database));
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "dermabook.db".into());
    name.push(".manage-link-secret");
    database.with_file_name(name)
}

/// The secret in `path`, or a new one put there first (owner read/write only). The new
/// one is written whole to a file of its own and then linked into place, which fails if
/// the path exists: a reader never sees half a secret, and two instances starting at
/// once on one SQLite file both end up with the first one's.
fn read_or_create(path: &Path) -> anyhow::Result<String> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    if !path.exists() {
        let draft = folder.join(format!(".manage-link-secret-{}", std::process::id()));
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
            Ok(()) => tracing::info!(path = %path.display(), "generated a manage-link secret"),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => anyhow::bail!("creating {}: {error}", path.display()),
        }
    }
    let secret = std::fs::read_to_string(path)?.trim().to_string();
    check(&secret).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(secret)
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
    }
}
