//! The pages: for patients the treatment menu, the booking flow and the manage page
//! (cancel and reschedule); for the front desk (`/desk`) sign-in, the day with the review
//! queue and its slots, booking for a phone patient, a booking's page, the calendar
//! (weekly hours, time off, who performs what), the treatments, and the emails. Pages are
//! server-rendered from minijinja templates (`templates/web/`, compiled in, overridable
//! by `web.templates_dir`), with one stylesheet. No JavaScript is needed. Every rule goes
//! through the same booking services as the API; a page never writes the database itself.

mod booking;
mod desk;
mod manage;
mod pages;
mod session;

use actix_web::web;

pub use pages::Pages;

/// The stylesheet, compiled in.
const SITE_CSS: &str = include_str!("../../assets/site.css");

/// Registers the pages, under the API's limits: the public routes' per-address limit,
/// and the sign-in limit for the desk's sign-in.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &crate::api::RateLimits) {
    let limited = || limits.guard(&limits.public);
    cfg.route("/", web::get().to(booking::menu))
        .route("/privacy", web::get().to(pages::privacy))
        .route("/assets/site.css", web::get().to(stylesheet))
        .service(
            web::resource("/book/{treatment}")
                .wrap(limited())
                .route(web::get().to(booking::times)),
        )
        .route("/book/{treatment}/details", web::get().to(booking::details))
        .service(
            web::resource("/book/{treatment}/review")
                .wrap(limited())
                .route(web::post().to(booking::review)),
        )
        .service(
            web::resource("/book/{treatment}/change")
                .wrap(limited())
                .route(web::post().to(booking::change)),
        )
        .service(
            web::resource("/book/{treatment}/confirm")
                .wrap(limited())
                .route(web::post().to(booking::confirm)),
        )
        .service(
            web::resource("/manage/{token}")
                .wrap(limited())
                .route(web::get().to(manage::show)),
        )
        .service(
            web::resource("/manage/{token}/calendar.ics")
                .wrap(limited())
                .route(web::get().to(manage::calendar)),
        )
        .service(
            web::resource("/manage/{token}/reschedule")
                .wrap(limited())
                .route(web::get().to(manage::ask_reschedule))
                .route(web::post().to(manage::reschedule)),
        )
        .service(
            web::resource("/manage/{token}/cancel")
                .wrap(limited())
                .route(web::get().to(manage::ask_cancel))
                .route(web::post().to(manage::cancel)),
        )
        .route("/desk", web::get().to(desk::day))
        .service(
            web::resource("/desk/sign-in")
                .route(web::get().to(desk::sign_in_form))
                .route(
                    web::post()
                        .to(desk::sign_in_submit)
                        .wrap(limits.guard(&limits.login)),
                ),
        )
        .route("/desk/sign-out", web::post().to(desk::sign_out))
        .service(
            web::resource("/desk/book")
                .route(web::get().to(desk::phone_form))
                .route(web::post().to(desk::phone_submit)),
        )
        .route("/desk/bookings/{id}", web::get().to(desk::booking_page))
        .route("/desk/bookings/{id}/confirm", web::post().to(desk::confirm))
        .route("/desk/bookings/{id}/cancel", web::post().to(desk::cancel))
        .route(
            "/desk/bookings/{id}/complete",
            web::post().to(desk::complete),
        )
        .route("/desk/bookings/{id}/no-show", web::post().to(desk::no_show))
        .route(
            "/desk/bookings/{id}/reschedule",
            web::post().to(desk::reschedule),
        )
        .route("/desk/slots", web::post().to(desk::open_extra_slot))
        .route("/desk/slots/{id}/block", web::post().to(desk::block_slot))
        .route("/desk/slots/{id}/open", web::post().to(desk::reopen_slot))
        .route("/desk/calendar", web::get().to(desk::calendar))
        .route(
            "/desk/calendar/{id}/hours",
            web::post().to(desk::save_hours),
        )
        .route(
            "/desk/calendar/{id}/time-off",
            web::post().to(desk::add_time_off),
        )
        .route(
            "/desk/calendar/{id}/time-off/{time_off_id}/remove",
            web::post().to(desk::remove_time_off),
        )
        .route(
            "/desk/calendar/{id}/treatments",
            web::post().to(desk::set_performed),
        )
        .service(
            web::resource("/desk/treatments")
                .route(web::get().to(desk::treatments))
                .route(web::post().to(desk::add_treatment)),
        )
        .route("/desk/treatments/new", web::get().to(desk::new_treatment))
        .service(
            web::resource("/desk/treatments/{id}")
                .route(web::get().to(desk::treatment))
                .route(web::post().to(desk::change_treatment)),
        )
        .route("/desk/emails", web::get().to(desk::emails))
        .route("/desk/emails/{id}/retry", web::post().to(desk::retry_email));
}

/// A form posted from another site (a page that submits it from its visitors' browsers,
/// spending their per-address allowances) is refused. Browsers say where a request came
/// from in `Sec-Fetch-Site`, or else in `Origin`; a client that sends neither is not a
/// browser acting for someone else.
pub fn cross_site(
    state: &crate::app::AppState,
    req: &actix_web::HttpRequest,
) -> Option<actix_web::HttpResponse> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let refused = match (header("sec-fetch-site"), header("origin")) {
        (Some(site), _) => !matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            let host = header("host").unwrap_or_default();
            let own = [format!("http://{host}"), format!("https://{host}")];
            !own.iter().any(|o| o == origin)
                && origin != state.settings.clinic.public_base_url.trim_end_matches('/')
        }
        (None, None) => false,
    };
    refused.then(|| pages::failure(state, crate::api::problem::ApiError::Forbidden))
}

async fn stylesheet() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SITE_CSS)
}
