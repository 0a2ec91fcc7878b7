//! Headers every answer carries against the browser's defaults: no sniffing of content
//! types, no referrer (a manage link's token is in its URL), and no caching of anything
//! but the public catalogue, so a shared machine's cache never keeps a patient's booking,
//! a token or a staff answer.

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

/// Public answers that hold nothing about anyone and may be cached.
fn cacheable(method: &Method, path: &str, authenticated: bool) -> bool {
    let public = matches!(
        path,
        "/health"
            | "/ready"
            | "/api/v1/availability"
            | "/api/v1/availability/days"
            | "/api/v1/treatments"
            | "/api/v1/dermatologists"
    ) || path.starts_with("/api/v1/treatments/");
    method == Method::GET && public && !authenticated
}

/// Adds the headers to an answer to `method path` (with or without credentials).
pub fn secure(headers: &mut HeaderMap, method: &Method, path: &str, authenticated: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The pages load nothing but their own stylesheet and post only to themselves; the
    // vendored Swagger UI keeps its own ways.
    if !path.starts_with("/api/docs") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
    if !cacheable(method, path, authenticated) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(method: Method, path: &str, authenticated: bool) -> Option<String> {
        let mut headers = HeaderMap::new();
        secure(&mut headers, &method, path, authenticated);
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
        assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
        headers
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn only_the_public_catalogue_may_be_cached() {
        assert_eq!(
            cache_control(Method::GET, "/api/v1/treatments", false),
            None
        );
        assert_eq!(
            cache_control(Method::GET, "/api/v1/availability", false),
            None
        );
        for (method, path, authenticated) in [
            (Method::GET, "/api/v1/manage/abc", false),
            (Method::POST, "/api/v1/bookings", false),
            (Method::POST, "/api/v1/auth/login", false),
            (Method::GET, "/api/v1/admin/bookings", true),
            (Method::GET, "/api/v1/treatments", true),
        ] {
            assert_eq!(
                cache_control(method, path, authenticated).as_deref(),
                Some("no-store"),
                "{path}"
            );
        }
    }
}
