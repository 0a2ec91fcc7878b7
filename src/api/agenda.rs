//! `GET /api/v1/admin/agenda?date=DATE[&dermatologist=ID]`: one local day per
//! dermatologist, its slots and who is booked when. A dermatologist's login sees only
//! their own day.

use actix_web::{HttpResponse, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::identity::StaffUser;
use super::problem::{ApiError, ApiResult};
use super::slots::{SlotView, slot_view};
use super::time::parse_date;
use super::views::{AdminBookingView, admin_view};
use crate::app::AppState;
use crate::domain::booking::BookingStatus;
use crate::domain::local_time::day_start_utc;
use crate::domain::roles::Role;
use crate::store::bookings::{self, BookingFilter};
use crate::store::{dermatologists, slots};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AgendaQuery {
    date: String,
    dermatologist: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayView {
    id: i64,
    name: String,
    slots: Vec<SlotView>,
    bookings: Vec<AdminBookingView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgendaView {
    date: String,
    timezone: &'static str,
    dermatologists: Vec<DayView>,
}

/// The most bookings one dermatologist can have in a day is bounded by their slots; this
/// is far above it.
const MAX_BOOKINGS_A_DAY: i64 = 1000;

#[utoipa::path(
    get,
    path = "/api/v1/admin/agenda",
    tag = "front desk",
    description = "One local day per dermatologist: slots and bookings. Role: any staff; a dermatologist sees only their own day (another's is a 403).",
    params(("date" = String, Query, format = Date, description = "The local date"), ("dermatologist" = Option<i64>, Query, description = "Only this dermatologist")),
    responses((status = 200, description = "Done", body = AgendaView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn day(
    state: web::Data<AppState>,
    user: StaffUser,
    query: web::Query<AgendaQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let date = parse_date("date", &query.date)?;
    Ok(HttpResponse::Ok().json(agenda(&state, &user, date, query.dermatologist).await?))
}

/// One local day of `dermatologist`, or of everyone; a dermatologist's login may see only
/// their own (another's is `Forbidden`). Shared by the API and the desk's page.
pub async fn agenda(
    state: &AppState,
    user: &StaffUser,
    date: chrono::NaiveDate,
    dermatologist: Option<i64>,
) -> ApiResult<AgendaView> {
    let query = AgendaQuery {
        date: date.to_string(),
        dermatologist,
    };
    let only = match user.role {
        Role::Dermatologist => {
            let own = user.dermatologist_id.ok_or(ApiError::Forbidden)?;
            if query.dermatologist.is_some_and(|id| id != own) {
                return Err(ApiError::Forbidden);
            }
            Some(own)
        }
        Role::Admin | Role::FrontDesk => query.dermatologist,
    };
    let tz = state.settings.clinic.timezone;
    let (start, end) = (
        day_start_utc(tz, date),
        day_start_utc(tz, date + Duration::days(1)),
    );
    let (people, day_slots, day_bookings) = state
        .read(move |conn| {
            let people = match only {
                Some(id) => vec![
                    dermatologists::by_id(conn, id)?.ok_or(ApiError::NotFound("dermatologist"))?,
                ],
                None => dermatologists::list(conn, false, None)?,
            };
            let day_slots = slots::between(conn, only, start, end)?;
            let filter = BookingFilter {
                starts_between: Some((start, end)),
                dermatologist_id: only,
                statuses: vec![
                    BookingStatus::PendingReview,
                    BookingStatus::Confirmed,
                    BookingStatus::Completed,
                    BookingStatus::NoShow,
                ],
                ..BookingFilter::default()
            };
            let (day_bookings, _) = bookings::list(conn, &filter, 0, MAX_BOOKINGS_A_DAY)?;
            Ok::<_, ApiError>((people, day_slots, day_bookings))
        })
        .await?;
    let days: Vec<DayView> = people
        .into_iter()
        .map(|d| DayView {
            id: d.id,
            name: d.name,
            slots: day_slots
                .iter()
                .filter(|(s, _)| s.dermatologist_id == d.id)
                .map(|s| slot_view(tz, s.clone()))
                .collect(),
            bookings: day_bookings
                .iter()
                .filter(|b| b.booking.dermatologist_id == d.id)
                .map(|b| admin_view(tz, b))
                .collect(),
        })
        .collect();
    Ok(AgendaView {
        date: date.to_string(),
        timezone: tz.name(),
        dermatologists: days,
    })
}
