//! The `dermabook` command itself: configuration errors, create-staff, migrate, serve and
//! a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{Backend, TestApp, TestDatabase, test_settings};
use crate::on_both_databases;

fn dermabook(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dermabook"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DERMABOOK__DATABASE__URL", database_url)
        .env("DERMABOOK__LOG__FILTER", "warn")
        .env_remove("DERMABOOK_PROFILE");
    command
}

#[test]
fn a_bad_setting_is_refused_naming_its_key() {
    for (key, value, named) in [
        (
            "DERMABOOK__DATABASE__POOL_SIZE",
            "lots",
            "database.pool_size",
        ),
        (
            "DERMABOOK__CLINIC__TIMEZONE",
            "Mars/Olympus",
            "clinic.timezone",
        ),
        (
            "DERMABOOK__DATABASE__URL",
            "mysql://localhost/x",
            "database.url",
        ),
    ] {
        let output = dermabook("sqlite://unused.db")
            .env(key, value)
            .arg("migrate")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
}

async fn create_staff_reads_the_password_from_standard_input(backend: Backend) {
    let database = TestDatabase::new(backend);
    let migrate = dermabook(database.url()).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let mut child = dermabook(database.url())
        .args([
            "create-staff",
            "--email",
            "Reception@Clinic.example",
            "--name",
            "Rita",
            "--role",
            "front_desk",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"reception-password-1\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("reception@clinic.example"));

    let mut short = dermabook(database.url())
        .args([
            "create-staff",
            "--email",
            "b@clinic.example",
            "--name",
            "B",
            "--role",
            "admin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    short.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let refused = short.wait_with_output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("password"));

    let mut settings = test_settings(database.url());
    settings.demo.seed_on_start = false;
    let app = TestApp::start(settings, database).await;
    let token = app
        .token("reception@clinic.example", "reception-password-1")
        .await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&token)).await.body["role"],
        "front_desk"
    );
    app.login("b@clinic.example", "short").await.problem(401);
}

on_both_databases!(create_staff_reads_the_password_from_standard_input);

/// `serve` on a fresh SQLite file creates it, loads the demo clinic, prints the address
/// and the demo login, serves, and stops cleanly on SIGTERM.
#[test]
fn serve_starts_on_a_fresh_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("var/dermabook.db").display());
    let mut child = dermabook(&url)
        .env("DERMABOOK__SERVER__BIND", "127.0.0.1:0")
        .env("DERMABOOK__SERVER__WORKERS", "1")
        .env("DERMABOOK__EMAIL__FILE_DIR", dir.path().join("var/mail"))
        .args(["serve", "--demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut printed).unwrap();
    }
    assert!(
        printed.contains("demo front-desk login: frontdesk@harbourskin.example / demo-front-desk"),
        "{printed}"
    );
    let address = printed
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .write_all(b"GET /api/v1/treatments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("mesotherapy-cellulite"));
    assert!(dir.path().join("var/dermabook.db").exists());
    // No secret configured: one was generated beside the database, for its owner only.
    let secret = dir.path().join("var/dermabook.db.manage-link-secret");
    assert!(std::fs::read_to_string(&secret).unwrap().len() >= 32);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
