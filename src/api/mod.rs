//! HTTP handlers, one file per resource, and the route table. Handlers parse, call
//! `store` (and later `domain`), and map the result; they hold no SQL and no rules.

pub mod admin_bookings;
pub mod agenda;
pub mod api_keys;
pub mod auth;
pub mod availability;
pub mod bookings;
pub mod calendar_feeds;
pub mod challenge;
pub mod client;
pub mod dermatologists;
pub mod emails;
pub mod extract;
pub mod fhir;
pub mod gzip;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod openapi;
pub mod parts;
pub mod patients;
pub mod problem;
pub mod schedules;
pub mod slots;
pub mod staff;
pub mod time;
pub mod treatments;
pub mod views;
pub mod webhooks;

use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig};
use actix_web::middleware::Condition;
use actix_web::web;

use client::ClientAddress;
use openapi::Shared;

pub type RateLimit = GovernorConfig<ClientAddress, NoOpMiddleware>;

/// The per-address limits (in memory, per instance): sign-in, and the public endpoints
/// together. New bookings are also counted per address in the database
/// (`bookings::create`), which holds across instances.
#[derive(Clone)]
pub struct RateLimits {
    pub login: RateLimit,
    pub public: RateLimit,
    /// `rate_limit.enabled`. Off, no limiter runs at all: a permissive one would still
    /// count every request, and time each one past its quota.
    pub enabled: bool,
}

impl RateLimits {
    /// The limiter of `limit`, where limits are on.
    pub fn guard(&self, limit: &RateLimit) -> Condition<Governor<ClientAddress, NoOpMiddleware>> {
        Condition::new(self.enabled, Governor::new(limit))
    }
}

/// The JSON API, one line a path: each registers a `web::resource` (so a method it does
/// not serve is a 405, not a 404), optionally behind a rate limit, and documents each of
/// its methods from the handler's `#[utoipa::path]`. A JSON route cannot exist
/// undocumented, and `ROUTED` lets a test hold the document to the router.
macro_rules! json_api {
    ($( $path:literal $([$limit:ident])? => { $( $method:ident : $handler:path ),+ $(,)? } )*) => {
        /// The OpenAPI document of every route below.
        #[derive(utoipa::OpenApi)]
        #[openapi(
            info(
                title = "dermabook",
                description = "Booking backend for dermatology and aesthetic clinics. Errors are RFC 9457 `application/problem+json` documents. Times are RFC 3339 with an offset; dates are the clinic's local dates.",
            ),
            paths($( $( $handler ),+ ),*),
            modifiers(&Shared),
        )]
        pub struct JsonApi;

        /// Every (method, path) the table routes.
        pub const ROUTED: &[(&str, &str)] = &[ $( $( (stringify!($method), $path) ),+ ),* ];

        fn json_routes(cfg: &mut web::ServiceConfig, limits: &RateLimits) {
            let _ = limits;
            $(
                {
                    let resource = web::resource($path) $( .route(web::$method().to($handler)) )+;
                    $( let resource = resource.wrap(limits.guard(&limits.$limit)); )?
                    cfg.service(resource);
                }
            )*
        }
    };
}

json_api! {
    "/api/v1/auth/login" [login] => { post: auth::login }
    "/api/v1/auth/logout" => { post: auth::logout }
    "/api/v1/auth/me" => { get: auth::me }
    "/api/v1/auth/password" => { post: staff::change_own_password }
    "/api/v1/availability" [public] => { get: availability::search }
    "/api/v1/availability/days" [public] => { get: availability::search_by_day }
    "/api/v1/treatments" => { get: treatments::list_public }
    "/api/v1/treatments/{slug}" => { get: treatments::get_public }
    "/api/v1/dermatologists" => { get: dermatologists::list_public }
    "/api/v1/bookings" [public] => { post: bookings::create }
    "/api/v1/manage/{token}" [public] => { get: manage::show }
    "/api/v1/manage/{token}/cancel" [public] => { post: manage::cancel }
    "/api/v1/manage/{token}/reschedule" [public] => { post: manage::reschedule }
    "/api/v1/admin/treatments" => { get: treatments::list_admin, post: treatments::create }
    "/api/v1/admin/treatments/{id}" => {
        get: treatments::get_admin, patch: treatments::update, delete: treatments::delete
    }
    "/api/v1/admin/dermatologists" => {
        get: dermatologists::list_admin, post: dermatologists::create
    }
    "/api/v1/admin/dermatologists/{id}" => {
        get: dermatologists::get_admin, patch: dermatologists::update, delete: dermatologists::delete
    }
    "/api/v1/admin/dermatologists/{id}/treatments" => {
        get: dermatologists::get_treatments, put: dermatologists::set_treatments
    }
    "/api/v1/admin/dermatologists/{id}/schedule" => {
        get: schedules::get_schedule, put: schedules::put_schedule
    }
    "/api/v1/admin/dermatologists/{id}/time-off" => {
        get: schedules::list_time_off, post: schedules::add_time_off
    }
    "/api/v1/admin/dermatologists/{id}/calendar-feed" => {
        post: calendar_feeds::issue, delete: calendar_feeds::revoke
    }
    "/calendar/{token}.ics" [public] => { get: calendar_feeds::feed }
    "/api/v1/admin/dermatologists/{id}/time-off/{time_off_id}" => {
        delete: schedules::delete_time_off
    }
    "/api/v1/admin/slots" => { get: slots::list, post: slots::create }
    "/api/v1/admin/slots/generate" => { post: slots::generate_range }
    "/api/v1/admin/slots/{id}" => { patch: slots::update }
    "/api/v1/admin/agenda" => { get: agenda::day }
    "/api/v1/admin/bookings" => { get: admin_bookings::list, post: admin_bookings::create }
    "/api/v1/admin/bookings/{id}" => { get: admin_bookings::get }
    "/api/v1/admin/bookings/{id}/history" => { get: admin_bookings::history }
    "/api/v1/admin/bookings/{id}/confirm" => { post: admin_bookings::confirm }
    "/api/v1/admin/bookings/{id}/cancel" => { post: admin_bookings::cancel }
    "/api/v1/admin/bookings/{id}/reschedule" => { post: admin_bookings::reschedule }
    "/api/v1/admin/bookings/{id}/complete" => { post: admin_bookings::complete }
    "/api/v1/admin/bookings/{id}/no-show" => { post: admin_bookings::no_show }
    "/api/v1/admin/bookings/{id}/manage-link" => { post: admin_bookings::reissue_manage_link }
    "/api/v1/admin/emails" => { get: emails::list }
    "/api/v1/admin/emails/{id}/retry" => { post: emails::retry }
    "/api/v1/admin/staff" => { get: staff::list, post: staff::create }
    "/api/v1/admin/api-keys" => { get: api_keys::list, post: api_keys::create }
    "/api/v1/admin/patients/{id}" => { delete: patients::erase }
    "/api/v1/admin/patients/{id}/export" => { get: patients::export }
    "/api/v1/admin/api-keys/{id}" => { delete: api_keys::revoke }
    "/fhir/Schedule" => { get: fhir::schedules }
    "/fhir/Slot" => { get: fhir::slots_search }
    "/fhir/Appointment/{id}" => { get: fhir::appointment }
    "/api/v1/admin/webhooks" => { get: webhooks::list, post: webhooks::create }
    "/api/v1/admin/webhooks/{id}" => {
        get: webhooks::get, patch: webhooks::update, delete: webhooks::delete
    }
    "/api/v1/admin/webhooks/{id}/deliveries" => { get: webhooks::deliveries }
    "/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/replay" => { post: webhooks::replay }
    "/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/skip" => { post: webhooks::skip }
    "/api/v1/admin/staff/{id}" => { patch: staff::update }
    "/api/v1/admin/staff/{id}/password" => { post: staff::reset_password }
    "/api/v1/admin/staff/{id}/sessions" => { delete: staff::end_sessions }
}

/// The document, as served at `GET /api/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    JsonApi::openapi()
}

/// Operations: health, readiness and metrics (outside the document), the document and
/// its reference page, and the JSON API.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &RateLimits) {
    cfg.service(web::resource("/health").get(health::health))
        .service(web::resource("/ready").get(health::ready))
        .service(web::resource("/metrics").get(metrics::metrics))
        .service(web::resource("/api/openapi.json").get(openapi_json));
    json_routes(cfg, limits);
    // After the API: the router tries routes in order, and matching this one's pattern
    // (a regular expression) was a share of every search's time.
    cfg.service(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", document()),
    );
}

async fn openapi_json() -> actix_web::HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document().to_json().unwrap_or_default());
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_document_holds_exactly_the_routes_the_router_serves() {
        let document = super::document();
        let documented: BTreeSet<(String, String)> = document
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("get", item.get.is_some()),
                    ("put", item.put.is_some()),
                    ("post", item.post.is_some()),
                    ("delete", item.delete.is_some()),
                    ("patch", item.patch.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(method, _)| (method.to_string(), path.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = super::ROUTED
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert_eq!(documented, routed);
    }
}
