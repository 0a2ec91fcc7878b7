//! Slots for the front desk: list, open one by hand, block or reopen, and generate.

use actix_web::{HttpResponse, web};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::extract::ValidJson;
use super::identity::FrontDesk;
use super::problem::{ApiResult, dermatologist_in_body};
use super::time::{local_rfc3339, parse_date_range, parse_instant};
use crate::app::AppState;
use crate::domain::local_time::local_days_utc;
use crate::scheduling;
use crate::store::slots::{self as store, ClaimedSlot, SyncOutcome};

/// The longest range one generation request may cover.
const MAX_GENERATION_DAYS: i64 = 366;
/// The longest range one slot listing may cover.
const MAX_LISTING_DAYS: i64 = 31;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConflictView {
    slot_id: i64,
    dermatologist_id: i64,
    booking_id: i64,
    starts_at: String,
    ends_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GenerationView {
    added: usize,
    removed: usize,
    conflicts: Vec<ConflictView>,
}

impl GenerationView {
    pub fn new(tz: Tz, outcome: SyncOutcome) -> Self {
        GenerationView {
            added: outcome.added,
            removed: outcome.removed,
            conflicts: outcome
                .conflicts
                .into_iter()
                .map(|c| ConflictView {
                    slot_id: c.slot_id,
                    dermatologist_id: c.dermatologist_id,
                    booking_id: c.booking_id,
                    starts_at: local_rfc3339(tz, c.starts_at),
                    ends_at: local_rfc3339(tz, c.ends_at),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SlotView {
    pub id: i64,
    pub dermatologist_id: i64,
    pub starts_at: String,
    pub ends_at: String,
    /// `open`, `blocked`, or `booked` when a booking holds it.
    pub status: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<i64>,
}

pub fn slot_view(tz: Tz, (slot, booking_id): ClaimedSlot) -> SlotView {
    SlotView {
        id: slot.id,
        dermatologist_id: slot.dermatologist_id,
        starts_at: local_rfc3339(tz, slot.starts_at),
        ends_at: local_rfc3339(tz, slot.ends_at),
        status: if booking_id.is_some() {
            "booked".into()
        } else {
            slot.status
        },
        source: slot.source,
        booking_id,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SlotQuery {
    dermatologist: Option<i64>,
    from: String,
    to: String,
}

/// `GET /api/v1/admin/slots?dermatologist=&from=DATE&to=DATE` (local dates, inclusive).
#[utoipa::path(
    get,
    path = "/api/v1/admin/slots",
    tag = "schedules",
    description = "Slots of local dates `from` to `to` (at most 31 days). Role: front desk or admin.",
    params(("dermatologist" = Option<i64>, Query, description = "Only this dermatologist's"), ("from" = String, Query, format = Date, description = "First local date"), ("to" = String, Query, format = Date, description = "Last local date")),
    responses((status = 200, description = "Done", body = SlotList), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn list(
    state: web::Data<AppState>,
    _: FrontDesk,
    query: web::Query<SlotQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let (from, to) = parse_date_range(&query.from, &query.to, MAX_LISTING_DAYS)?;
    let tz = state.settings.clinic.timezone;
    let (start, end) = local_days_utc(tz, from, to);
    let found = state
        .read(move |conn| store::between(conn, query.dermatologist, start, end))
        .await?;
    let slots: Vec<SlotView> = found.into_iter().map(|s| slot_view(tz, s)).collect();
    Ok(HttpResponse::Ok().json(SlotList { slots }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SlotList {
    slots: Vec<SlotView>,
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSlotBody {
    dermatologist_id: i64,
    #[schema(format = DateTime)]
    starts_at: String,
    #[schema(format = DateTime)]
    ends_at: String,
}

/// `POST /api/v1/admin/slots`: opens an extra slot; one overlapping another is a 409.
#[utoipa::path(
    post,
    path = "/api/v1/admin/slots",
    tag = "schedules",
    description = "Opens an extra slot by hand. Role: front desk or admin.",
    request_body = NewSlotBody,
    responses((status = 201, description = "Created", body = SlotView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    _: FrontDesk,
    body: ValidJson<NewSlotBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let starts_at = parse_instant("starts_at", &body.starts_at)?;
    let ends_at = parse_instant("ends_at", &body.ends_at)?;
    let dermatologist_id = body.dermatologist_id;
    let tz = state.settings.clinic.timezone;
    let created = state
        .writing(move |conn| {
            scheduling::open_slot(conn, dermatologist_id, starts_at, ends_at)
                .map_err(dermatologist_in_body)
        })
        .await?;
    Ok(HttpResponse::Created().json(slot_view(tz, (created, None))))
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotPatch {
    status: SlotStatus,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum SlotStatus {
    Open,
    Blocked,
}

/// `PATCH /api/v1/admin/slots/{id}` `{status: open|blocked}`; a booked slot is a 409.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/slots/{id}",
    tag = "schedules",
    description = "Blocks or reopens a slot; a booked one is a 409. Role: front desk or admin.",
    params(("id" = i64, Path, description = "The record's id")),
    request_body = SlotPatch,
    responses((status = 200, description = "Done", body = SlotView), (status = 404, description = "Not found"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn update(
    state: web::Data<AppState>,
    _: FrontDesk,
    id: web::Path<i64>,
    body: ValidJson<SlotPatch>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let open = matches!(body.0.status, SlotStatus::Open);
    let tz = state.settings.clinic.timezone;
    let updated = state
        .writing(move |conn| scheduling::set_slot_open(conn, id, open))
        .await?;
    Ok(HttpResponse::Ok().json(slot_view(tz, updated)))
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    #[schema(format = Date)]
    from: String,
    #[schema(format = Date)]
    to: String,
    #[serde(default)]
    dermatologist_id: Option<i64>,
}

/// `POST /api/v1/admin/slots/generate {from, to, dermatologist_id?}` (local dates).
#[utoipa::path(
    post,
    path = "/api/v1/admin/slots/generate",
    tag = "schedules",
    description = "Generates slots from the weekly rules for a range of local dates (up to a year). Role: front desk or admin.",
    request_body = GenerateBody,
    responses((status = 200, description = "Done", body = GenerationView), (status = 404, description = "Not found"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn generate_range(
    state: web::Data<AppState>,
    _: FrontDesk,
    body: ValidJson<GenerateBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let (from, to) = parse_date_range(&body.from, &body.to, MAX_GENERATION_DAYS)?;
    let tz = state.settings.clinic.timezone;
    let dermatologist_id = body.dermatologist_id;
    let now = state.clock.now();
    // One dermatologist a turn of the writers' queue: a year for the whole clinic must
    // not hold every booking behind it.
    let ids = match dermatologist_id {
        Some(id) => vec![id],
        None => state
            .read(|conn| crate::store::dermatologists::list(conn, false, None))
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    let mut total = SyncOutcome::default();
    for id in ids {
        let outcome = state
            .writing(move |conn| {
                scheduling::generate_range(conn, tz, Some(id), (from, to), now)
                    .map_err(dermatologist_in_body)
            })
            .await?;
        total.add(outcome);
    }
    Ok(HttpResponse::Ok().json(GenerationView::new(tz, total)))
}
