//! The OpenAPI 3.1 document of the JSON API, built from the handlers' `#[utoipa::path]`
//! annotations and the types they take and answer. `mod.rs`'s `json_api!` table
//! registers each route and documents it in one line, so neither can exist without the
//! other. What every operation may answer besides its own statuses (a malformed request,
//! rate limits, a busy database, an unexpected fault; for a change, one that met
//! another; for staff routes the bearer token) is added here once.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, Response, ResponseBuilder};

use super::problem::{PROBLEM_JSON, Problem};

fn problem(description: &str) -> RefOr<Response> {
    let schema = utoipa::openapi::schema::Ref::from_schema_name("Problem");
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(schema)))
        .build()
        .into()
}

/// Adds the answers every operation shares, the bearer scheme, and its requirement on
/// the staff routes.
pub struct Shared;

impl utoipa::Modify for Shared {
    fn modify(&self, api: &mut OpenApi) {
        api.info.license = None;
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A staff session token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.schemas.insert(
            "Problem".to_string(),
            <Problem<'static> as utoipa::PartialSchema>::schema(),
        );
        // And what the problem's schema refers to.
        let mut referred = Vec::new();
        <Problem<'static> as utoipa::ToSchema>::schemas(&mut referred);
        components.schemas.extend(referred);
        for (path, item) in api.paths.paths.iter_mut() {
            for (method, operation) in named_operations(item) {
                // Handler names repeat across modules (`create`, `list`); the method and
                // path never do.
                operation.operation_id = Some(operation_id(method, path));
            }
            let staff = path.starts_with("/api/v1/admin")
                || path.starts_with("/fhir/")
                || matches!(
                    path.as_str(),
                    "/api/v1/auth/logout" | "/api/v1/auth/me" | "/api/v1/auth/password"
                );
            for (method, operation) in named_operations(item) {
                shared_answers(operation, method != "get", staff);
                if staff {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
            }
        }
    }
}

fn named_operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
}

/// `post /api/v1/admin/bookings/{id}/cancel` → `post_admin_bookings_id_cancel`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .split(['/', '-'])
        .map(|w| w.trim_matches(['{', '}']))
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

fn shared_answers(operation: &mut Operation, writes: bool, staff: bool) {
    let responses = &mut operation.responses.responses;
    // Every error a handler declares is a problem document; the handlers name the status
    // and what it means, the body is said here once.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && (status.starts_with('4') || status.starts_with('5'))
            && response.content.is_empty()
        {
            let schema = utoipa::openapi::schema::Ref::from_schema_name("Problem");
            response
                .content
                .insert(PROBLEM_JSON.to_string(), Content::new(Some(schema)).into());
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    };
    add(
        "400",
        "The request is malformed: JSON that does not parse, a bad query string",
    );
    add(
        "429",
        "Too many requests from this address; `Retry-After` says when to try again",
    );
    add(
        "503",
        "The database is busy or unreachable; try again shortly",
    );
    add(
        "500",
        "An unexpected fault; it is logged with the request's `x-request-id`",
    );
    if writes {
        // PostgreSQL breaks a deadlock between two changes by failing one of them.
        add(
            "409",
            "Another change met this one at the same moment; nothing was changed, try again",
        );
    }
    if operation.request_body.is_some() {
        add("413", "The body is larger than `server.max_body_bytes`");
        add("415", "The body is not `application/json`");
        add(
            "422",
            "A field is missing or invalid; `errors` names each by its JSON path",
        );
    }
    if staff {
        add("401", "No staff token, or one that expired or was ended");
        add("403", "The signed-in role may not do this");
    }
}
