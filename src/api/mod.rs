//! HTTP handlers, one file per resource, and the route table. Handlers parse, call
//! `store` (and later `domain`), and map the result; they hold no SQL and no rules.

pub mod admin_bookings;
pub mod agenda;
pub mod auth;
pub mod availability;
pub mod bookings;
pub mod cache;
pub mod client;
pub mod dermatologists;
pub mod emails;
pub mod extract;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod problem;
pub mod schedules;
pub mod slots;
pub mod staff;
pub mod time;
pub mod treatments;
pub mod views;

use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig};
use actix_web::web;

use client::ClientAddress;

pub type RateLimit = GovernorConfig<ClientAddress, NoOpMiddleware>;

/// The per-address limits (in memory, per instance): sign-in, and the public endpoints
/// together. New bookings are also counted per address in the database
/// (`bookings::create`), which holds across instances.
#[derive(Clone)]
pub struct RateLimits {
    pub login: RateLimit,
    pub public: RateLimit,
}

/// Every path is a `web::resource`, so a method it does not serve is a 405, not a 404.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &RateLimits) {
    let public = || Governor::new(&limits.public);
    cfg.service(web::resource("/health").get(health::health))
        .service(web::resource("/ready").get(health::ready))
        .service(web::resource("/metrics").get(metrics::metrics))
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/auth/login")
                        .wrap(Governor::new(&limits.login))
                        .post(auth::login),
                )
                .service(web::resource("/auth/logout").post(auth::logout))
                .service(web::resource("/auth/me").get(auth::me))
                .service(web::resource("/auth/password").post(staff::change_own_password))
                .service(web::resource("/treatments").get(treatments::list_public))
                .service(web::resource("/treatments/{slug}").get(treatments::get_public))
                .service(web::resource("/dermatologists").get(dermatologists::list_public))
                .service(
                    web::resource("/availability")
                        .wrap(public())
                        .get(availability::search),
                )
                .service(
                    web::resource("/bookings")
                        .wrap(public())
                        .post(bookings::create),
                )
                .service(
                    web::resource("/manage/{token}")
                        .wrap(public())
                        .get(manage::show),
                )
                .service(
                    web::resource("/manage/{token}/cancel")
                        .wrap(public())
                        .post(manage::cancel),
                )
                .service(
                    web::resource("/manage/{token}/reschedule")
                        .wrap(public())
                        .post(manage::reschedule),
                )
                .service(
                    web::scope("/admin")
                        .service(
                            web::resource("/treatments")
                                .get(treatments::list_admin)
                                .post(treatments::create),
                        )
                        .service(
                            web::resource("/treatments/{id}")
                                .get(treatments::get_admin)
                                .patch(treatments::update)
                                .delete(treatments::delete),
                        )
                        .service(
                            web::resource("/dermatologists")
                                .get(dermatologists::list_admin)
                                .post(dermatologists::create),
                        )
                        .service(
                            web::resource("/dermatologists/{id}")
                                .get(dermatologists::get_admin)
                                .patch(dermatologists::update)
                                .delete(dermatologists::delete),
                        )
                        .service(
                            web::resource("/dermatologists/{id}/treatments")
                                .get(dermatologists::get_treatments)
                                .put(dermatologists::set_treatments),
                        )
                        .service(
                            web::resource("/dermatologists/{id}/schedule")
                                .get(schedules::get_schedule)
                                .put(schedules::put_schedule),
                        )
                        .service(
                            web::resource("/dermatologists/{id}/time-off")
                                .get(schedules::list_time_off)
                                .post(schedules::add_time_off),
                        )
                        .service(
                            web::resource("/dermatologists/{id}/time-off/{time_off_id}")
                                .delete(schedules::delete_time_off),
                        )
                        .service(web::resource("/slots").get(slots::list).post(slots::create))
                        .service(web::resource("/slots/generate").post(slots::generate_range))
                        .service(web::resource("/slots/{id}").patch(slots::update))
                        .service(web::resource("/agenda").get(agenda::day))
                        .service(
                            web::resource("/bookings")
                                .get(admin_bookings::list)
                                .post(admin_bookings::create),
                        )
                        .service(web::resource("/bookings/{id}").get(admin_bookings::get))
                        .service(
                            web::resource("/bookings/{id}/history").get(admin_bookings::history),
                        )
                        .service(
                            web::resource("/bookings/{id}/confirm").post(admin_bookings::confirm),
                        )
                        .service(
                            web::resource("/bookings/{id}/cancel").post(admin_bookings::cancel),
                        )
                        .service(
                            web::resource("/bookings/{id}/reschedule")
                                .post(admin_bookings::reschedule),
                        )
                        .service(
                            web::resource("/bookings/{id}/complete").post(admin_bookings::complete),
                        )
                        .service(
                            web::resource("/bookings/{id}/no-show").post(admin_bookings::no_show),
                        )
                        .service(
                            web::resource("/bookings/{id}/manage-link")
                                .post(admin_bookings::reissue_manage_link),
                        )
                        .service(web::resource("/emails").get(emails::list))
                        .service(web::resource("/emails/{id}/retry").post(emails::retry))
                        .service(web::resource("/staff").get(staff::list).post(staff::create))
                        .service(web::resource("/staff/{id}").patch(staff::update))
                        .service(web::resource("/staff/{id}/password").post(staff::reset_password))
                        .service(web::resource("/staff/{id}/sessions").delete(staff::end_sessions)),
                ),
        );
}
