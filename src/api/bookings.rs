//! `POST /api/v1/bookings`: patients book online. Also the booking form and the views
//! of a booking that the manage link and the front desk share.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DurationRound, NaiveDate};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use super::extract::ValidJson;
use super::idempotency;
use super::problem::{ApiError, ApiResult};
use super::time::{parse_birth_date, parse_instant};
use super::views::booked_view;
use crate::app::AppState;
use crate::booking::{self, Channel, NewBookingRequest, PatientDetails};
use crate::domain::catalogue::normalise_email;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientBody {
    #[serde(deserialize_with = "super::extract::trimmed")]
    #[validate(
        length(min = 1, max = 200, message = "must be 1 to 200 characters"),
        custom(function = "one_line")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    name: String,
    #[serde(deserialize_with = "super::extract::trimmed")]
    #[validate(
        email(message = "must be an email address"),
        custom(function = "reachable_domain")
    )]
    #[schema(format = Email)]
    email: String,
    #[serde(deserialize_with = "super::extract::trimmed")]
    #[validate(custom(function = "plausible_phone"))]
    #[schema(pattern = r"^\+?(?:[ .()-]*[0-9]){7,15}[ .()-]*$")]
    phone: String,
    #[serde(default)]
    #[schema(format = Date)]
    date_of_birth: Option<String>,
}

/// Not an address under `.invalid` (RFC 2606), which reaches no one: erased patients'
/// records carry such addresses, and a booking must not land on one.
fn reachable_domain(value: &str) -> Result<(), ValidationError> {
    if value.trim().to_lowercase().ends_with(".invalid") {
        return Err(ValidationError::new("unreachable")
            .with_message("must be an address that can receive email".into()));
    }
    Ok(())
}

/// No control characters: a name goes into email headers, calendar invitations and the
/// desk's screens, where a line break could start a line of its own.
fn one_line(value: &str) -> Result<(), ValidationError> {
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new("control")
            .with_message("must not contain line breaks or other control characters".into()));
    }
    Ok(())
}

/// Free text that may run over several lines: line breaks, and no other control
/// characters.
fn paragraphs(value: &str) -> Result<(), ValidationError> {
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        return Err(ValidationError::new("control")
            .with_message("may hold line breaks but no other control characters".into()));
    }
    Ok(())
}

/// 7 to 15 digits (E.164's limit), optionally written with +, spaces, dots, dashes and
/// brackets, as people write numbers.
fn plausible_phone(phone: &str) -> Result<(), ValidationError> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    let plus_first = phone.find('+').is_none_or(|i| i == 0) && phone.matches('+').count() <= 1;
    if allowed && plus_first && (7..=15).contains(&digits) {
        Ok(())
    } else {
        Err(ValidationError::new("phone")
            .with_message("must be a phone number of 7 to 15 digits, e.g. +44 117 496 0000".into()))
    }
}

/// The booking form, online and at the front desk alike.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "treatment": "initial-consultation",
    "dermatologist_id": 1,
    "starts_at": "2030-06-03T09:00:00+01:00",
    "patient": {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 7700 900123",
        "date_of_birth": "1985-03-14"
    },
    "screening_answers": {"pregnancy": false},
    "notes": "Dry patches on both hands since the winter."
}))]
pub struct BookingBody {
    #[validate(length(min = 1, max = 100, message = "must name a treatment"))]
    #[schema(min_length = 1, max_length = 100)]
    treatment: String,
    dermatologist_id: i64,
    #[schema(format = DateTime)]
    starts_at: String,
    #[validate(nested)]
    patient: PatientBody,
    /// `{question_id: true|false}`; a map in key order, so the fingerprint is stable.
    #[serde(default)]
    screening_answers: BTreeMap<String, bool>,
    #[serde(default)]
    #[validate(
        length(max = 2000, message = "must be at most 2000 characters"),
        custom(function = "paragraphs")
    )]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x09\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    notes: Option<String>,
    #[serde(default)]
    #[validate(range(min = 1, max = 20, message = "must be 1 to 20"))]
    #[schema(minimum = 1, maximum = 20)]
    sessions: Option<u32>,
    /// The patient agrees to the processing of their screening answers (health data);
    /// recorded with the booking. The booking page requires it.
    #[serde(default)]
    pub health_data_consent: bool,
    /// Front desk only: book sooner than the minimum notice.
    #[serde(default)]
    pub waive_notice: bool,
    /// Front desk only: book a treatment that needs a consultation without one.
    #[serde(default)]
    pub waive_consultation: bool,
}

impl BookingBody {
    /// The checks `validator` cannot express, then the request the booking rules take.
    pub fn into_request(self, today: NaiveDate) -> ApiResult<NewBookingRequest> {
        let starts_at = parse_instant("starts_at", &self.starts_at)?;
        let date_of_birth = match self.patient.date_of_birth.as_deref() {
            None | Some("") => None,
            Some(value) => Some(parse_birth_date("patient.date_of_birth", value, today)?),
        };
        let notes = self
            .notes
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        Ok(NewBookingRequest {
            treatment: self.treatment,
            dermatologist_id: self.dermatologist_id,
            starts_at,
            patient: PatientDetails {
                name: self.patient.name,
                email: normalise_email(&self.patient.email),
                phone: self.patient.phone,
                date_of_birth,
            },
            screening_answers: self.screening_answers.into_iter().collect(),
            notes,
            sessions: self.sessions,
            health_data_consent: self.health_data_consent,
        })
    }
}

/// Counts a booking operation's outcome by what its answer says, and passes it on.
pub fn observed(
    operation: &'static str,
    channel: &'static str,
    result: ApiResult<HttpResponse>,
) -> ApiResult<HttpResponse> {
    use actix_web::ResponseError;
    let status = match &result {
        // A replayed answer was counted when it was first given.
        Ok(response) if response.headers().contains_key("idempotent-replayed") => return result,
        Ok(response) => response.status(),
        Err(error) => error.status_code(),
    };
    let outcome = match status.as_u16() {
        200..=299 => "done",
        409 => "conflict",
        400..=499 => "refused",
        _ => "failed",
    };
    crate::instruments::booking_operation(operation, channel, outcome);
    result
}

/// Counts an online booking attempt against its address's hourly allowance, in the
/// database, so the limit holds across instances; attempts that fail count too, or a
/// script could probe for free.
async fn count_booking_attempt(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    let limits = &state.settings.rate_limit;
    let Some(ip) = state.client.of(req).filter(|_| limits.enabled) else {
        return Ok(());
    };
    let window = state
        .clock
        .now()
        .duration_trunc(chrono::Duration::hours(1))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let key = format!("bookings:{ip}");
    let hits = state
        .write(move |conn| crate::store::rate::hit(conn, &key, window))
        .await?;
    if hits > i32::try_from(limits.bookings_per_hour).unwrap_or(i32::MAX) {
        let next_window = window + chrono::Duration::hours(1);
        let wait = (next_window - state.clock.now()).num_seconds();
        return Err(ApiError::TooManyRequests(u64::try_from(wait).unwrap_or(1)));
    }
    Ok(())
}

/// `POST /api/v1/bookings`
#[utoipa::path(
    post,
    path = "/api/v1/bookings",
    tag = "booking",
    description = "Books an appointment, or a course with `sessions`. Rules about the time come first; rules about who the patient is refuse in one wording (a 422 on `patient`). A taken or blocked time is a 409.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible characters; a retry with the same key and body replays the first answer (with `Idempotent-Replayed: true`); the same key with another body is a 422"), ("Challenge-Response" = Option<String>, Header, description = "Where the clinic configured a challenge (`challenge.verify_url`): the widget's answer, checked with the verifier; missing or refused, a 422 on `challenge`. A replay under an Idempotency-Key needs none")),
    request_body = BookingBody,
    responses((status = 201, description = "Created", body = super::views::BookedView), (status = 410, description = "A replay of an `Idempotency-Key` whose booking's patient has since been erased"), (status = 409, description = "Conflicts with the current state (taken, already changed, still referenced)"), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"), (status = 503, description = "The challenge verifier or the database cannot be reached; try again"))
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ValidJson<BookingBody>,
) -> ApiResult<HttpResponse> {
    let result = book_online(&state, &req, body.0).await;
    observed("book", "online", result)
}

async fn book_online(
    state: &AppState,
    req: &HttpRequest,
    body: BookingBody,
) -> ApiResult<HttpResponse> {
    let key = idempotency::key_of(req)?;
    let challenge = req
        .headers()
        .get(super::challenge::HEADER)
        .and_then(|v| v.to_str().ok());
    let (status, body, replayed) =
        submit_online(state, req, body, key, "bookings", challenge).await?;
    Ok(idempotency::answer(status, body, replayed))
}

/// An online booking, as the API and the booking page both take it: the form checked,
/// the challenge's answer verified (unless the key's booking is already made), the
/// attempt counted against its address, and the booking made once per `key`.
/// Answers the status, the `BookedView` JSON, and whether it was replayed. Keys live in
/// `scope`: the page's are not the API's, so a key seen in a form cannot be replayed
/// through the API to read the booking's answer.
pub async fn submit_online(
    state: &AppState,
    req: &HttpRequest,
    body: BookingBody,
    key: Option<String>,
    scope: &str,
    challenge: Option<&str>,
) -> ApiResult<(u16, String, bool)> {
    for (field, waived) in [
        ("waive_notice", body.waive_notice),
        ("waive_consultation", body.waive_consultation),
    ] {
        if waived {
            return Err(ApiError::invalid(
                field,
                "only the front desk may waive a rule",
            ));
        }
    }
    body.validate()
        .map_err(|e| ApiError::Validation(super::extract::field_errors(&e)))?;
    let hash = idempotency::fingerprint(&body)?;
    if state.challenges.enabled() && !already_booked(state, &key, scope, &hash).await? {
        // The answer belongs to this request: the same answer on another body, key or
        // scope is refused, so one solved challenge books once.
        let binding = format!("{scope}\n{}\n{hash}", key.as_deref().unwrap_or_default());
        let client = state.client.ip_of(req);
        state.challenges.pass(challenge, &binding, client).await?;
    }
    count_booking_attempt(state, req).await?;
    let settings = state.settings.clone();
    let now = state.clock.now();
    let today = local_today(&settings, now);
    let request = body.into_request(today)?;
    idempotency::remembered(state, key, scope.into(), hash, move |conn| {
        let booked = booking::book(conn, &settings, request, Channel::Online, now)?;
        Ok((StatusCode::CREATED, booked_view(&settings, &booked)))
    })
    .await
}

/// Whether `key` already made this booking: its replay needs no new challenge answer (a
/// widget's answer is good once, and the back button sends it again).
async fn already_booked(
    state: &AppState,
    key: &Option<String>,
    scope: &str,
    hash: &str,
) -> ApiResult<bool> {
    let Some(key) = key.clone() else {
        return Ok(false);
    };
    let (scope, hash, now) = (scope.to_string(), hash.to_string(), state.clock.now());
    state
        .read(move |conn| crate::store::idempotency::answered(conn, &scope, &key, &hash, now))
        .await
}

pub fn local_today(settings: &crate::config::Settings, now: chrono::NaiveDateTime) -> NaiveDate {
    now.and_utc()
        .with_timezone(&settings.clinic.timezone)
        .date_naive()
}

/// Arbitrary input against the booking form and the time parsers: every outcome is a
/// value or a 4xx, never a panic and never a 500.
#[cfg(test)]
mod proptests {
    use actix_web::ResponseError;
    use proptest::prelude::*;
    use validator::Validate;

    use super::*;
    use crate::api::extract::parse_json;
    use crate::api::time::{parse_clock, parse_date, parse_date_range};

    fn client_error(result: Result<(), ApiError>) -> Result<(), TestCaseError> {
        if let Err(error) = result {
            let status = error.error_response().status();
            prop_assert!(status.is_client_error(), "{error:?} is a {status}");
        }
        Ok(())
    }

    fn through_the_form(bytes: &[u8]) -> Result<(), ApiError> {
        let body: BookingBody = parse_json(bytes)?;
        body.validate()
            .map_err(|e| ApiError::Validation(crate::api::extract::field_errors(&e)))?;
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        body.into_request(today).map(|_| ())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_are_a_booking_or_a_client_error(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            client_error(through_the_form(&bytes))?;
        }

        #[test]
        fn any_strings_in_the_form_are_a_booking_or_a_client_error(
            name in any::<String>(),
            email in any::<String>(),
            phone in any::<String>(),
            starts_at in any::<String>(),
            born in any::<String>(),
            notes in any::<String>(),
            sessions in any::<i64>(),
        ) {
            let body = serde_json::json!({
                "treatment": "laser-treatment",
                "dermatologist_id": 1,
                "starts_at": starts_at,
                "patient": {"name": name, "email": email, "phone": phone, "date_of_birth": born},
                "notes": notes,
                "sessions": sessions,
                "screening_answers": {"pregnancy": false},
            });
            client_error(through_the_form(body.to_string().as_bytes()))?;
        }

        #[test]
        fn the_time_parsers_answer_every_string(text in any::<String>(), other in "[0-9T:+Z-]{0,30}") {
            client_error(parse_date("date", &text).map(|_| ()))?;
            client_error(parse_instant("starts_at", &text).map(|_| ()))?;
            client_error(parse_instant("starts_at", &other).map(|_| ()))?;
            client_error(parse_clock("start", &text).map(|_| ()))?;
            client_error(parse_date_range(&text, &other, 31).map(|_| ()))?;
            let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
            client_error(parse_birth_date("date_of_birth", &other, today).map(|_| ()))?;
        }
    }
}
