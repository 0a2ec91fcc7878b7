//! Builds the actix application: shared state, middleware and routes, bound to a listener
//! that may be port 0 (tests ask for any free port), and the supervisor of the background
//! jobs, started once the server is bound and stopped after it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::GovernorConfigBuilder;
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{App, HttpServer, ResponseError, web};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::api::{
    self,
    problem::{ApiError, PROBLEM_JSON},
};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbConnection, DbPool};
use crate::jobs::Supervisor;

/// What every handler can reach: the pool, the settings, the clock, and the availability
/// index with its answers.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub availability: crate::booking::availability::AvailabilityIndex,
    /// The parts availability answers are put together from.
    pub availability_parts: crate::api::parts::PartCache,
    /// The page templates.
    pub pages: crate::web::Pages,
    /// Where write transactions wait their turn on SQLite (shared with the email sender).
    pub writers: db::WriteQueue,
    /// Who a request's client is, under the configured trusted proxies.
    pub client: crate::api::client::ClientAddress,
    /// The email sender's sign of life, for readiness.
    pub sender_heartbeat: crate::email::worker::Heartbeat,
    /// The challenge hook of online bookings (off unless configured).
    pub challenges: crate::api::challenge::Challenges,
}

impl AppState {
    /// Runs blocking diesel work on actix's blocking pool, never on the async workers.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        self.run(None, f).await
    }

    /// As [`read`](Self::read), inside a write transaction, committed when `f` succeeds
    /// and rolled back when it fails. On SQLite the writes queued together share one
    /// transaction, `f` in a savepoint of it, and one commit (`db::WriteQueue`); the
    /// answer comes after that commit.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + From<diesel::result::Error> + Send + 'static,
    {
        self.writers.write(&self.pool, f).await?.map_err(Into::into)
    }

    /// As [`read`](Self::read), in the writers' queue but outside a transaction: for use
    /// cases that open their own, such as scheduling's, which regenerates slots in steps.
    pub async fn writing<T, E, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let turn = self.writers.turn().await;
        self.run(turn, f).await
    }

    /// Runs `f` on the blocking pool with a pooled connection, and gives the writers'
    /// `turn` back the moment `f` returns: not when this task is next polled, a wake-up
    /// that on a busy machine every writer queued behind would wait for too.
    async fn run<T, E, F>(&self, turn: Option<db::Turn>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = db::checkout(&pool)?;
            let result = f(&mut conn).map_err(Into::into);
            // The connection first: one whose rollback failed may still hold SQLite's lock.
            drop(conn);
            drop(turn);
            result
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }
}

pub struct Application {
    address: std::net::SocketAddr,
    clock: Clock,
    server: Server,
    jobs: Supervisor,
}

/// Connects, migrates, and seeds the demo clinic when configured; returns the pool.
/// Shared by `serve` and the CLI commands that write.
pub fn prepare_database(settings: &Settings) -> anyhow::Result<DbPool> {
    let pool = db::connect(
        &settings.database.url,
        settings.database.pool_size,
        settings.database.busy_timeout_ms,
    )?;
    let mut conn = db::checkout(&pool)?;
    let applied = db::run_migrations(&mut conn)?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    let with_logins = crate::demo::logins_allowed(settings);
    if settings.demo.seed_on_start {
        if !with_logins {
            tracing::warn!(
                bind = settings.server.bind,
                "the demo clinic is seeded without its logins: their passwords are published and this server is reachable beyond this machine"
            );
        }
        crate::demo::seed(&mut conn, with_logins)?;
    }
    if !with_logins {
        let retired = crate::demo::retire_logins(&mut conn)?;
        if retired > 0 {
            tracing::warn!(
                retired,
                "demo logins deactivated: this server is reachable beyond this machine"
            );
        }
    }
    Ok(pool)
}

/// Chooses the TLS provider for the process's HTTP clients (the challenge verifier's,
/// webhooks'): the build holds two, and rustls will not guess. Another caller's choice
/// stands. Anything that builds an HTTP client without an `Application` (the benchmarks'
/// load generators) calls it first.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        crate::secret::resolve(&mut settings)?;
        crate::instruments::install();
        install_tls_provider();
        let settings = Arc::new(settings);
        let prepared = settings.clone();
        // Serving also brings the slots' rolling horizon up to date before the first request.
        let pool = tokio::task::spawn_blocking(move || -> anyhow::Result<DbPool> {
            let pool = prepare_database(&prepared)?;
            let rekeyed = db::write_transaction(&mut *db::checkout(&pool)?, |conn| {
                crate::booking::rekey_legacy_links(conn, &prepared.auth.manage_link_secret)
            })?;
            if rekeyed > 0 {
                tracing::warn!(
                    rekeyed,
                    "manage links made under another secret no longer work; new emails carry the working ones"
                );
            }
            let horizon = crate::scheduling::Horizon::of(&prepared, db::now());
            let outcome = crate::scheduling::generate_horizon(&mut *db::checkout(&pool)?, horizon, None)?;
            let conflicts = outcome.conflicts.len();
            tracing::info!(
                added = outcome.added,
                removed = outcome.removed,
                conflicts,
                unchanged = outcome.unchanged,
                "slots generated"
            );
            Ok(pool)
        })
        .await??;
        let listener = TcpListener::bind(&settings.server.bind)
            .map_err(|e| anyhow::anyhow!("server.bind {}: {e}", settings.server.bind))?;
        let address = listener.local_addr()?;
        let clock = Clock::default();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            settings: settings.clone(),
            clock: clock.clone(),
            availability: crate::booking::availability::AvailabilityIndex::new(
                Duration::from_millis(settings.booking.availability_cache_ms),
                clock.clone(),
            ),
            availability_parts: crate::api::parts::PartCache::new(
                settings.booking.availability_cache_bytes,
            ),
            writers: db::WriteQueue::for_url(&settings.database.url),
            pages: crate::web::Pages::new(&settings),
            client: crate::api::client::ClientAddress::new(settings.server.trusted_proxies.clone()),
            sender_heartbeat: crate::email::worker::Heartbeat::default(),
            challenges: crate::api::challenge::Challenges::new(&settings.challenge),
        });
        let server = run(listener, state.clone())?;
        let heartbeat = state.sender_heartbeat.clone();
        let writers = state.writers.clone();
        let jobs = Supervisor::start(
            pool,
            settings,
            clock.clone(),
            heartbeat,
            writers,
            move || state.availability.changed(),
        )?;
        Ok(Application {
            address,
            clock,
            server,
            jobs,
        })
    }

    /// Stops the server from elsewhere (tests stop theirs before the process ends, so no
    /// connection outlives it).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The clock the server's handlers act at; tests move it forward.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The base URL the server answers on, e.g. `http://127.0.0.1:8080`.
    pub fn address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Serves until SIGTERM or SIGINT, then lets requests in flight finish and stops the
    /// background jobs, each after the step it is in (the email sender after the message
    /// on the wire).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.jobs.stop().await;
        served
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    // Built once, outside the per-worker factory, so all workers share one limiter.
    let limits = api::RateLimits {
        login: GovernorConfigBuilder::default()
            .seconds_per_request(settings.auth.login_replenish_seconds)
            .burst_size(settings.auth.login_burst)
            .key_extractor(state.client.clone())
            .finish()
            .ok_or_else(|| {
                anyhow::anyhow!("auth.login_burst and auth.login_replenish_seconds must be above 0")
            })?,
        public: GovernorConfigBuilder::default()
            .milliseconds_per_request(settings.rate_limit.public_replenish_ms)
            .burst_size(settings.rate_limit.public_burst)
            .key_extractor(state.client.clone())
            .finish()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "rate_limit.public_burst and rate_limit.public_replenish_ms must be above 0"
                )
            })?,
        enabled: settings.rate_limit.enabled,
    };
    let max_body = settings.server.max_body_bytes;
    let csp = HeaderValue::from_str(&api::headers::content_security_policy(&settings.challenge))?;

    let mut server = HttpServer::new(move || {
        let csp = csp.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            // A page's form (a treatment with its long texts) may be as large as a body.
            .app_data(web::FormConfig::default().limit(max_body))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| ApiError::NotFound("resource").into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("query: {e}")).into()),
            )
            .wrap(ErrorHandlers::new().default_handler(as_problem))
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                // Any successful write may change what availability answers.
                let writes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
                let state = req.app_data::<web::Data<AppState>>().cloned();
                let response = srv.call(req);
                async move {
                    let response = response.await?;
                    // A page that writes answers with a redirect; one that answers 200
                    // with HTML (a review, a form again) wrote nothing.
                    let page = response.status() == actix_web::http::StatusCode::OK
                        && response
                            .headers()
                            .get(header::CONTENT_TYPE)
                            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
                    if writes
                        && !page
                        && response.status().as_u16() < 400
                        && let Some(state) = state
                    {
                        // Searches from now on see the change. The check starts at once,
                        // beside the answer, so the first search waits only for what is
                        // left of it, and any others take what it loads.
                        state.availability.changed();
                        actix_web::rt::spawn(async move {
                            let _ = api::availability::snapshot(&state).await;
                        });
                    }
                    Ok(response)
                }
            })
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let method = req.method().clone();
                let path = req.path().to_string();
                let authenticated = req.headers().contains_key(header::AUTHORIZATION);
                let response = srv.call(req);
                let csp = csp.clone();
                async move {
                    let mut response = response.await?;
                    let headers = response.headers_mut();
                    api::headers::secure(headers, &method, &path, authenticated, &csp);
                    Ok(response)
                }
            })
            .wrap_fn(|req, srv| {
                use actix_web::HttpMessage;
                use actix_web::dev::Service;
                let request_id = req.extensions().get::<RequestId>().copied();
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    if let Some(id) = request_id
                        && let Ok(value) = HeaderValue::from_str(&id.to_string())
                    {
                        response
                            .headers_mut()
                            .insert(header::HeaderName::from_static("x-request-id"), value);
                    }
                    Ok(response)
                }
            })
            .wrap(TracingLogger::<api::logging::RouteSpans>::new())
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                let started = std::time::Instant::now();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "(no route)".to_string());
                let method = req.method().clone();
                let response = srv.call(req);
                async move {
                    let response = response.await?;
                    crate::instruments::http_request(
                        route,
                        method.as_str(),
                        response.status().as_u16(),
                        started.elapsed(),
                    );
                    Ok(response)
                }
            })
            .configure(|cfg| api::routes(cfg, &limits))
            .configure(|cfg| crate::web::routes(cfg, &limits))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("resource"))
            }))
    })
    .shutdown_timeout(settings.server.shutdown_timeout_seconds)
    // Blocking work is database work (and password hashing): more threads than the pool
    // has connections would only wait for one, each keeping its own stack and allocator
    // arena. Actix's default is hundreds per worker.
    .worker_max_blocking_threads((settings.database.pool_size as usize).max(4))
    .listen(listener)?;
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

/// Turns any error response that is not already a problem document (a 405 from routing,
/// a 429 from the rate limiter) into one.
fn as_problem<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // A problem already, a JSON answer of its own (readiness's 503 names its parts), or a
    // page's own words for a patient.
    let answered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes() == PROBLEM_JSON.as_bytes()
                || v.as_bytes() == b"application/json"
                || v.as_bytes().starts_with(b"text/html")
        });
    if answered {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let error = match status.as_u16() {
        429 => ApiError::TooManyRequests(60),
        500..=599 => ApiError::Internal(anyhow::anyhow!("{status} from a middleware")),
        _ => ApiError::Http(
            status,
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        ),
    };
    let (request, old) = response.into_parts();
    let mut new = error.error_response();
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = old.headers().get(&name) {
            new.headers_mut().insert(name, value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, new).map_into_right_body(),
    ))
}
