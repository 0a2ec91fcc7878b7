//! API keys for integrations (sync, webhooks' administration, FHIR): created by admins
//! with a name and a scope, shown once, stored hashed, revocable, with their last use.
//! A key is sent as `Authorization: Bearer dbk_...`; see `identity.rs`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::extract::ValidJson;
use super::identity::Admin;
use super::problem::{ApiError, ApiResult};
use super::time::local_rfc3339;
use crate::app::AppState;
use crate::domain::roles::KeyScope;
use crate::store::api_keys::{self as store, ApiKey, NewKey};
use crate::store::audit::{self, Actor, Change};

/// What every key starts with, so a leaked one is recognised (and told from a session).
pub const PREFIX: &str = "dbk_";

#[derive(Serialize, utoipa::ToSchema)]
struct KeyView {
    id: i64,
    name: String,
    /// `read`, or `bookings` (read, and write bookings).
    scope: String,
    /// The key's first characters, to tell keys apart; never the key.
    prefix: String,
    created_by: i64,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

fn key_view(tz: chrono_tz::Tz, k: ApiKey) -> KeyView {
    KeyView {
        id: k.id,
        name: k.name,
        scope: k.scope.as_str().into(),
        prefix: k.prefix,
        created_by: k.created_by,
        created_at: local_rfc3339(tz, k.created_at),
        last_used_at: k.last_used_at.map(|at| local_rfc3339(tz, at)),
        revoked_at: k.revoked_at.map(|at| local_rfc3339(tz, at)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct KeyList {
    api_keys: Vec<KeyView>,
}

/// `GET /api/v1/admin/api-keys`
#[utoipa::path(
    get,
    path = "/api/v1/admin/api-keys",
    tag = "api keys",
    description = "Every API key, revoked ones too, newest first; never the keys themselves. Role: admin.",
    responses((status = 200, description = "Done", body = KeyList))
)]
pub async fn list(state: web::Data<AppState>, _: Admin) -> ApiResult<HttpResponse> {
    let keys = state.read(store::list).await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Ok().json(KeyList {
        api_keys: keys.into_iter().map(|k| key_view(tz, k)).collect(),
    }))
}

#[derive(Debug, Deserialize, validator::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    scope: KeyScope,
}

#[derive(Serialize, utoipa::ToSchema)]
struct KeyCreated {
    #[serde(flatten)]
    api_key: KeyView,
    /// The key, shown this once: it cannot be read back.
    key: String,
}

/// `POST /api/v1/admin/api-keys {name, scope}`
#[utoipa::path(
    post,
    path = "/api/v1/admin/api-keys",
    tag = "api keys",
    description = "Creates a key for an integration (`read`, or `bookings`: read, and write bookings); the answer carries the key, shown once. It acts as the front desk within its scope, never as an admin. Role: admin.",
    request_body = NewKeyBody,
    responses((status = 201, description = "Created", body = KeyCreated), (status = 422, description = "A field is missing or invalid, or a rule refuses it; `errors` names each field"))
)]
pub async fn create(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    body: ValidJson<NewKeyBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let name = body.name;
    let key = format!("{PREFIX}{}", crate::tokens::new_token());
    let hash = crate::tokens::token_hash(&key);
    let prefix: String = key.chars().take(PREFIX.len() + 6).collect();
    let now = state.clock.now();
    let scope = body.scope;
    let created = state
        .write(move |conn| {
            let created = store::insert(
                conn,
                &NewKey {
                    name: &name,
                    scope,
                    key_hash: &hash,
                    prefix: &prefix,
                    created_by: admin.id,
                },
                now,
            )?;
            audit::record(
                conn,
                Actor::Staff(admin.id),
                Change {
                    entity: "api_key",
                    entity_id: created.id,
                    action: "created",
                    before_status: None,
                    after_status: Some(scope.as_str()),
                    details: Some(serde_json::json!({ "name": created.name })),
                },
                now,
            )?;
            Ok::<_, ApiError>(created)
        })
        .await?;
    let tz = state.settings.clinic.timezone;
    Ok(HttpResponse::Created().json(KeyCreated {
        api_key: key_view(tz, created),
        key,
    }))
}

/// `DELETE /api/v1/admin/api-keys/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/admin/api-keys/{id}",
    tag = "api keys",
    description = "Revokes a key at once; requests with it are a 401 from then on. Role: admin.",
    params(("id" = i64, Path, description = "The record's id")),
    responses((status = 204, description = "Done; no body"), (status = 404, description = "Not found"))
)]
pub async fn revoke(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    state
        .write(move |conn| {
            if !store::revoke(conn, id, now)? {
                return Err(ApiError::NotFound("api key"));
            }
            audit::record(
                conn,
                Actor::Staff(admin.id),
                Change {
                    entity: "api_key",
                    entity_id: id,
                    action: "revoked",
                    before_status: None,
                    after_status: Some("revoked"),
                    details: None,
                },
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
