//! The front desk's bookings: book a phone patient, list and filter, look one up, move it
//! through its statuses, and read its history.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::bookings::{BookingBody, local_today, observed};
use super::extract::ValidJson;
use super::idempotency;
use super::identity::{FrontDesk, StaffUser};
use super::manage::{CancelBody, optional_body};
use super::problem::{ApiError, ApiResult};
use super::time::{parse_date, parse_date_range, parse_instant};
use super::views::{
    AdminBookingView, CancelledView, Page, PageInfo, admin_view, booked_view, history_view,
};
use crate::app::AppState;
use crate::booking::{self, Channel};
use crate::db;
use crate::domain::booking::{Action, BookingStatus};
use crate::domain::catalogue::normalise_email;
use crate::domain::local_time::local_days_utc;
use crate::store::audit;
use crate::store::bookings::{self, BookingDetails, BookingFilter};

/// `POST /api/v1/admin/bookings`: the booking form, plus `waive_notice` and
/// `waive_consultation`, which the audit log records.
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings",
    tag = "front desk",
    description = "Books for a phone patient; `waive_notice` and `waive_consultation` are recorded in the audit log. Role: front desk or admin.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible characters; a retry with the same key and body replays the first answer (with `Idempotent-Replayed: true`); the same key with another body is a 422")),
    request_body = BookingBody,
    responses((status = 201, description = "Created", body = super::views::BookedView), (status = 410, description = "A replay of an `Idempotency-Key` whose booking's patient has since been erased"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    FrontDesk(user): FrontDesk,
    body: ValidJson<BookingBody>,
) -> ApiResult<HttpResponse> {
    let result = book_by_phone(&state, &req, user, body.0).await;
    observed("book", "front_desk", result)
}

async fn book_by_phone(
    state: &AppState,
    req: &HttpRequest,
    user: StaffUser,
    body: BookingBody,
) -> ApiResult<HttpResponse> {
    let key = idempotency::key_of(req)?;
    // A key's idempotency keys are its own, not its creator's or another key's.
    let scope = match user.api_key {
        Some(key) => format!("admin-bookings:key:{key}"),
        None => format!("admin-bookings:{}", user.id),
    };
    let (status, body, replayed) = submit_by_phone(state, &user, body, key, scope).await?;
    Ok(idempotency::answer(status, body, replayed))
}

/// A booking for a phone patient, as the API and the desk's page both take it, with the
/// waivers the form asked for; once per `key` in `scope`. Answers the status, the
/// `BookedView` JSON, and whether it was replayed.
pub async fn submit_by_phone(
    state: &AppState,
    user: &StaffUser,
    body: BookingBody,
    key: Option<String>,
    scope: String,
) -> ApiResult<(u16, String, bool)> {
    let hash = idempotency::fingerprint(&body)?;
    let channel = Channel::FrontDesk {
        by: user.actor(),
        waive_notice: body.waive_notice,
        waive_consultation: body.waive_consultation,
    };
    let settings = state.settings.clone();
    let now = state.clock.now();
    let request = body.into_request(local_today(&settings, now))?;
    idempotency::remembered(state, key, scope, hash, move |conn| {
        let booked = booking::book(conn, &settings, request, channel, now)?;
        Ok((StatusCode::CREATED, booked_view(&settings, &booked)))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ListQuery {
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    dermatologist: Option<i64>,
    /// One status or several, comma-separated.
    status: Option<String>,
    /// A patient id, or an email address.
    patient: Option<String>,
    /// Incremental sync: changes from this instant on (RFC 3339), the first time.
    updated_since: Option<String>,
    /// Incremental sync: the `next_cursor` of the previous answer.
    cursor: Option<String>,
}
const MAX_LIST_DAYS: i64 = 366;

/// A sync cursor: a place in the order of changes, opaque to clients.
fn cursor_text((seq, id): bookings::ChangePosition) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{seq}.{id}"))
}

fn cursor_of(text: &str) -> ApiResult<bookings::ChangePosition> {
    use base64::Engine;
    let invalid = || ApiError::invalid("cursor", "is not a cursor this server gave");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (seq, id) = text.split_once('.').ok_or_else(invalid)?;
    Ok((
        seq.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    ))
}

/// Incremental sync: the bookings changed after the cursor (or since `updated_since`), in
/// the order of changes, and where to go on from.
async fn changes(state: &AppState, query: &ListQuery, page: Page) -> ApiResult<HttpResponse> {
    let filtered = query.date.is_some()
        || query.from.is_some()
        || query.to.is_some()
        || query.dermatologist.is_some()
        || query.status.is_some()
        || query.patient.is_some();
    if filtered {
        return Err(ApiError::invalid(
            "cursor",
            "updated_since and cursor take no other filter: a sync reads every change",
        ));
    }
    let (after, since) = match (&query.cursor, &query.updated_since) {
        (Some(cursor), _) => (cursor_of(cursor)?, None),
        (None, Some(since)) => ((0, 0), Some(parse_instant("updated_since", since)?)),
        (None, None) => ((0, 0), None),
    };
    let limit = page.per_page;
    let mut found = state
        .read(move |conn| bookings::changed_after(conn, after, since, limit + 1))
        .await?;
    let has_more = found.len() as i64 > limit;
    found.truncate(usize::try_from(limit).unwrap_or(0));
    let last = found
        .last()
        .map_or(after, |d| (d.booking.change_seq, d.booking.id));
    let tz = state.settings.clinic.timezone;
    let count = found.len() as i64;
    Ok(HttpResponse::Ok().json(BookingList {
        bookings: found.iter().map(|d| admin_view(tz, d)).collect(),
        page: PageInfo {
            page: 1,
            per_page: limit,
            total: count,
        },
        next_cursor: Some(cursor_text(last)),
        has_more: Some(has_more),
    }))
}

/// `GET /api/v1/admin/bookings?date=|from=&to=&dermatologist=&status=&patient=&page=&per_page=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/bookings",
    tag = "front desk",
    description = "Bookings by start, filtered. With `updated_since` or `cursor` instead, an incremental sync: the bookings changed since, in the order their changes committed (across instances too), `per_page` at a time, with `next_cursor` to pass next time and `has_more`; a poller that always passes the last `next_cursor` misses no change and sees none twice. Role: front desk or admin.",
    params(("date" = Option<String>, Query, description = "One local date (YYYY-MM-DD); or from and to"), ("from" = Option<String>, Query, description = "First local date"), ("to" = Option<String>, Query, description = "Last local date (at most 366 days)"), ("dermatologist" = Option<i64>, Query, description = "Only this dermatologist"), ("status" = Option<String>, Query, description = "One status or several, comma-separated"), ("patient" = Option<String>, Query, description = "A patient id, or an email address"), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "1-based page (default 1)"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Items a page (default 50)"), ("updated_since" = Option<String>, Query, format = DateTime, description = "Sync: changes from this instant on, the first time"), ("cursor" = Option<String>, Query, description = "Sync: the previous answer's `next_cursor`")),
    responses((status = 200, description = "Done", body = BookingList), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn list(
    state: web::Data<AppState>,
    _: FrontDesk,
    query: web::Query<ListQuery>,
    page: Page,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    if query.cursor.is_some() || query.updated_since.is_some() {
        return changes(&state, &query, page).await;
    }
    let tz = state.settings.clinic.timezone;
    let mut filter = BookingFilter {
        dermatologist_id: query.dermatologist,
        ..BookingFilter::default()
    };
    let dates = match (&query.date, &query.from, &query.to) {
        (Some(date), None, None) => {
            let date = parse_date("date", date)?;
            Some((date, date))
        }
        (None, Some(from), Some(to)) => Some(parse_date_range(from, to, MAX_LIST_DAYS)?),
        (None, None, None) => None,
        (Some(_), _, _) => {
            return Err(ApiError::invalid(
                "date",
                "give either date, or from and to",
            ));
        }
        _ => return Err(ApiError::invalid("to", "from and to go together")),
    };
    if let Some((from, to)) = dates {
        filter.starts_between = Some(local_days_utc(tz, from, to));
    }
    if let Some(statuses) = &query.status {
        for status in statuses.split(',').map(str::trim) {
            let status = BookingStatus::parse(status).ok_or_else(|| {
                ApiError::invalid("status", format!("must be {}", BookingStatus::choices()))
            })?;
            filter.statuses.push(status);
        }
    }
    match query.patient.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            filter.patient_id = Some(
                id.parse()
                    .map_err(|_| ApiError::invalid("patient", "is not a patient id"))?,
            );
        }
        Some(email) if email.contains('@') => filter.patient_email = Some(normalise_email(email)),
        Some(_) => {
            return Err(ApiError::invalid(
                "patient",
                "must be a patient id or an email address",
            ));
        }
        None => {}
    }
    let (found, total) = state
        .read(move |conn| bookings::list(conn, &filter, page.offset(), page.per_page))
        .await?;
    Ok(HttpResponse::Ok().json(BookingList {
        bookings: found.iter().map(|d| admin_view(tz, d)).collect(),
        page: page.of(total),
        next_cursor: None,
        has_more: None,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BookingList {
    bookings: Vec<AdminBookingView>,
    #[serde(flatten)]
    page: PageInfo,
    /// Sync only: where the next poll goes on from.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// Sync only: whether more changes wait beyond this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    has_more: Option<bool>,
}

/// `GET /api/v1/admin/bookings/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/admin/bookings/{id}",
    tag = "front desk",
    description = "One booking, with the patient record and the details its form gave. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = super::views::AdminBookingView), (status = 404, description = "Not found"))
)]
pub async fn get(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let details = state
        .read(move |conn| bookings::details(conn, id)?.ok_or(ApiError::NotFound("booking")))
        .await?;
    Ok(HttpResponse::Ok().json(admin_view(state.settings.clinic.timezone, &details)))
}

/// Runs one status change in a write transaction at the clock's now, and answers the
/// booking as it is then.
async fn change<F>(state: &AppState, f: F) -> ApiResult<HttpResponse>
where
    F: FnOnce(
            &mut db::DbConnection,
            &crate::config::Settings,
            NaiveDateTime,
        ) -> Result<BookingDetails, booking::BookingError>
        + Send
        + 'static,
{
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    let details = state.write(move |conn| f(conn, &settings, now)).await?;
    Ok(HttpResponse::Ok().json(admin_view(tz, &details)))
}

async fn outcome(
    state: &AppState,
    user: StaffUser,
    id: i64,
    action: Action,
) -> ApiResult<HttpResponse> {
    let operation = match action {
        Action::Confirm => "confirm",
        Action::Cancel => "cancel",
        Action::Complete => "complete",
        Action::NoShow => "no_show",
        Action::Reschedule => "reschedule",
        Action::Review => "review",
        Action::Expire => "expire",
    };
    let result = change(state, move |conn, settings, now| {
        booking::record_outcome(conn, settings, id, action, user.actor(), now)
    })
    .await;
    observed(operation, "front_desk", result)
}

/// `POST /api/v1/admin/bookings/{id}/confirm`
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/confirm",
    tag = "front desk",
    description = "Confirms a booking awaiting review. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = super::views::AdminBookingView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn confirm(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::Confirm).await
}

/// `POST /api/v1/admin/bookings/{id}/complete`
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/complete",
    tag = "front desk",
    description = "Marks a confirmed booking completed, after its start. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = super::views::AdminBookingView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn complete(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::Complete).await
}

/// `POST /api/v1/admin/bookings/{id}/no-show`
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/no-show",
    tag = "front desk",
    description = "Marks a confirmed booking a no-show, after its start. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = super::views::AdminBookingView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn no_show(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    outcome(&state, user, id.into_inner(), Action::NoShow).await
}

/// `POST /api/v1/admin/bookings/{id}/cancel` `{course?: bool}`
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/cancel",
    tag = "front desk",
    description = "Cancels the booking (answering it), or with `course: true` every later session of its course (answering `cancelled`). The body is optional. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = Option<super::manage::CancelBody>,
    responses((status = 200, description = "Done", body = super::views::DeskCancelled), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn cancel(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
    body: Bytes,
) -> ApiResult<HttpResponse> {
    let body: CancelBody = optional_body(&body)?;
    let id = id.into_inner();
    if !body.course {
        return outcome(&state, user, id, Action::Cancel).await;
    }
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    let cancelled = state
        .write(move |conn| booking::cancel_course(conn, &settings, id, user.actor(), now))
        .await
        .map(|cancelled| {
            HttpResponse::Ok().json(CancelledView {
                cancelled: cancelled.iter().map(|d| admin_view(tz, d)).collect(),
            })
        });
    observed("cancel", "front_desk", cancelled)
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRescheduleBody {
    #[schema(format = DateTime)]
    starts_at: String,
    #[serde(default)]
    dermatologist_id: Option<i64>,
    #[serde(default)]
    waive_notice: bool,
}

/// `POST /api/v1/admin/bookings/{id}/reschedule` `{starts_at, dermatologist_id?, waive_notice?}`
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/reschedule",
    tag = "front desk",
    description = "Moves the booking; `waive_notice` lets it move sooner than the minimum notice. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = AdminRescheduleBody,
    responses((status = 200, description = "Done", body = super::views::AdminBookingView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn reschedule(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
    body: ValidJson<AdminRescheduleBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let starts_at = parse_instant("starts_at", &body.starts_at)?;
    let id = id.into_inner();
    let result = change(&state, move |conn, settings, now| {
        booking::reschedule(
            conn,
            settings,
            id,
            starts_at,
            body.dermatologist_id,
            user.actor(),
            body.waive_notice,
            now,
        )
    })
    .await;
    observed("reschedule", "front_desk", result)
}

/// `POST /api/v1/admin/bookings/{id}/manage-link`: revokes the booking's manage link
/// and answers a new one (for the desk to pass on; the old one stops working at once).
#[utoipa::path(
    post,
    path = "/api/v1/admin/bookings/{id}/manage-link",
    tag = "front desk",
    description = "Revokes the booking's manage link and answers a new one. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = ReissuedLink), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn reissue_manage_link(
    state: web::Data<AppState>,
    FrontDesk(user): FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let settings = state.settings.clone();
    let tz = settings.clinic.timezone;
    let now = state.clock.now();
    let (details, token) = state
        .write(move |conn| booking::reissue_manage_link(conn, &settings, id, user.actor(), now))
        .await?;
    let base = state.settings.clinic.public_base_url.trim_end_matches('/');
    Ok(HttpResponse::Ok().json(ReissuedLink {
        manage_url: format!("{base}/api/v1/manage/{token}"),
        manage_token: token,
        booking: admin_view(tz, &details),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReissuedLink {
    booking: AdminBookingView,
    manage_token: String,
    manage_url: String,
}

/// `GET /api/v1/admin/bookings/{id}/history`
#[utoipa::path(
    get,
    path = "/api/v1/admin/bookings/{id}/history",
    tag = "front desk",
    description = "The booking's audit trail, oldest first. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = super::views::HistoryView), (status = 404, description = "Not found"))
)]
pub async fn history(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tz = state.settings.clinic.timezone;
    let entries = state
        .read(move |conn| {
            bookings::details(conn, id)?.ok_or(ApiError::NotFound("booking"))?;
            Ok::<_, ApiError>(audit::history(conn, "booking", id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(history_view(tz, id, entries)))
}
