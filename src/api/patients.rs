//! The patient's rights over their data: everything stored about one patient as one JSON
//! document (GDPR Articles 15 and 20), and erasure (Article 17). Admin-only, and audited.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::identity::Admin;
use super::problem::{ApiError, ApiResult};
use super::time::local_rfc3339;
use super::views::{AdminBookingView, HistoryEntryView, admin_view, history_view};
use crate::app::AppState;
use crate::booking::erasure::{self, Reason};
use crate::store::audit::{self, Actor, Change};
use crate::store::bookings::{self, BookingFilter};
use crate::store::{outbox, patients};

/// The most bookings one export holds: far above any one patient's.
const MAX_BOOKINGS: i64 = 10_000;

#[derive(Serialize, utoipa::ToSchema)]
struct PatientRecord {
    id: i64,
    name: String,
    email: String,
    phone: String,
    date_of_birth: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ExportedEmail {
    id: i64,
    booking_id: Option<i64>,
    kind: String,
    recipient: String,
    subject: String,
    status: String,
    created_at: String,
    sent_at: Option<String>,
    /// The message as written (empty once purged after the retention period).
    body_text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BookingHistory {
    booking_id: i64,
    history: Vec<HistoryEntryView>,
}

/// Everything stored about one patient.
#[derive(Serialize, utoipa::ToSchema)]
struct PatientExport {
    exported_at: String,
    patient: PatientRecord,
    /// Every booking, cancelled ones too, with its screening answers, notes, consent and
    /// the name and phone its form gave.
    bookings: Vec<AdminBookingView>,
    /// Every message written to the patient or about their bookings.
    emails: Vec<ExportedEmail>,
    /// The audit trail of each booking.
    audit: Vec<BookingHistory>,
}

/// `GET /api/v1/admin/patients/{id}/export`
#[utoipa::path(
    get,
    path = "/api/v1/admin/patients/{id}/export",
    tag = "patients",
    description = "Everything stored about the patient (GDPR Articles 15 and 20) as one JSON document: the record, every booking with its screening answers, every email, and the bookings' audit trail. The export itself is audited. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = PatientExport), (status = 404, description = "Not found"))
)]
pub async fn export(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tz = state.settings.clinic.timezone;
    let now = state.clock.now();
    let (patient, found, emails, trails) = state
        .write(move |conn| {
            // An erased patient has nothing personal left to export.
            let patient = patients::by_id(conn, id)?
                .filter(|p| p.erased_at.is_none())
                .ok_or(ApiError::NotFound("patient"))?;
            let filter = BookingFilter {
                patient_id: Some(id),
                ..BookingFilter::default()
            };
            let (found, _) = bookings::list(conn, &filter, 0, MAX_BOOKINGS)?;
            let ids: Vec<i64> = found.iter().map(|d| d.booking.id).collect();
            let emails = outbox::to_patient(conn, &patient.email, &ids)?;
            let mut trails = Vec::with_capacity(ids.len());
            for booking_id in &ids {
                trails.push((*booking_id, audit::history(conn, "booking", *booking_id)?));
            }
            audit::record(
                conn,
                Actor::Staff(admin.id),
                Change {
                    entity: "patient",
                    entity_id: id,
                    action: "exported",
                    before_status: None,
                    after_status: None,
                    details: None,
                },
                now,
            )?;
            Ok::<_, ApiError>((patient, found, emails, trails))
        })
        .await?;
    let at = |t| local_rfc3339(tz, t);
    Ok(HttpResponse::Ok().json(PatientExport {
        exported_at: at(now),
        patient: PatientRecord {
            id: patient.id,
            name: patient.name,
            email: patient.email,
            phone: patient.phone,
            date_of_birth: patient.date_of_birth.map(|d| d.to_string()),
            created_at: at(patient.created_at),
            updated_at: at(patient.updated_at),
        },
        bookings: found.iter().map(|d| admin_view(tz, d)).collect(),
        emails: emails
            .into_iter()
            .map(|e| ExportedEmail {
                id: e.id,
                booking_id: e.booking_id,
                kind: e.kind,
                recipient: e.recipient,
                subject: e.subject,
                status: e.status,
                created_at: at(e.created_at),
                sent_at: e.sent_at.map(at),
                body_text: e.body_text,
            })
            .collect(),
        audit: trails
            .into_iter()
            .map(|(booking_id, entries)| BookingHistory {
                booking_id,
                history: history_view(tz, booking_id, entries).history,
            })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErasureView {
    patient_id: i64,
    erased_at: String,
    /// The bookings still ahead that were cancelled first (their patient was emailed).
    cancelled_booking_ids: Vec<i64>,
}

/// `DELETE /api/v1/admin/patients/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/admin/patients/{id}",
    tag = "patients",
    description = "Erases the patient (GDPR Article 17): their bookings still ahead are cancelled first, with the usual emails; then their name, email, phone and date of birth, what their bookings' forms said, their screening answers and notes, the messages to or about them (those still waiting as soon as they are sent) and remembered answers are replaced by a tombstone, and their manage links stop working. Bookings, statistics and the audit trail stay, without personal data. Announced as `patient.erased`; audited. An erased or unknown patient is a 404. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 200, description = "Done", body = ErasureView), (status = 404, description = "Not found"))
)]
pub async fn erase(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    let settings = state.settings.clone();
    let erased = state
        .write(move |conn| {
            erasure::erase_patient(
                conn,
                &settings,
                id,
                Actor::Staff(admin.id),
                Reason::Request,
                now,
            )?
            .ok_or(ApiError::NotFound("patient"))
        })
        .await?;
    Ok(HttpResponse::Ok().json(ErasureView {
        patient_id: erased.patient_id,
        erased_at: local_rfc3339(state.settings.clinic.timezone, now),
        cancelled_booking_ids: erased.cancelled,
    }))
}
