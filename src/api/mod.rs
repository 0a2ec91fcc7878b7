//! HTTP handlers, one file per resource, and the route table. Handlers parse, call
//! `store` (and later `domain`), and map the result; they hold no SQL and no rules.

pub mod auth;
pub mod availability;
pub mod dermatologists;
pub mod extract;
pub mod health;
pub mod problem;
pub mod schedules;
pub mod slots;
pub mod staff;
pub mod time;
pub mod treatments;

use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig, PeerIpKeyExtractor};
use actix_web::web;

pub type LoginRateLimit = GovernorConfig<PeerIpKeyExtractor, NoOpMiddleware>;

pub fn routes(cfg: &mut web::ServiceConfig, login_limit: &LoginRateLimit) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/auth/login")
                        .wrap(Governor::new(login_limit))
                        .post(auth::login),
                )
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/auth/me", web::get().to(auth::me))
                .route("/treatments", web::get().to(treatments::list_public))
                .route("/treatments/{slug}", web::get().to(treatments::get_public))
                .route(
                    "/dermatologists",
                    web::get().to(dermatologists::list_public),
                )
                .route("/availability", web::get().to(availability::search))
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
                        .route(
                            "/dermatologists/{id}/time-off/{time_off_id}",
                            web::delete().to(schedules::delete_time_off),
                        )
                        .service(web::resource("/slots").get(slots::list).post(slots::create))
                        .route("/slots/generate", web::post().to(slots::generate_range))
                        .route("/slots/{id}", web::patch().to(slots::update))
                        .service(web::resource("/staff").get(staff::list).post(staff::create)),
                ),
        );
}
