//! Starts the real server on a random port with a fresh database, and talks to it over HTTP.

use std::path::Path;
use std::time::Duration;

use awc::http::StatusCode;
use dermabook::app::Application;
use dermabook::config::Settings;
use dermabook::db::{self, DbConnection, DbPool};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::Value;

pub const POSTGRES_ENV: &str = "DERMABOOK_TEST_POSTGRES_URL";

/// Whether a PostgreSQL-only test can run here: with `CI` set and no database URL it
/// fails, never a silent pass.
pub fn postgres_available() -> bool {
    let available = std::env::var_os(POSTGRES_ENV).is_some();
    assert!(
        available || std::env::var_os("CI").is_none(),
        "CI is set but {POSTGRES_ENV} is not: the PostgreSQL run cannot be skipped"
    );
    available
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named test function, one test on SQLite and one on PostgreSQL.
/// The PostgreSQL one runs when DERMABOOK_TEST_POSTGRES_URL is set (CI always sets it);
/// with `CI` set and the URL missing, it fails.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                $crate::helpers::run_guarded(super::$name($crate::helpers::Backend::Sqlite)).await;
            }
            #[actix_web::test]
            async fn postgres() {
                if std::env::var_os($crate::helpers::POSTGRES_ENV).is_some() {
                    $crate::helpers::run_guarded(super::$name($crate::helpers::Backend::Postgres)).await;
                } else {
                    // In CI a missing database is a failure, never a silent pass.
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI is set but {} is not: the PostgreSQL run cannot be skipped",
                        $crate::helpers::POSTGRES_ENV
                    );
                    eprintln!("{} is not set: the PostgreSQL run is skipped", $crate::helpers::POSTGRES_ENV);
                }
            }
        }
    )*};
}

/// Runs a test and then stops every server it started, also when it failed: the panic
/// is caught, the servers stopped, and the panic resumed.
pub async fn run_guarded(test: impl std::future::Future<Output = ()>) {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(test).catch_unwind().await;
    stop_servers().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a command (a validator) to its end off the test's runtime. Waiting for it on the
/// runtime would stop the reactor: a connection the server closed meanwhile (its
/// keep-alive is 5 s) would still look open to the client's pool, and the next request
/// on it would fail with `Disconnected`.
pub async fn output_of(mut command: std::process::Command) -> std::process::Output {
    let program = format!("{:?}", command.get_program());
    actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .expect("the command's thread")
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

type RunningServer = (
    actix_web::dev::ServerHandle,
    actix_web::rt::task::JoinHandle<std::io::Result<()>>,
);

thread_local! {
    /// The servers this test thread started, to stop when the test ends.
    static RUNNING: std::cell::RefCell<Vec<RunningServer>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stops every server (and its email worker) the current test started, and waits for
/// them: a server left running would hold database connections, PostgreSQL's over TLS,
/// while the process exits and OpenSSL tears down under them (a double free at exit).
pub async fn stop_servers() {
    let running = RUNNING.with(|r| std::mem::take(&mut *r.borrow_mut()));
    for (handle, task) in running {
        handle.stop(false).await;
        let _ = task.await;
    }
}

/// A database made for one test and removed after it.
pub enum TestDatabase {
    // The folder is held so that it is deleted when the test ends.
    Sqlite(#[allow(dead_code)] tempfile::TempDir, String),
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    pub fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}", dir.path().join("dermabook.db").display());
                TestDatabase::Sqlite(dir, url)
            }
            Backend::Postgres => {
                let server_url = std::env::var(POSTGRES_ENV).expect("DERMABOOK_TEST_POSTGRES_URL");
                let name = format!(
                    "dermabook_test_{}",
                    dermabook::tokens::new_token()
                        .to_lowercase()
                        .replace(['-', '_'], "")
                );
                let name = name[..40].to_string();
                let mut conn = PgConnection::establish(&server_url)
                    .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_ENV} is unreachable: {e}"));
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let base = server_url
                    .rsplit_once('/')
                    .map_or(server_url.as_str(), |(base, _)| base);
                let url = format!("{base}/{name}");
                TestDatabase::Postgres {
                    server_url,
                    name,
                    url,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite(_, url) => url,
            TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres {
            server_url, name, ..
        } = self
            && let Ok(mut conn) = PgConnection::establish(server_url)
        {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The settings a test server starts with: the repository's config, any free port,
/// the test's own database, the demo clinic loaded.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config"), None)
        .expect("settings");
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.database.url = database_url.into();
    settings.database.pool_size = 4;
    settings.demo.seed_on_start = true;
    settings.auth.login_burst = 50;
    // Tests book many times from one address, and the fixtures share a phone number: the
    // limits are off here and on in the tests of the limits themselves.
    settings.rate_limit.enabled = false;
    settings.auth.manage_link_secret = dermabook::tokens::new_token();
    settings.booking.max_live_bookings_per_email = 100;
    settings.booking.max_live_bookings_per_phone = 100;
    // Each test's emails go to its own folder, removed with the test's TestApp.
    settings.email.file_dir = std::env::temp_dir()
        .join(format!(
            "dermabook-test-mail-{}",
            dermabook::tokens::new_token()
        ))
        .display()
        .to_string();
    settings.email.poll_interval_ms = 50;
    // Receivers in tests listen on loopback, over plain HTTP; the refusal of such targets
    // is tested with these off.
    settings.webhooks.encryption_key = dermabook::tokens::new_token();
    settings.webhooks.allow_private_targets = true;
    settings.webhooks.allow_http = true;
    settings.webhooks.poll_interval_ms = 50;
    settings
}

/// Fails the test when an operation of the OpenAPI document answers a status the
/// document does not list for it: every answer a test sees is then one a client generated
/// from the document expects. Routes outside the document (pages, health) are not checked.
fn assert_documented(method: &awc::http::Method, path: &str, status: StatusCode, body: &[u8]) {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let document = DOCUMENT
        .get_or_init(|| serde_json::to_value(dermabook::api::document()).expect("the document"));
    let Some(paths) = document["paths"].as_object() else {
        return;
    };
    // A literal route (`/bookings/export`) wins over a template (`/bookings/{id}`).
    let Some(operation) = paths
        .iter()
        .filter(|(template, _)| path_matches(template, path))
        .min_by_key(|(template, _)| template.matches('{').count())
        .and_then(|(_, item)| item.get(method.as_str().to_lowercase()))
    else {
        return;
    };
    let responses = &operation["responses"];
    assert!(
        responses.get(status.as_str()).is_some() || responses.get("default").is_some(),
        "{method} {path} answered {status}, which the OpenAPI document does not list: {}",
        String::from_utf8_lossy(body)
    );
}

/// Whether `path` is an instance of the document's `template` (`/bookings/{id}/cancel`,
/// `/calendar/{token}.ics`).
fn path_matches(template: &str, path: &str) -> bool {
    let (wanted, given): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    wanted.len() == given.len()
        && wanted
            .iter()
            .zip(&given)
            .all(|(want, got)| match (want.find('{'), want.find('}')) {
                (Some(open), Some(close)) => {
                    let (prefix, suffix) = (&want[..open], &want[close + 1..]);
                    got.len() > prefix.len() + suffix.len()
                        && got.starts_with(prefix)
                        && got.ends_with(suffix)
                }
                _ => want == got,
            })
}

pub struct TestApp {
    pub address: String,
    pub pool: DbPool,
    /// The server's clock: a test moves it forward instead of rewriting times in SQL.
    pub clock: dermabook::clock::Clock,
    pub mail_dir: std::path::PathBuf,
    client: awc::Client,
    pub settings: Settings,
    // Dropped last: the database outlives the pool that uses it. A second instance on
    // the same database has none of its own.
    _database: Option<TestDatabase>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with this status, and returns it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{:?}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/"))
        );
        &self.body
    }

    /// The fields a 422 problem names.
    pub fn invalid_fields(&self) -> Vec<String> {
        self.problem(422)["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The seconds a 429 asks to wait (its `Retry-After`).
    pub fn retry_after(&self) -> i64 {
        self.problem(429);
        self.headers
            .get("retry-after")
            .expect("a Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self._database.is_some() && self.mail_dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.mail_dir);
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let database = TestDatabase::new(backend);
        let mut settings = test_settings(database.url());
        adjust(&mut settings);
        TestApp::start(settings, database).await
    }

    pub async fn start(settings: Settings, database: TestDatabase) -> TestApp {
        let app = Application::build(settings.clone())
            .await
            .expect("the server starts");
        TestApp::serve(app, settings, Some(database))
    }

    /// Starts one more server on this app's database, as a second instance behind a
    /// load balancer would be; it stops with the test.
    pub async fn another_instance(&self) -> TestApp {
        let app = Application::build(self.settings.clone())
            .await
            .expect("the second instance starts");
        TestApp::serve(app, self.settings.clone(), None)
    }

    /// Runs a built application in the background and connects to what it serves.
    pub fn serve(app: Application, settings: Settings, database: Option<TestDatabase>) -> TestApp {
        let url = settings.database.url.clone();
        let mail_dir = std::path::PathBuf::from(&settings.email.file_dir);
        let address = app.address();
        let clock = app.clock();
        let handle = app.handle();
        let task = actix_web::rt::spawn(app.run_until_stopped());
        RUNNING.with(|r| r.borrow_mut().push((handle, task)));
        let pool = db::connect(&url, 2, 5000).expect("test pool");
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        TestApp {
            address,
            pool,
            clock,
            mail_dir,
            client,
            settings,
            _database: database,
        }
    }

    /// Moves the server's clock forward to `instant` (UTC).
    pub fn travel_to(&self, instant: chrono::DateTime<chrono::Utc>) {
        let by = instant.naive_utc() - self.clock.now();
        assert!(
            by > chrono::Duration::zero(),
            "the clock only moves forward"
        );
        self.clock.advance(by);
    }

    /// The URL of this app's database.
    pub fn database_url(&self) -> &str {
        &self.settings.database.url
    }

    pub fn conn(&self) -> db::PooledConn {
        db::checkout(&self.pool).expect("a database connection")
    }

    /// Runs SQL straight against the test's database (to arrange what the API cannot yet).
    pub fn execute_sql(&self, sql: &str) {
        let mut conn = self.conn();
        let conn: &mut DbConnection = &mut conn;
        conn.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn send(&self, request: awc::ClientRequest, body: Option<Vec<u8>>) -> Reply {
        let (method, path) = (
            request.get_method().clone(),
            request.get_uri().path().to_owned(),
        );
        let mut response = match body {
            Some(bytes) => request.send_body(bytes).await,
            None => request.send().await,
        }
        .expect("the server answers");
        let bytes = response
            .body()
            .limit(10 * 1024 * 1024)
            .await
            .expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        assert_documented(&method, &path, response.status(), &bytes);
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    fn request(
        &self,
        method: awc::http::Method,
        path: &str,
        token: Option<&str>,
    ) -> awc::ClientRequest {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        request
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(awc::http::Method::GET, path, token), None)
            .await
    }

    /// GETs with extra headers, returning the raw body bytes too (for encodings).
    pub async fn get_raw(&self, path: &str, headers: &[(&str, &str)]) -> (Reply, Vec<u8>) {
        let mut request = self.request(awc::http::Method::GET, path, None);
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let path = request.get_uri().path().to_owned();
        let mut response = request.send().await.expect("the server answers");
        let bytes = response
            .body()
            .limit(10 * 1024 * 1024)
            .await
            .expect("a body")
            .to_vec();
        assert_documented(&awc::http::Method::GET, &path, response.status(), &bytes);
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: Value::Null,
        };
        (reply, bytes)
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(awc::http::Method::DELETE, path, token), None)
            .await
    }

    /// Sends `body` as JSON with the given method.
    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self
            .request(method, path, token)
            .insert_header(("Content-Type", "application/json"));
        self.send(request, Some(serde_json::to_vec(body).expect("json")))
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send_json("POST", path, token, body).await
    }

    /// POSTs JSON with extra headers (an `Idempotency-Key`, say).
    pub async fn post_with_headers(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .request(awc::http::Method::POST, path, token)
            .insert_header(("Content-Type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        self.send(request, Some(serde_json::to_vec(body).expect("json")))
            .await
    }

    /// Sends raw bytes with any content type, for malformed-input tests.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self
            .request(method, path, token)
            .insert_header(("Content-Type", content_type));
        self.send(request, Some(body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            None,
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs in and returns the bearer token, failing the test if it cannot.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login as {email}: {:?}",
            reply.body
        );
        reply.body["token"].as_str().expect("token").to_string()
    }

    pub async fn front_desk_token(&self) -> String {
        self.token(
            dermabook::demo::FRONT_DESK_EMAIL,
            dermabook::demo::FRONT_DESK_PASSWORD,
        )
        .await
    }

    pub async fn admin_token(&self) -> String {
        self.token(
            dermabook::demo::ADMIN_EMAIL,
            dermabook::demo::ADMIN_PASSWORD,
        )
        .await
    }
}
