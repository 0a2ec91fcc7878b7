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

/// The pages' Content Security Policy: nothing but their own stylesheet, no framing, forms
/// posted only to the server; and, with a challenge widget configured, its script and
/// frame from its origin.
pub fn content_security_policy(challenge: &crate::config::ChallengeSettings) -> String {
    let mut policy =
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
            .to_string();
    let sources = challenge.widget_sources().join(" ");
    if !sources.is_empty() {
        policy.push_str(&format!(
            "; script-src 'self' {sources}; frame-src {sources}; connect-src 'self' {sources}; style-src 'self' {sources}"
        ));
    }
    policy
}

/// Adds the headers to an answer to `method path` (with or without credentials), `csp`
/// being `content_security_policy`'s.
pub fn secure(
    headers: &mut HeaderMap,
    method: &Method,
    path: &str,
    authenticated: bool,
    csp: &HeaderValue,
) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The vendored Swagger UI keeps its own ways.
    if !path.starts_with("/api/docs") {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
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
        let csp = HeaderValue::from_static("default-src 'self'");
        secure(&mut headers, &method, path, authenticated, &csp);
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

    #[test]
    fn a_challenge_widget_may_load_from_its_own_origin_only() {
        let settings = crate::config::Settings::load(std::path::Path::new("config"), None)
            .expect("the built-in settings");
        let mut challenge = settings.challenge;
        assert!(!content_security_policy(&challenge).contains("script-src"));
        challenge.script_url = "https://challenges.cloudflare.com/turnstile/v0/api.js".into();
        let policy = content_security_policy(&challenge);
        assert!(policy.starts_with("default-src 'self'; frame-ancestors 'none'"));
        assert!(policy.contains("script-src 'self' https://challenges.cloudflare.com;"));
        assert!(policy.contains("frame-src https://challenges.cloudflare.com;"));
        challenge.csp_sources = vec![
            "https://*.hcaptcha.com".into(),
            "https://x.example; script-src *".into(),
        ];
        let policy = content_security_policy(&challenge);
        assert!(
            policy.contains("frame-src https://challenges.cloudflare.com https://*.hcaptcha.com;")
        );
        assert!(!policy.contains("x.example"), "{policy}");
        challenge.script_url = "http://insecure.example/api.js".into();
        assert!(!content_security_policy(&challenge).contains("insecure.example"));
        challenge.script_url = "https://evil.example;'unsafe-inline'/api.js".into();
        assert!(!content_security_policy(&challenge).contains("unsafe-inline"));
    }
}
