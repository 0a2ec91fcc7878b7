//! The pages patients use: the treatment menu, the booking flow and the manage page,
//! server-rendered from minijinja templates (`templates/web/`, compiled in, overridable
//! by `web.templates_dir`), with one stylesheet. No JavaScript is needed. Every rule goes
//! through the same booking services as the API; a page never writes the database itself.

mod booking;
mod manage;
mod pages;

use actix_web::web;

pub use pages::Pages;

/// The stylesheet, compiled in.
const SITE_CSS: &str = include_str!("../../assets/site.css");

/// Registers the pages; `public` is the per-address limit the API's public routes share.
pub fn routes(cfg: &mut web::ServiceConfig, public: &crate::api::RateLimits) {
    let limited = || actix_governor::Governor::new(&public.public);
    cfg.route("/", web::get().to(booking::menu))
        .route("/privacy", web::get().to(pages::privacy))
        .route("/assets/site.css", web::get().to(stylesheet))
        .route("/book/{treatment}", web::get().to(booking::times))
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
        .route("/manage/{token}", web::get().to(manage::show))
        .route(
            "/manage/{token}/calendar.ics",
            web::get().to(manage::calendar),
        )
        .service(
            web::resource("/manage/{token}/cancel")
                .wrap(limited())
                .route(web::get().to(manage::ask_cancel))
                .route(web::post().to(manage::cancel)),
        );
}

async fn stylesheet() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SITE_CSS)
}
