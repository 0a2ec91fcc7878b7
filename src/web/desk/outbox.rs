//! The emails for the desk (`/desk/emails`): failed ones first, with retry; what waits
//! and what was sent, a page at a time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Allowed, Form, front_desk, local_stamp, posted, render};
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::store::outbox;
use crate::web::booking::see_other;
use crate::web::pages::{failure, refusal_in_words};
use crate::web::session::Desk;

const PER_PAGE: i64 = 50;
const STATUSES: [(&str, &str); 4] = [
    ("failed", "Failed"),
    ("pending", "Waiting"),
    ("sending", "Sending"),
    ("sent", "Sent"),
];

#[derive(Debug, Deserialize)]
pub struct EmailsQuery {
    status: Option<String>,
    page: Option<i64>,
    /// Set after a retry, to say it was done.
    retried: Option<String>,
}

/// `GET /desk/emails?status=&page=`
pub async fn emails(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<EmailsQuery>,
) -> HttpResponse {
    let desk = match front_desk(&state, &req).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let query = query.into_inner();
    let notice = query
        .retried
        .is_some()
        .then(|| "The message is queued again; it will be sent shortly.".to_string());
    emails_page(&state, &desk, query, StatusCode::OK, notice, None).await
}

async fn emails_page(
    state: &AppState,
    desk: &Desk,
    query: EmailsQuery,
    status: StatusCode,
    notice: Option<String>,
    refusal: Option<String>,
) -> HttpResponse {
    let shown = query
        .status
        .filter(|s| STATUSES.iter().any(|(value, _)| value == s))
        .unwrap_or_else(|| "failed".to_string());
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let asked = shown.clone();
    let found = state
        .read(move |conn| outbox::list(conn, Some(&asked), (page - 1) * PER_PAGE, PER_PAGE))
        .await;
    let (emails, total) = match found {
        Ok(found) => found,
        Err(error) => return failure(state, error),
    };
    let local = |at| local_stamp(state, at);
    let emails: Vec<Value> = emails
        .into_iter()
        .map(|e| {
            context! {
                id => e.id,
                booking_id => e.booking_id,
                kind => e.kind,
                recipient => e.recipient,
                subject => e.subject,
                attempts => e.attempts,
                last_error => e.last_error,
                created => local(e.created_at),
                sent => e.sent_at.map(local),
                next_attempt => local(e.next_attempt_at),
            }
        })
        .collect();
    render(
        state,
        desk,
        status,
        "desk_emails.html",
        context! {
            statuses => STATUSES.iter().map(|(value, label)| context! { value => *value, label => *label }).collect::<Vec<_>>(),
            shown,
            emails,
            total,
            page,
            previous => (page > 1).then_some(page - 1),
            next => (page * PER_PAGE < total).then_some(page + 1),
            notice,
            refusal,
        },
    )
}

/// `POST /desk/emails/{id}/retry`: a failed message gets a fresh set of attempts.
pub async fn retry_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<Form>,
) -> HttpResponse {
    let desk = match posted(&state, &req, &form, Allowed::FrontDesk).await {
        Ok(desk) => desk,
        Err(page) => return page,
    };
    let id = id.into_inner();
    let now = state.clock.now();
    let retried = state
        .write(move |conn| crate::api::emails::retry_failed(conn, id, now))
        .await;
    match retried {
        Ok(_) => see_other("/desk/emails?status=failed&retried=1"),
        Err(error @ (ApiError::Conflict(_) | ApiError::Validation(_))) => {
            let words = match refusal_in_words(error) {
                Ok(words) => words,
                Err(other) => return failure(&state, other),
            };
            let query = EmailsQuery {
                status: Some("failed".into()),
                page: None,
                retried: None,
            };
            emails_page(
                &state,
                &desk,
                query,
                StatusCode::CONFLICT,
                None,
                Some(words),
            )
            .await
        }
        Err(error) => failure(&state, error),
    }
}
