//! URL map of the server, the connection loop, and the middleware every request passes: fault injection,
//! rate limits and the request log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tower::ServiceExt as _;

use super::body::{self, SmallBody};
use super::error::{ApiError, ApiResult};
use super::faults::Injected;
use super::log::LoggedRequest;
use super::rate_limits::{Bucket, Quota, too_many};
use super::storage::{RepoKey, RepoType, validate_repo_segment};
use super::{AppState, commit, files, lfs, repos, xet};

/// The routes whose repo kind is the URL prefix rather than an `/api/{t}/` segment: file resolve and the git-lfs
/// batch and verify endpoints, once per kind (models have no prefix, as on the real Hub).
fn git_and_resolve_routes() -> Router<AppState> {
    let mut router = Router::new();
    for (prefix, kind) in [
        ("", RepoType::Model),
        ("/datasets", RepoType::Dataset),
        ("/spaces", RepoType::Space),
    ] {
        router = router
            .route(
                &format!("{prefix}/{{ns}}/{{name}}/resolve/{{rev}}/{{*path}}"),
                get(
                    move |s: State<AppState>,
                          p: Path<files::ResolvePath>,
                          m: Method,
                          h: HeaderMap| {
                        files::resolve_file(s, kind, p, m, h)
                    },
                ),
            )
            .route(
                &format!("{prefix}/{{ns}}/{{name}}/info/lfs/objects/batch"),
                post(
                    move |s: State<AppState>, p: Path<lfs::GitPath>, h: HeaderMap, b: SmallBody| {
                        lfs::batch(s, kind, p, h, b)
                    },
                ),
            )
            .route(
                &format!("{prefix}/{{ns}}/{{name}}/info/lfs/objects/verify"),
                post(
                    move |s: State<AppState>, p: Path<lfs::GitPath>, h: HeaderMap, b: SmallBody| {
                        lfs::verify(s, kind, p, h, b)
                    },
                ),
            );
    }
    router
}

/// Per-connection control, put into every request's extensions: the peer address (anonymous rate limits) and a
/// switch that closes the connection without an answer (the "dropped connection" fault).
#[derive(Clone)]
pub(crate) struct ConnCtl {
    pub peer: SocketAddr,
    pub kill: Arc<Notify>,
}

pub(crate) fn router(state: AppState) -> Router {
    let api = "/api/{t}/{ns}/{name}";
    Router::new()
        .route("/api/whoami-v2", get(repos::whoami))
        .route("/api/repos/create", post(repos::create))
        .route("/api/repos/delete", axum::routing::delete(repos::delete))
        .route("/api/repos/move", post(repos::move_repo))
        .route("/api/validate-yaml", post(repos::validate_yaml))
        .route(api, get(repos::info))
        .route(&format!("{api}/revision/{{rev}}"), get(repos::info_at))
        .route(&format!("{api}/settings"), put(repos::settings))
        .route(&format!("{api}/refs"), get(repos::refs))
        .route(&format!("{api}/commits/{{rev}}"), get(repos::commits))
        .route(
            &format!("{api}/branch/{{r}}"),
            post(repos::create_branch).delete(repos::delete_branch),
        )
        .route(
            &format!("{api}/tag/{{r}}"),
            post(repos::create_tag).delete(repos::delete_tag),
        )
        .route(&format!("{api}/preupload/{{rev}}"), post(commit::preupload))
        .route(&format!("{api}/commit/{{rev}}"), post(commit::commit))
        .route(&format!("{api}/tree/{{rev}}"), get(files::tree_root))
        .route(
            &format!("{api}/tree/{{rev}}/{{*path}}"),
            get(files::tree_path),
        )
        .route(
            &format!("{api}/paths-info/{{rev}}"),
            post(files::paths_info),
        )
        .route(
            &format!("{api}/xet-write-token/{{rev}}"),
            get(xet::write_token),
        )
        .route(
            &format!("{api}/xet-read-token/{{rev}}"),
            get(xet::read_token),
        )
        .merge(git_and_resolve_routes())
        .merge(xet::routes())
        .route(
            "/lfs-upload/{id}",
            put(lfs::put_basic).post(lfs::complete).get(lfs::list_parts),
        )
        .route("/lfs-upload/{id}/part/{n}", put(lfs::put_part))
        .route("/lfs-blob/{id}", get(files::blob_link))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Not Found: no route for {} {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Accepts connections until `shutdown` completes; each connection runs on its own task and can be killed.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let timeout = state.abuse.body_read_timeout;
    let maintenance = tokio::spawn(maintain(state.clone()));
    let app = router(state);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!("hub server: accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let ctl = ConnCtl { peer, kill: Arc::new(Notify::new()) };
                let app = app.clone();
                conns.spawn(async move {
                    let kill = ctl.kill.clone();
                    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ctl.clone());
                        // Every body read times out when the client sends nothing for `timeout`, and what a
                        // handler leaves unread is drained after the answer (see `body`).
                        app.clone().oneshot(req.map(|b| body::guarded(b, timeout)))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = kill.notified() => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    maintenance.abort();
    conns.shutdown().await;
}

/// Housekeeping while the server runs: forgets expired upload sessions (deleting the parts they had received)
/// and expired staged uploads (deleting their blobs unless a commit references them), so what abandoned uploads
/// leave behind is bounded by the URL and staging lifetimes.
async fn maintain(state: AppState) {
    let every = state
        .lfs
        .url_ttl
        .min(state.abuse.staged_ttl)
        .min(Duration::from_secs(60))
        .max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for file in state.uploads.sweep() {
            let _ = tokio::fs::remove_file(file).await;
        }
        if let Err(err) = state.xet.sweep() {
            tracing::warn!("hub server: cannot expire staged Xet uploads: {err}");
        }
        let st = state.clone();
        match tokio::task::spawn_blocking(move || st.storage.expire_staged()).await {
            Ok(Err(err)) => tracing::warn!("hub server: cannot expire staged uploads: {err}"),
            Err(err) => tracing::warn!("hub server: staged-upload expiry failed: {err}"),
            Ok(Ok(_)) => {}
        }
    }
}

/// The quota a request counts against: the same rule the client's planner counts with.
fn bucket_of(path: &str) -> Option<Bucket> {
    match crate::hub::quota::bucket_of(path)? {
        crate::hub::quota::Bucket::Api => Some(Bucket::Api),
        crate::hub::quota::Bucket::Resolvers => Some(Bucket::Resolvers),
    }
}

/// Faults, rate limits and the request log, around every handler.
async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let had_token = req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION);
    let content_length = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let peer = req
        .extensions()
        .get::<ConnCtl>()
        .map(|c| c.peer.ip().to_string())
        .unwrap_or_default();

    let response = async {
        let (delay, injected) = state.faults.decide(&path);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match injected {
            Injected::Serve => {}
            Injected::Error(status) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return ApiError::new(status, format!("injected fault: {status} for {path}"))
                    .into_response();
            }
            Injected::TooMany(secs) => {
                let quota = Quota {
                    bucket: "api",
                    quota: 0,
                    remaining: 0,
                    reset_secs: secs,
                    window_secs: 300,
                };
                return too_many(
                    format!("injected fault: rate limited, retry after {secs} seconds"),
                    &quota,
                )
                .into_response();
            }
        }
        let mut quota = None;
        if let Some(bucket) = bucket_of(&path) {
            let who = match state.auth.caller(req.headers()) {
                Ok(Some(user)) => format!("user:{}", user.name),
                _ => format!("ip:{peer}"),
            };
            match state.limiter.count(bucket, &who) {
                Ok(q) => quota = q,
                Err(err) => return err.into_response(),
            }
        }
        let mut response = next.run(req).await;
        if let Some(q) = quota {
            for (name, value) in q.headers() {
                // A handler's own rate-limit headers (e.g. the commit quota on a 429) win.
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().entry(name).or_insert(value);
                }
            }
        }
        response
    }
    .await;

    state.log.push(LoggedRequest {
        method,
        path,
        query,
        had_token,
        content_length,
        status: response.status().as_u16(),
    });
    response
}

// ---- helpers shared by the handlers ----

/// `{t}/{ns}/{name}` of `/api/…` routes.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiRepo {
    pub t: String,
    pub ns: String,
    pub name: String,
}

impl ApiRepo {
    pub fn key(&self) -> ApiResult<RepoKey> {
        let kind = RepoType::from_plural(&self.t).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown repo type {:?}", self.t),
            )
        })?;
        repo_key(kind, &self.ns, &self.name)
    }
}

/// `{t}/{ns}/{name}/…/{rev}` of `/api/…` routes.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiRepoRev {
    pub t: String,
    pub ns: String,
    pub name: String,
    pub rev: String,
}

impl ApiRepoRev {
    pub fn key(&self) -> ApiResult<RepoKey> {
        ApiRepo {
            t: self.t.clone(),
            ns: self.ns.clone(),
            name: self.name.clone(),
        }
        .key()
    }
}

pub(crate) fn repo_key(kind: RepoType, ns: &str, name: &str) -> ApiResult<RepoKey> {
    validate_repo_segment("namespace", ns).map_err(ApiError::bad_request)?;
    validate_repo_segment("name", name).map_err(ApiError::bad_request)?;
    Ok(RepoKey {
        kind,
        ns: ns.to_string(),
        name: name.to_string(),
    })
}

/// Parses a JSON request body, answering 400 with the parser's message.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body for {what}: {e}")))
}

/// Truthy query values the clients send (`true`, `True`, `1`).
pub(crate) fn truthy(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.as_str(), "true" | "True" | "1" | "yes"))
}

/// A `Link: <next>; rel="next"` header.
pub(crate) type LinkHeader = (HeaderName, String);

/// Cuts a listing into pages: returns this page and the `Link` header for the next one.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    page_size: Option<usize>,
    base_url: &str,
    path: &str,
    query: Option<&str>,
) -> ApiResult<(Vec<T>, Option<LinkHeader>)> {
    let Some(size) = page_size else {
        return Ok((items, None));
    };
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let start = match params.iter().find(|(k, _)| k == "cursor") {
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid cursor {v:?}")))?,
        None => 0,
    };
    params.retain(|(k, _)| k != "cursor");
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let link = (start + size < total).then(|| {
        params.push(("cursor".into(), (start + size).to_string()));
        let qs = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        (
            HeaderName::from_static("link"),
            format!("<{base_url}{path}?{qs}>; rel=\"next\""),
        )
    });
    Ok((page, link))
}

/// A JSON answer with optional extra headers.
pub(crate) fn json_response(
    value: serde_json::Value,
    extra: Option<(HeaderName, String)>,
) -> Response {
    let mut response = axum::Json(value).into_response();
    if let Some((name, value)) = extra
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}
