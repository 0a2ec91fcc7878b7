//! Request extractors that turn bad input into problems naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use super::problem::{ApiError, FieldError};

/// A JSON body that parsed and passed its `validator` rules. Unlike `web::Json` it names
/// the JSON path of a field that has the wrong type, is missing, or breaks a rule.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload);
        Box::pin(async move {
            let value = parse_json::<T>(&body.await?)?;
            value
                .validate()
                .map_err(|e| ApiError::Validation(field_errors(&e)))?;
            Ok(ValidJson(value))
        })
    }
}

/// A JSON Merge Patch (RFC 7396) body: an object whose members replace the resource's,
/// `null` removing one. See [`apply_merge_patch`].
pub struct MergePatch(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest for MergePatch {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload);
        Box::pin(async move {
            match parse_json::<serde_json::Value>(&body.await?)? {
                serde_json::Value::Object(members) => Ok(MergePatch(members)),
                _ => Err(ApiError::invalid("body", "a patch must be a JSON object")),
            }
        })
    }
}

/// Merges `patch` over `current` and validates the result as a whole, so an update obeys
/// exactly the rules a create does.
pub fn apply_merge_patch<T>(current: &T, patch: MergePatch) -> Result<T, ApiError>
where
    T: Serialize + DeserializeOwned + Validate,
{
    let mut merged = match serde_json::to_value(current) {
        Ok(serde_json::Value::Object(members)) => members,
        _ => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a resource did not serialise to an object"
            )));
        }
    };
    for (key, value) in patch.0 {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let bytes = serde_json::to_vec(&merged).map_err(|e| ApiError::Internal(e.into()))?;
    let value = parse_json::<T>(&bytes)?;
    value
        .validate()
        .map_err(|e| ApiError::Validation(field_errors(&e)))?;
    Ok(value)
}

/// Checks the content type, then reads the body within the configured size limit.
fn read_json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<Bytes, ApiError>> + use<> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
    let body = Bytes::from_request(req, payload);
    async move {
        if !is_json {
            return Err(ApiError::Http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json".into(),
            ));
        }
        body.await.map_err(|e| {
            let status = e.as_response_error().status_code();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the request body is larger than the server accepts".to_string()
            } else {
                format!("the request body could not be read: {e}")
            };
            ApiError::Http(status, detail)
        })
    }
}

/// Deserialises, telling malformed JSON (400) from JSON of the wrong shape (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
        }
        let message = strip_position(&inner.to_string());
        // serde names a missing field only in its message, with the path of its parent.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(name) if path == "." => name.to_string(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_string(),
            None => path,
        };
        ApiError::invalid(field, message)
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// `#[serde(deserialize_with = "trimmed")]`: a string without surrounding white space, so
/// that a pasted `" ana@example.com "` passes the rules that the trimmed value would.
pub fn trimmed<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = <String as serde::Deserialize>::deserialize(deserializer)?;
    Ok(value.trim().to_string())
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Flattens validator's nested errors into one entry per field path, sorted by path.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("is invalid ({})", error.code));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        email: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        patient: Inner,
        count: u32,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_a_missing_nested_field_by_its_path() {
        assert_eq!(
            field_of(r#"{"name":"a","patient":{},"count":1}"#),
            "patient.email"
        );
    }

    #[test]
    fn names_a_missing_top_level_field() {
        assert_eq!(field_of(r#"{"patient":{"email":"x"},"count":1}"#), "name");
    }

    #[test]
    fn names_a_field_of_the_wrong_type() {
        assert_eq!(
            field_of(r#"{"name":"a","patient":{"email":"x"},"count":"many"}"#),
            "count"
        );
    }

    #[test]
    fn names_an_unknown_field() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            name: String,
        }
        match parse_json::<Strict>(br#"{"name":"a","colour":"blue"}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "colour"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Outer>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
