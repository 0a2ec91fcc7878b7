//! A new booking: one appointment, or a course of sessions booked all or nothing.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::slots::{claim, covering_slots};
use super::{
    BookingError, Happened, PatientRule, SessionsProblem, announce, check_start, notify, performer,
};
use crate::config::Settings;
use crate::db::{self, DbConnection, Exclusive};
use crate::domain::availability::openings;
use crate::domain::booking::{
    COURSE_TOLERANCE_DAYS, nearest_opening, new_reference, screening_outcome,
};
use crate::domain::local_time::same_local_time_after;
use crate::email::compose::Event;
use crate::store::audit::{self, Actor, Change};
use crate::store::bookings::{self, BookingDetails, NewBooking};
use crate::store::patients::{self, PatientForm};
use crate::store::treatments::Treatment;
use crate::store::{dermatologists, patient_bookings};
use crate::store::{slots, treatments};

/// The patient as the form gives them; the email already normalised.
#[derive(Debug, Clone)]
pub struct PatientDetails {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub date_of_birth: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct NewBookingRequest {
    pub treatment: String,
    pub dermatologist_id: i64,
    pub starts_at: NaiveDateTime,
    pub patient: PatientDetails,
    pub screening_answers: HashMap<String, bool>,
    pub notes: Option<String>,
    /// Books a course of this many sessions; `None` books one appointment.
    pub sessions: Option<u32>,
    /// The patient agreed to the processing of their screening answers (recorded with
    /// the booking, at its time).
    pub health_data_consent: bool,
}

/// Who is booking, and what the front desk chose to waive (recorded in the audit log).
#[derive(Debug, Clone, Copy)]
pub enum Channel {
    Online,
    FrontDesk {
        /// Who books: a staff member, or an integration's key.
        by: Actor,
        waive_notice: bool,
        waive_consultation: bool,
    },
}

impl Channel {
    fn source(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::FrontDesk { .. } => "front_desk",
        }
    }

    fn actor(self) -> Actor {
        match self {
            Channel::Online => Actor::Patient,
            Channel::FrontDesk { by, .. } => by,
        }
    }

    fn waives_notice(self) -> bool {
        matches!(
            self,
            Channel::FrontDesk {
                waive_notice: true,
                ..
            }
        )
    }

    fn waives_consultation(self) -> bool {
        matches!(
            self,
            Channel::FrontDesk {
                waive_consultation: true,
                ..
            }
        )
    }
}

/// What was booked: the sessions in order (one for a single appointment).
#[derive(Debug, Clone)]
pub struct Booked {
    pub sessions: Vec<BookingDetails>,
    pub course_id: Option<i64>,
}

/// Books an appointment or a course. Every rule is checked before anything is written,
/// and the first failure is the answer; the caller's transaction makes it all or nothing.
/// The rules that do not depend on who the patient is (treatment, dermatologist,
/// screening, sessions, the window and every session's slots) come first, so that an
/// answer about a time never depends on whose email was typed.
pub fn book(
    conn: &mut DbConnection,
    settings: &Settings,
    request: NewBookingRequest,
    channel: Channel,
    now: NaiveDateTime,
) -> Result<Booked, BookingError> {
    let dermatologist_id = request.dermatologist_id;
    let (treatment, found) =
        dermatologists::treatment_with_performer(conn, &request.treatment, dermatologist_id)?
            .filter(|(treatment, _)| treatment.active)
            .ok_or(BookingError::UnknownTreatment)?;
    let dermatologist = performer(found, &treatment)?;
    let status = screening_outcome(&treatment.questions(), &request.screening_answers)
        .map_err(BookingError::Screening)?;
    let sessions = course_length(&treatment, request.sessions)?;
    check_start(settings, request.starts_at, now, channel.waives_notice())?;
    let plan = plan_sessions(
        conn,
        settings,
        &treatment,
        dermatologist_id,
        request.starts_at,
        sessions,
    )?;

    let given = request.patient;
    let form = PatientForm {
        name: given.name.clone(),
        email: given.email.clone(),
        phone: given.phone.clone(),
        date_of_birth: given.date_of_birth,
        updated_at: now,
    };
    let (patient, new_patient) = match channel {
        Channel::Online => {
            let found = patients::find_or_create(conn, form)?;
            (found.patient, found.created)
        }
        Channel::FrontDesk { .. } => (patients::upsert(conn, form)?, false),
    };
    let phone_key = phone_key(&given.phone);
    if matches!(channel, Channel::Online) {
        check_patient_limits(conn, settings, patient.id, new_patient, &phone_key, now)?;
    }
    // A patient this booking created has had no consultation.
    if treatment.requires_consultation
        && !channel.waives_consultation()
        && (new_patient
            || !patient_bookings::has_consultation(conn, patient.id, request.starts_at)?)
    {
        return Err(patient_rule(settings, PatientRule::ConsultationFirst));
    }
    let course_id = if sessions > 1 {
        Some(bookings::insert_course(
            conn,
            patient.id,
            treatment.id,
            dermatologist_id,
            i32::try_from(sessions).unwrap_or(i32::MAX),
            now,
        )?)
    } else {
        None
    };

    let duration = Duration::minutes(i64::from(treatment.duration_minutes));
    let screening_answers = serde_json::to_string(&request.screening_answers)
        .map_err(|e| BookingError::Internal(e.into()))?;
    let mut booked = Vec::with_capacity(plan.len());
    for (starts_at, slot_ids) in plan {
        let reference = new_reference(&mut rand::rng());
        let manage_nonce = crate::tokens::new_nonce();
        let token = crate::tokens::manage_token(
            &settings.auth.manage_link_secret,
            &reference,
            &manage_nonce,
        );
        let booking = bookings::insert(
            conn,
            &NewBooking {
                reference,
                patient_id: patient.id,
                dermatologist_id,
                treatment_id: treatment.id,
                course_id,
                starts_at,
                ends_at: starts_at + duration,
                status,
                source: channel.source().into(),
                screening_answers: screening_answers.clone(),
                notes: request.notes.clone(),
                manage_token_hash: crate::tokens::token_hash(&token),
                created_at: now,
                updated_at: now,
                patient_name: given.name.clone(),
                patient_phone: given.phone.clone(),
                phone_key: phone_key.clone(),
                manage_nonce,
                health_data_consent_at: request.health_data_consent.then_some(now),
            },
        )?;
        claim(conn, booking.id, &slot_ids)?;
        audit::record(
            conn,
            channel.actor(),
            Change {
                entity: "booking",
                entity_id: booking.id,
                action: "booked",
                before_status: None,
                after_status: Some(status.as_str()),
                details: Some(serde_json::json!({
                    "source": channel.source(),
                    "starts_at": starts_at.and_utc().to_rfc3339(),
                    "dermatologist_id": dermatologist_id,
                    "course_id": course_id,
                    "waived_notice": channel.waives_notice(),
                    "waived_consultation": channel.waives_consultation()
                        && treatment.requires_consultation,
                })),
            },
            now,
        )?;
        booked.push(booking);
    }
    let mut sessions_booked = Vec::with_capacity(booked.len());
    for booking in booked {
        let details = bookings::inserted_details(
            conn,
            booking,
            patient.clone(),
            treatment.clone(),
            dermatologist.clone(),
        )?;
        notify(
            conn,
            settings,
            &details,
            Event::Booked,
            channel.actor(),
            now,
        )?;
        announce(conn, &details, Happened::Created, now)?;
        sessions_booked.push(details);
    }
    Ok(Booked {
        sessions: sessions_booked,
        course_id,
    })
}

/// The starts a course of `sessions` from `first` would get if booked now: what the
/// booking page shows before the patient confirms. Nothing is written or held; the
/// booking itself plans again, and may refuse if the times went meanwhile.
pub fn proposed_sessions(
    conn: &mut DbConnection,
    settings: &Settings,
    treatment_slug: &str,
    dermatologist_id: i64,
    first: NaiveDateTime,
    sessions: u32,
) -> Result<Vec<NaiveDateTime>, BookingError> {
    let treatment =
        treatments::active_by_slug(conn, treatment_slug)?.ok_or(BookingError::UnknownTreatment)?;
    Ok(plan_sessions(
        conn,
        settings,
        &treatment,
        dermatologist_id,
        first,
        sessions,
    )?
    .into_iter()
    .map(|(starts_at, _)| starts_at)
    .collect())
}

/// Where every session goes and which slots it takes: the first at the asked start,
/// each later one at the same wall-clock time every interval, or the nearest opening to
/// it. Nothing is written; a slot planned for one session is not offered to the next.
fn plan_sessions(
    conn: &mut DbConnection,
    settings: &Settings,
    treatment: &Treatment,
    dermatologist_id: i64,
    first: NaiveDateTime,
    sessions: u32,
) -> Result<Vec<(NaiveDateTime, Vec<i64>)>, BookingError> {
    let duration = Duration::minutes(i64::from(treatment.duration_minutes));
    let needed = duration + Duration::minutes(i64::from(treatment.buffer_minutes));
    let tz = settings.clinic.timezone;
    let interval = i64::from(treatment.session_interval_days.unwrap_or(0));
    let mut plan: Vec<(NaiveDateTime, Vec<i64>)> = Vec::with_capacity(sessions as usize);
    for index in 0..sessions as usize {
        let starts_at = if index == 0 {
            first
        } else {
            let target = same_local_time_after(tz, first, interval * index as i64);
            let tolerance = Duration::days(COURSE_TOLERANCE_DAYS);
            let planned: Vec<i64> = plan.iter().flat_map(|(_, ids)| ids.clone()).collect();
            let free: Vec<_> = slots::claimable(
                conn,
                dermatologist_id,
                target - tolerance,
                target + tolerance + needed,
                None,
            )?
            .into_iter()
            .filter(|slot| !planned.contains(&slot.id))
            .collect();
            let candidates = openings(
                &free,
                duration,
                needed - duration,
                target - tolerance,
                target + tolerance + Duration::seconds(1),
            );
            nearest_opening(&candidates, target, tolerance)
                .map(|o| o.starts_at)
                .ok_or_else(|| BookingError::NoCourseRoom {
                    session: index + 1,
                    near: target.and_utc().with_timezone(&tz).date_naive(),
                    tolerance_days: COURSE_TOLERANCE_DAYS,
                })?
        };
        let slot_ids = covering_slots(conn, dermatologist_id, starts_at, needed, None)?;
        plan.push((starts_at, slot_ids));
    }
    Ok(plan)
}

/// Refuses an online booking when the patient's email, or the phone given, already holds
/// as many live appointments as the clinic allows online (a course counts once). The
/// count and the booking that follows are one step for each patient and phone: on
/// PostgreSQL two bookings at once would otherwise both count below the limit. A patient
/// this booking created (`new_patient`) holds none, and no other booking can be made for
/// them before this one commits: theirs is neither locked nor counted.
fn check_patient_limits(
    conn: &mut DbConnection,
    settings: &Settings,
    patient_id: i64,
    new_patient: bool,
    phone_key: &str,
    now: NaiveDateTime,
) -> Result<(), BookingError> {
    // Patient before phone, always: two bookings never wait on each other in a cycle.
    if !new_patient {
        db::hold(conn, Exclusive::PatientBookings(patient_id))?;
    }
    let digits = phone_key.bytes().fold(0i64, |n, d| {
        n.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
    });
    db::hold(conn, Exclusive::PhoneBookings(digits))?;
    let limits = &settings.booking;
    let patients_live = if new_patient {
        0
    } else {
        patient_bookings::live_for_patient(conn, patient_id, now)?
    };
    if patients_live >= limits.max_live_bookings_per_email as usize {
        return Err(patient_rule(settings, PatientRule::EmailLimit));
    }
    if patient_bookings::live_for_phone(conn, phone_key, now)?
        >= limits.max_live_bookings_per_phone as usize
    {
        return Err(patient_rule(settings, PatientRule::PhoneLimit));
    }
    Ok(())
}

pub(super) fn patient_rule(settings: &Settings, rule: PatientRule) -> BookingError {
    BookingError::PatientRule {
        rule,
        clinic_phone: settings.clinic.phone.clone(),
    }
}

/// What a phone number is counted by: its digits, however it was written.
fn phone_key(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// How many sessions to book: one unless asked, and then within the treatment's range.
fn course_length(treatment: &Treatment, asked: Option<u32>) -> Result<u32, BookingError> {
    let Some(asked) = asked else { return Ok(1) };
    let (min, max) = (
        u32::try_from(treatment.sessions_min).unwrap_or(1),
        u32::try_from(treatment.sessions_max).unwrap_or(1),
    );
    if asked == 1 {
        return Ok(1);
    }
    if !(min..=max).contains(&asked) {
        let treatment = treatment.name.clone();
        return Err(BookingError::Sessions(if max <= 1 {
            SessionsProblem::OneAtATime { treatment }
        } else {
            SessionsProblem::OutOfRange {
                treatment,
                min,
                max,
            }
        }));
    }
    if treatment.session_interval_days.is_none_or(|d| d < 1) {
        return Err(BookingError::Sessions(SessionsProblem::NoInterval {
            treatment: treatment.name.clone(),
        }));
    }
    Ok(asked)
}
