//! Dermatologists' calendar subscriptions: issuing and revoking a feed's secret URL, and
//! the feed itself, `GET /calendar/{token}.ics`, which Google Calendar, Outlook and Apple
//! Calendar poll. The token is shown once; only its hash is kept.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::identity::StaffUser;
use super::problem::{ApiError, ApiResult};
use super::time::local_rfc3339;
use crate::app::AppState;
use crate::store::audit::{self, Change};
use crate::store::{calendar_feeds, dermatologists};

#[derive(Serialize, utoipa::ToSchema)]
struct FeedIssued {
    dermatologist_id: i64,
    /// The subscription URL, shown this once: whoever holds it reads the calendar.
    url: String,
    created_at: String,
}

/// The audit entry of a feed issued or revoked: who can read the calendar changed.
fn feed_change(dermatologist_id: i64, action: &'static str) -> Change<'static> {
    Change {
        entity: "calendar_feed",
        entity_id: dermatologist_id,
        action,
        before_status: None,
        after_status: None,
        details: None,
    }
}

/// The front desk and admins manage every feed; a dermatologist, their own.
fn may_manage(user: &StaffUser, dermatologist_id: i64) -> ApiResult<()> {
    if user.role.runs_the_clinic() || user.dermatologist_id == Some(dermatologist_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// `POST`: a new subscription URL; the previous one stops working at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/dermatologists/{id}/calendar-feed",
    tag = "calendar feeds",
    description = "Issues the dermatologist's calendar subscription URL (`/calendar/{token}.ics`), shown once; any earlier URL stops working. Role: front desk, admin, or that dermatologist.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 201, description = "Created", body = FeedIssued), (status = 403, description = "Your role may not do this"), (status = 404, description = "Not found"))
)]
pub async fn issue(
    state: web::Data<AppState>,
    user: StaffUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    may_manage(&user, id)?;
    let token = crate::tokens::new_token();
    let hash = crate::tokens::token_hash(&token);
    let now = state.clock.now();
    let actor = user.actor();
    state
        .write(move |conn| {
            dermatologists::by_id(conn, id)?.ok_or(ApiError::NotFound("dermatologist"))?;
            calendar_feeds::replace(conn, id, &hash, now)?;
            audit::record(conn, actor, feed_change(id, "issued"), now)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    let base = state.settings.clinic.public_base_url.trim_end_matches('/');
    Ok(HttpResponse::Created().json(FeedIssued {
        dermatologist_id: id,
        url: format!("{base}/calendar/{token}.ics"),
        created_at: local_rfc3339(state.settings.clinic.timezone, now),
    }))
}

/// `DELETE`: the subscription URL stops working.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/dermatologists/{id}/calendar-feed",
    tag = "calendar feeds",
    description = "Revokes the dermatologist's calendar subscription URL (204 also when there was none). Role: front desk, admin, or that dermatologist.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 204, description = "Done; no body"), (status = 403, description = "Your role may not do this"), (status = 404, description = "Not found"))
)]
pub async fn revoke(
    state: web::Data<AppState>,
    user: StaffUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    may_manage(&user, id)?;
    let now = state.clock.now();
    let actor = user.actor();
    state
        .write(move |conn| {
            dermatologists::by_id(conn, id)?.ok_or(ApiError::NotFound("dermatologist"))?;
            if calendar_feeds::revoke(conn, id)? {
                audit::record(conn, actor, feed_change(id, "revoked"), now)?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    // Idempotent: afterwards no URL opens this calendar, whether one did before or not.
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /calendar/{token}.ics`
#[utoipa::path(
    get,
    path = "/calendar/{token}.ics",
    tag = "calendar feeds",
    description = "A dermatologist's appointments from 30 days back to the end of the slot horizon, as an iCalendar subscription (`text/calendar`). Treatments only, unless `calendar.show_patient_names` is on. An unknown or revoked token is a 404.",
    params(("token" = String, Path, description = "The secret of the subscription URL")),
    responses((status = 200, description = "The calendar", content_type = "text/calendar", body = String), (status = 404, description = "Not found"))
)]
pub async fn feed(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let token = token.into_inner();
    let settings = state.settings.clone();
    let now = state.clock.now();
    let calendar = state
        .read(move |conn| crate::booking::feed::of_token(conn, &settings, &token, now))
        .await?
        .ok_or(ApiError::NotFound("calendar feed"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .body(calendar))
}
