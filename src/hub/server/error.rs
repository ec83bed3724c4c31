//! Error answers in the shape Hugging Face clients parse: status, `X-Error-Code` (where one applies),
//! `X-Error-Message` and the JSON body `{"error": "<same message>"}`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// One error answer of the server.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// `RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, … (clients classify errors by this header).
    pub code: Option<&'static str>,
    pub message: String,
    /// Extra headers, e.g. `X-Repo-Commit` on `EntryNotFound`, rate-limit headers on 429.
    pub headers: Vec<(HeaderName, String)>,
    /// Extra top-level fields of the JSON body, e.g. `url` on a 409 from repo creation.
    pub extra: Map<String, Value>,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: None,
            message: message.into(),
            headers: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_field(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn repo_not_found(repo_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!(
                "Repository Not Found for url: {repo_id}. Please make sure you specified the correct `repo_id` and \
                 `repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated."
            ),
        )
        .with_code("RepoNotFound")
    }

    pub fn revision_not_found(repo_id: &str, rev: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Revision Not Found for {repo_id}: invalid rev id: {rev}"),
        )
        .with_code("RevisionNotFound")
    }

    pub fn entry_not_found(repo_id: &str, path: &str, commit: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Entry not found: {path} in {repo_id} at {commit}"),
        )
        .with_code("EntryNotFound")
        .with_header(HeaderName::from_static("x-repo-commit"), commit)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// Header values must be visible ASCII: anything else is replaced, and the message is kept to one line.
fn header_safe(text: &str) -> HeaderValue {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(1000)
        .collect();
    HeaderValue::from_str(&cleaned).unwrap_or_else(|_| HeaderValue::from_static("error"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".to_string(), Value::String(self.message.clone()));
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("x-error-message"),
            header_safe(&self.message),
        );
        if let Some(code) = self.code {
            headers.insert(
                HeaderName::from_static("x-error-code"),
                HeaderValue::from_static(code),
            );
        }
        for (name, value) in self.headers {
            headers.insert(name, header_safe(&value));
        }
        response
    }
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        ApiError::internal(format!("storage error: {err}"))
    }
}
