//! The outbox for staff: what was sent, what waits, what failed, and sending a failed
//! message again.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::identity::FrontDesk;
use super::problem::{ApiError, ApiResult};
use super::time::local_rfc3339;
use super::views::{Page, PageInfo};
use crate::app::AppState;
use crate::store::outbox::{self, Email};

#[derive(Serialize, utoipa::ToSchema)]
struct EmailView {
    id: i64,
    booking_id: Option<i64>,
    kind: String,
    recipient: String,
    subject: String,
    status: String,
    attempts: i32,
    next_attempt_at: String,
    last_error: Option<String>,
    created_at: String,
    sent_at: Option<String>,
}

fn email_view(tz: chrono_tz::Tz, e: Email) -> EmailView {
    EmailView {
        id: e.id,
        booking_id: e.booking_id,
        kind: e.kind,
        recipient: e.recipient,
        subject: e.subject,
        status: e.status,
        attempts: e.attempts,
        next_attempt_at: local_rfc3339(tz, e.next_attempt_at),
        last_error: e.last_error,
        created_at: local_rfc3339(tz, e.created_at),
        sent_at: e.sent_at.map(|at| local_rfc3339(tz, at)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EmailList {
    emails: Vec<EmailView>,
    #[serde(flatten)]
    page: PageInfo,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailQuery {
    status: Option<String>,
}

/// `GET /api/v1/admin/emails?status=pending|sending|sent|failed&page=&per_page=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/emails",
    tag = "front desk",
    description = "The outbox, newest first. Role: front desk or admin.",
    params(("status" = Option<String>, Query, pattern = "^(pending|sending|sent|failed)$", description = "pending, sending, sent or failed"), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "1-based page (default 1)"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Items a page (default 50)")),
    responses((status = 200, description = "Done", body = EmailList), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn list(
    state: web::Data<AppState>,
    _: FrontDesk,
    query: web::Query<EmailQuery>,
    page: Page,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    if let Some(status) = &query.status
        && !["pending", "sending", "sent", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "must be pending, sending, sent or failed",
        ));
    }
    let status = query.status;
    let (emails, total) = state
        .read(move |conn| outbox::list(conn, status.as_deref(), page.offset(), page.per_page))
        .await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Ok().json(EmailList {
        emails: emails.into_iter().map(|e| email_view(tz, e)).collect(),
        page: page.of(total),
    }))
}

/// `POST /api/v1/admin/emails/{id}/retry`: a failed message gets a fresh set of attempts.
#[utoipa::path(
    post,
    path = "/api/v1/admin/emails/{id}/retry",
    tag = "front desk",
    description = "Queues a failed message again with fresh attempts; a sent or queued one is a 409, as is one whose text was purged or that tells of a booking now over or no longer active. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = EmailView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"))
)]
pub async fn retry(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    let email = state.write(move |conn| retry_failed(conn, id, now)).await?;
    Ok(HttpResponse::Ok().json(email_view(state.settings.clinic.timezone, email)))
}

/// Queues a failed message again with fresh attempts; a sent or queued one is a
/// conflict. Call inside a transaction.
pub(crate) fn retry_failed(
    conn: &mut crate::db::DbConnection,
    id: i64,
    now: chrono::NaiveDateTime,
) -> ApiResult<Email> {
    let email = outbox::by_id(conn, id)?.ok_or(ApiError::NotFound("email"))?;
    if email.status == "failed" && email.body_text.is_empty() {
        return Err(ApiError::Conflict(
            "the message's text was removed after the retention period; it cannot be sent again"
                .into(),
        ));
    }
    // A message about a booking's time misleads once the booking is over or no longer
    // active (a confirmation or reminder of a cancelled appointment); a cancellation
    // notice stays true.
    if email.status == "failed"
        && email.kind != "cancelled"
        && let Some(booking_id) = email.booking_id
        && let Some(found) = crate::store::bookings::details(conn, booking_id)?
        && (!found.booking.status.is_active() || found.booking.starts_at <= now)
    {
        return Err(ApiError::Conflict(
            "the booking has changed since the message was written; sending it now would mislead"
                .into(),
        ));
    }
    match email.status.as_str() {
        "failed" => {
            outbox::retry(conn, id, now)?;
            outbox::by_id(conn, id)?.ok_or(ApiError::NotFound("email"))
        }
        "sent" => Err(ApiError::Conflict("the message was already sent".into())),
        _ => Err(ApiError::Conflict(
            "the message is still queued; the worker is trying it".into(),
        )),
    }
}
