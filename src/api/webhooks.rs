//! Webhook endpoints for admins: register one (its signing secret shown once), change or
//! remove it, list its deliveries, replay or skip one. See `crate::webhooks`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::extract::{MergePatch, ValidJson, apply_merge_patch};
use super::identity::Admin;
use super::problem::{ApiError, ApiResult};
use super::time::local_rfc3339;
use super::views::{Page, PageInfo};
use crate::app::AppState;
use crate::store::audit::{self, Actor, Change};
use crate::store::webhooks::{self as store, Delivery, Endpoint, EndpointChange, NewEndpoint};
use crate::webhooks::event::{self, EventType};
use crate::webhooks::seal::{Sealer, new_secret};
use crate::webhooks::target::{Policy, check_target};

#[derive(Serialize, utoipa::ToSchema)]
struct EndpointView {
    id: i64,
    url: String,
    description: String,
    event_types: Vec<EventType>,
    active: bool,
    /// Since when a delivery has used its last attempt without success; cleared by the
    /// next one delivered.
    failing_since: Option<String>,
    created_by: i64,
    created_at: String,
    updated_at: String,
}

fn endpoint_view(tz: chrono_tz::Tz, e: Endpoint) -> EndpointView {
    EndpointView {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: event::split(&e.event_types),
        active: e.active,
        failing_since: e.failing_since.map(|at| local_rfc3339(tz, at)),
        created_by: e.created_by,
        created_at: local_rfc3339(tz, e.created_at),
        updated_at: local_rfc3339(tz, e.updated_at),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EndpointList {
    webhooks: Vec<EndpointView>,
}

/// An endpoint as a client writes it.
#[derive(Debug, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// `https://` (or `http://` where the clinic allows it), on a public address.
    #[validate(length(min = 1, max = 2000, message = "must be 1 to 2000 characters"))]
    #[schema(min_length = 1, max_length = 2000)]
    url: String,
    /// What it receives; at least one.
    #[validate(length(min = 1, message = "must name at least one event type"))]
    #[schema(min_items = 1)]
    event_types: Vec<EventType>,
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    description: String,
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

impl EndpointInput {
    fn from_stored(e: &Endpoint) -> EndpointInput {
        EndpointInput {
            url: e.url.clone(),
            event_types: event::split(&e.event_types),
            description: e.description.clone(),
            active: e.active,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EndpointCreated {
    #[serde(flatten)]
    webhook: EndpointView,
    /// The signing secret (`whsec_...`), shown this once: verify each delivery's
    /// `webhook-signature` with it, as the Standard Webhooks libraries do.
    secret: String,
}

/// Endpoints a clinic may register: each booking change reads them all.
const MAX_ENDPOINTS: i64 = 50;

/// The URL's check, in the words of a 422; the URL as parsed, which is what is kept.
async fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    let policy = Policy::from_settings(&state.settings.webhooks);
    check_target(url, policy)
        .await
        .map(|parsed| parsed.to_string())
        .map_err(|e| ApiError::invalid("url", e.to_string()))
}

fn sealer(state: &AppState) -> ApiResult<Sealer> {
    Sealer::new(&state.settings.webhooks.encryption_key).ok_or_else(|| {
        ApiError::Conflict(
            "webhooks need webhooks.encryption_key (DERMABOOK__WEBHOOKS__ENCRYPTION_KEY) in the server's configuration".into(),
        )
    })
}

fn endpoint_or_404(conn: &mut crate::db::DbConnection, id: i64) -> ApiResult<Endpoint> {
    store::by_id(conn, id)?.ok_or(ApiError::NotFound("webhook"))
}

fn record(
    conn: &mut crate::db::DbConnection,
    admin: i64,
    id: i64,
    action: &'static str,
    details: Option<serde_json::Value>,
    now: chrono::NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        conn,
        Actor::Staff(admin),
        Change {
            entity: "webhook",
            entity_id: id,
            action,
            before_status: None,
            after_status: None,
            details,
        },
        now,
    )?;
    Ok(())
}

/// `GET /api/v1/admin/webhooks`
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks",
    tag = "webhooks",
    description = "Every registered endpoint; never a secret. Role: admin.",
    responses((status = 200, description = "Done", body = EndpointList))
)]
pub async fn list(state: web::Data<AppState>, _: Admin) -> ApiResult<HttpResponse> {
    let endpoints = state.read(store::list).await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Ok().json(EndpointList {
        webhooks: endpoints
            .into_iter()
            .map(|e| endpoint_view(tz, e))
            .collect(),
    }))
}

/// `POST /api/v1/admin/webhooks {url, event_types, description, active}`
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks",
    tag = "webhooks",
    description = "Registers an endpoint for the event types named. Its URL must be https:// on a public address (checked again at each delivery, after DNS resolution). The answer carries the signing secret, shown once. Deliveries carry the Standard Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature`. Role: admin.",
    request_body = EndpointInput,
    responses((status = 201, description = "Created", body = EndpointCreated), (status = 409, description = "The server has no webhooks.encryption_key, or the clinic has 50 endpoints already"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    body: ValidJson<EndpointInput>,
) -> ApiResult<HttpResponse> {
    let input = body.0;
    let sealer = sealer(&state)?;
    let url = checked_url(&state, &input.url).await?;
    let secret = new_secret();
    let sealed = sealer.seal(&secret);
    let now = state.clock.now();
    let created = state
        .write(move |conn| {
            if store::count(conn)? >= MAX_ENDPOINTS {
                return Err(ApiError::Conflict(format!(
                    "a clinic may register at most {MAX_ENDPOINTS} webhook endpoints"
                )));
            }
            let id = store::insert(
                conn,
                &NewEndpoint {
                    url: &url,
                    description: &input.description,
                    event_types: &input.event_types,
                    secret_sealed: &sealed,
                    active: input.active,
                    created_by: admin.id,
                },
                now,
            )?;
            record(
                conn,
                admin.id,
                id,
                "created",
                Some(serde_json::json!({ "url": url })),
                now,
            )?;
            endpoint_or_404(conn, id)
        })
        .await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Created().json(EndpointCreated {
        webhook: endpoint_view(tz, created),
        secret,
    }))
}

/// `GET /api/v1/admin/webhooks/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "webhooks",
    description = "One endpoint. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = EndpointView), (status = 404, description = "Not found"))
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let endpoint = state.read(move |conn| endpoint_or_404(conn, id)).await?;
    Ok(HttpResponse::Ok().json(endpoint_view(state.settings.clinic.timezone, endpoint)))
}

/// `PATCH /api/v1/admin/webhooks/{id}`: a JSON merge patch.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "webhooks",
    description = "A JSON merge patch of the endpoint's url, event_types, description and active. An inactive endpoint gets no new events; those already queued wait until it is active again. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = serde_json::Value,
    responses((status = 200, description = "Done", body = EndpointView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn update(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let current = state.read(move |conn| endpoint_or_404(conn, id)).await?;
    let named: Vec<String> = patch.0.keys().cloned().collect();
    let merged = apply_merge_patch(&EndpointInput::from_stored(&current), patch)?;
    let url = if merged.url == current.url {
        merged.url
    } else {
        checked_url(&state, &merged.url).await?
    };
    let now = state.clock.now();
    // Only the fields this patch names are written (the URL's check happens outside the
    // transaction): a patch of another field at the same moment is kept, not overwritten
    // with what this one read.
    let named = |field: &str| named.iter().any(|n| n == field);
    let change = EndpointChange {
        url: named("url").then_some(url),
        description: named("description").then_some(merged.description),
        event_types: named("event_types").then(|| event::join(&merged.event_types)),
        secret_sealed: None,
        active: named("active").then_some(merged.active),
    };
    let updated = state
        .write(move |conn| {
            if !store::update(conn, id, &change, now)? {
                return Err(ApiError::NotFound("webhook"));
            }
            let updated = endpoint_or_404(conn, id)?;
            let details = serde_json::json!({ "url": updated.url, "active": updated.active });
            record(conn, admin.id, id, "updated", Some(details), now)?;
            Ok(updated)
        })
        .await?;
    Ok(HttpResponse::Ok().json(endpoint_view(state.settings.clinic.timezone, updated)))
}

/// `DELETE /api/v1/admin/webhooks/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "webhooks",
    description = "Removes an endpoint and its deliveries, sent or not. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"))
)]
pub async fn delete(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    state
        .write(move |conn| {
            if !store::delete(conn, id)? {
                return Err(ApiError::NotFound("webhook"));
            }
            record(conn, admin.id, id, "deleted", None, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryView {
    id: i64,
    event_type: String,
    /// The `webhook-id` header: the same on every attempt.
    message_id: String,
    /// What the event is about (`booking:17`); one subject's events arrive in order.
    subject: String,
    /// pending, sending, delivered, failed (its attempts are used up; the subject's
    /// later events wait until it is replayed or skipped) or skipped.
    status: String,
    attempts: i32,
    next_attempt_at: String,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
    /// The body sent.
    payload: serde_json::Value,
}

fn delivery_view(tz: chrono_tz::Tz, d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_type: d.event_type,
        message_id: d.message_id,
        subject: d.subject,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: local_rfc3339(tz, d.next_attempt_at),
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at.map(|at| local_rfc3339(tz, at)),
        created_at: local_rfc3339(tz, d.created_at),
        payload: serde_json::from_str(&d.payload).unwrap_or_default(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryList {
    deliveries: Vec<DeliveryView>,
    #[serde(flatten)]
    page: PageInfo,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeliveryQuery {
    status: Option<String>,
}

const STATUSES: [&str; 5] = ["pending", "sending", "delivered", "failed", "skipped"];

/// `GET /api/v1/admin/webhooks/{id}/deliveries?status=&page=&per_page=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/{id}/deliveries",
    tag = "webhooks",
    description = "The endpoint's deliveries, newest first. Role: admin.",
    params(("id" = i64, Path, description = "The record's id"), ("status" = Option<String>, Query, pattern = "^(pending|sending|delivered|failed|skipped)$", description = "pending, sending, delivered, failed or skipped"), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "1-based page (default 1)"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Items a page (default 50)")),
    responses((status = 200, description = "Done", body = DeliveryList), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn deliveries(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<i64>,
    query: web::Query<DeliveryQuery>,
    page: Page,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let status = query.into_inner().status;
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "must be pending, sending, delivered, failed or skipped",
        ));
    }
    let (rows, total) = state
        .read(move |conn| {
            endpoint_or_404(conn, id)?;
            Ok::<_, ApiError>(store::deliveries_of(
                conn,
                id,
                status.as_deref(),
                page.offset(),
                page.per_page,
            )?)
        })
        .await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: rows.into_iter().map(|d| delivery_view(tz, d)).collect(),
        page: page.of(total),
    }))
}

/// Replays or skips one delivery of one endpoint, audited; `act` says whether the
/// delivery was in a state that allows it.
async fn act_on_delivery(
    state: web::Data<AppState>,
    admin: i64,
    (id, delivery_id): (i64, i64),
    action: &'static str,
    refusal: &'static str,
    act: fn(&mut crate::db::DbConnection, i64, chrono::NaiveDateTime) -> diesel::QueryResult<bool>,
) -> ApiResult<HttpResponse> {
    let now = state.clock.now();
    let delivery = state
        .write(move |conn| {
            store::delivery(conn, id, delivery_id)?.ok_or(ApiError::NotFound("delivery"))?;
            if !act(conn, delivery_id, now)? {
                return Err(ApiError::Conflict(refusal.into()));
            }
            let details = serde_json::json!({ "delivery_id": delivery_id });
            record(conn, admin, id, action, Some(details), now)?;
            store::delivery(conn, id, delivery_id)?.ok_or(ApiError::NotFound("delivery"))
        })
        .await?;
    Ok(HttpResponse::Ok().json(delivery_view(state.settings.clinic.timezone, delivery)))
}

/// `POST /api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/replay`
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    description = "Sends a failed, skipped or delivered delivery again, at once and with a fresh set of attempts, under its original webhook-id; one that is pending or in flight, or one with a later event of its subject still to be delivered, is a 409. Role: admin.",
    params(("id" = i64, Path, description = "The endpoint's id"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses((status = 200, description = "Done", body = DeliveryView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn replay(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    ids: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    act_on_delivery(
        state,
        admin.id,
        ids.into_inner(),
        "delivery_replayed",
        "the delivery is still pending or in flight, or a later event of its subject is still to be delivered",
        store::replay,
    )
    .await
}

/// `POST /api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/skip`
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/skip",
    tag = "webhooks",
    description = "Gives up on a pending or failed delivery, so the later events of its subject go on; one delivered, skipped or in flight is a 409. Role: admin.",
    params(("id" = i64, Path, description = "The endpoint's id"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses((status = 200, description = "Done", body = DeliveryView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn skip(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    ids: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    act_on_delivery(
        state,
        admin.id,
        ids.into_inner(),
        "delivery_skipped",
        "only a pending or failed delivery can be skipped",
        |conn, id, _| store::skip(conn, id),
    )
    .await
}
