//! Rendering pages: the templates (the clinic's folder first, then the built-in ones),
//! the clinic's details every page shows, and the page a failure shows.

use std::path::PathBuf;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::config::Settings;

/// The built-in templates, each compiled in from `templates/web/`.
macro_rules! built_in {
    ($($name:literal),+ $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/web/", $name)))),+]
    };
}

const BUILT_IN: [(&str, &str); 19] = built_in![
    "base.html",
    "menu.html",
    "times.html",
    "details.html",
    "review.html",
    "manage.html",
    "cancel.html",
    "reschedule.html",
    "message.html",
    "privacy.html",
    "desk_base.html",
    "desk_sign_in.html",
    "desk_day.html",
    "desk_booking.html",
    "desk_book.html",
    "desk_calendar.html",
    "desk_treatments.html",
    "desk_treatment.html",
    "desk_emails.html",
];

/// The page templates, loaded once.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new(settings: &Settings) -> Pages {
        let dir = Some(settings.web.templates_dir.trim())
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_loader(move |name| {
            if let Some(dir) = &dir
                && !name.contains("..")
                && let Ok(source) = std::fs::read_to_string(dir.join(name))
            {
                return Ok(Some(source));
            }
            Ok(BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| source.to_string()))
        });
        Pages { env }
    }

    /// `template` rendered with `values` and the clinic's details, as a page.
    pub fn render(
        &self,
        settings: &Settings,
        status: StatusCode,
        template: &str,
        values: Value,
    ) -> HttpResponse {
        let clinic = context! {
            name => settings.clinic.name.clone(),
            phone => settings.clinic.phone.clone(),
            privacy_notice_url => settings.clinic.privacy_notice_url.clone(),
        };
        let rendered = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context! { clinic, ..values }));
        match rendered {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(error) => {
                tracing::error!(
                    template,
                    error = format!("{error:#}"),
                    "a page failed to render"
                );
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("Sorry, this page could not be shown. Please call the clinic.")
            }
        }
    }
}

/// A value for a template from anything serialisable.
pub(super) fn serialized<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// A refusal a page can show beside its form: a rule's words (each invalid field's
/// message, or the conflict), or the error back when it is not one.
pub(super) fn refusal_in_words(error: ApiError) -> Result<String, ApiError> {
    match error {
        ApiError::Validation(failed) => Ok(failed
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join(" ")),
        ApiError::Conflict(message) => Ok(message),
        other => Err(other),
    }
}

/// A form sent again after its patient's data was erased: the answer it was first given
/// is gone with the data, so the form starts over.
pub fn erased_replay(state: &AppState) -> HttpResponse {
    failure(
        state,
        ApiError::Conflict(
            "this form's booking belonged to a patient whose data has been erased; start a new booking".into(),
        ),
    )
}

/// A page for what went wrong, in words for a patient.
pub fn failure(state: &AppState, error: ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let status = error.status_code();
    let (heading, text) = match &error {
        ApiError::NotFound(_) => (
            "Not found",
            "We could not find that page. The link may be mistyped.".to_string(),
        ),
        ApiError::TooManyRequests(_) => (
            "Please wait a moment",
            "Too many attempts came from your connection. Please try again in a few minutes."
                .to_string(),
        ),
        ApiError::Http(StatusCode::GONE, _) => (
            "This link has expired",
            format!("Please call the clinic on {}.", state.settings.clinic.phone),
        ),
        ApiError::Conflict(message) => ("This cannot be done now", message.clone()),
        ApiError::Forbidden => (
            "Not allowed",
            "Your role may not open this page or do this.".to_string(),
        ),
        ApiError::Unauthorized => ("Please sign in", "Your session has ended.".to_string()),
        ApiError::Validation(errors) => (
            "Please check your request",
            errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => {
            if status.is_server_error() {
                tracing::error!(error = format!("{error:#}"), "a page failed");
            }
            (
                "Something went wrong",
                format!(
                    "Please try again, or call the clinic on {}.",
                    state.settings.clinic.phone
                ),
            )
        }
    };
    state.pages.render(
        &state.settings,
        status,
        "message.html",
        context! { heading, text },
    )
}

pub async fn privacy(state: web::Data<AppState>) -> HttpResponse {
    state
        .pages
        .render(&state.settings, StatusCode::OK, "privacy.html", context! {})
}
