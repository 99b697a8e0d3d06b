//! The grid centre's web console: server-rendered pages in Chinese for
//! operators (the incident queue, an incident with its timeline, photos and
//! actions, statistics, visit coverage, conflicts, the map), departments (their incidents)
//! and district IT (accounts, devices, the audit log).
//!
//! It is a second face of the same server: every action goes through the
//! functions the JSON endpoints use (`centre::act`, `accounts::*`), so the
//! rules, the audit log and the phones' view are the same. Pages work
//! without JavaScript and load nothing from outside the server.
//!
//! Sessions are the server's tokens, kept in an `HttpOnly`, `SameSite=Strict`
//! cookie scoped to `/console`; every change is a POST carrying a CSRF token
//! derived from the session (a page of another site can neither read the
//! cookie nor compute the token), and POSTs from another origin are refused
//! before that.

mod accounts;
mod coverage;
mod incidents;
pub mod map;
mod stats;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fieldgrid_protocol::{LoginRequest, Role, codes};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::ApiError;

/// The largest body the console reads (an action with its photos).
pub const MAX_BODY: usize = incidents::ACTION_MAX_BYTES;

/// The session cookie.
const COOKIE: &str = "fieldgrid_console";
/// The device id a console session is recorded under.
pub const CONSOLE_DEVICE: &str = "web-console";

/// The console's routes (mounted beside the JSON API, with their own
/// middleware: no protocol header, HTML errors).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/incidents", get(incidents::queue))
        .route("/console/incidents/{id}", get(incidents::detail))
        .route(
            "/console/incidents/{id}/events",
            post(incidents::act).layer(DefaultBodyLimit::max(incidents::ACTION_MAX_BYTES)),
        )
        .route("/console/photos/{sha256}", get(incidents::photo))
        .route("/console/map", get(map::page))
        .route("/console/stats", get(stats::page))
        .route("/console/stats.csv", get(stats::csv))
        .route("/console/coverage", get(coverage::page))
        .route("/console/coverage.csv", get(coverage::csv))
        .route("/console/conflicts", get(accounts::conflicts))
        .route("/console/accounts", get(accounts::list))
        .route("/console/accounts/{id}", get(accounts::account))
        .route("/console/accounts/{id}/{action}", post(accounts::act))
        .route(
            "/console/accounts/{id}/devices/{device}/{action}",
            post(accounts::device_act),
        )
        .route("/console/audit", get(accounts::audit))
        .route("/console/static/console.css", get(css))
        .route(
            "/console/{*rest}",
            axum::routing::any(|| async { PageError::Api(ApiError::not_found("no such page")) }),
        )
        // Forms are small; an action with photos says so for itself.
        .layer(DefaultBodyLimit::max(crate::error::SMALL_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), protect))
        .with_state(state)
}

/// Security headers on every console answer, and POSTs only from the
/// console's own pages (the `Origin` and `Sec-Fetch-Site` a browser sends).
async fn protect(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return PageError::Api(ApiError::forbidden("a change must come from the console's own pages")).into_response();
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let tiles = state
        .config
        .map_tiles
        .as_deref()
        .and_then(map::tile_origin)
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data: {tiles}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.entry(header::CONTENT_SECURITY_POLICY).or_insert(v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages carry personal data: no cache keeps them (photos and the style
    // sheet say otherwise for themselves).
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether a request comes from a page of this server, by what the browser
/// says: `Sec-Fetch-Site` when sent, else `Origin` against `Host`. A client
/// that sends neither (not a browser) must still carry the CSRF token.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => url::Url::parse(origin)
            .ok()
            .and_then(|u| {
                let h = u.host_str()?.to_owned();
                Some(match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                })
            })
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/console.css"),
    )
        .into_response()
}

/// A signed-in console user.
pub struct User {
    /// Who, as the JSON API knows callers.
    pub caller: Caller,
    /// User name, for the page header.
    pub username: String,
    /// The session's CSRF token.
    pub csrf: String,
    token: String,
}

/// The CSRF token of a session: a hash of its secret token, which no other
/// site can read.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("fieldgrid console csrf\0{token}").as_bytes()))
}

pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl User {
    /// Refuses a change whose form does not carry this session's token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        // Both are hex of the same length; the comparison's time does not
        // depend on where they differ.
        let expected = self.csrf.as_bytes();
        let sent = sent.as_bytes();
        let same =
            expected.len() == sent.len() && expected.iter().zip(sent).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same {
            Ok(())
        } else {
            Err(PageError::Api(ApiError::forbidden(
                "the form is out of date or not from the console: reload the page",
            )))
        }
    }

    /// Refuses anyone whose role is not one of `roles` (the denied page).
    pub fn require(&self, roles: &[Role]) -> Result<(), PageError> {
        self.caller.require(roles).map_err(PageError::Api)
    }

    /// The header and navigation of a page.
    pub fn chrome(&self, title: impl Into<String>, active: &'static str) -> Chrome {
        let role = self.caller.role;
        let mut nav = Vec::new();
        let mut link = |href: &'static str, label: &'static str| {
            nav.push(NavLink {
                href,
                label,
                active: href == active,
            })
        };
        match role {
            Role::Operator => {
                link("/console/incidents", "事件队列");
                link("/console/map", "事件地图");
                link("/console/stats", "统计");
                link("/console/coverage", "走访覆盖");
                link("/console/conflicts", "数据冲突");
                link("/console/accounts", "账号");
            }
            Role::Department => link("/console/incidents", "本部门事件"),
            Role::Admin => {
                link("/console/accounts", "账号与设备");
                link("/console/audit", "审计日志");
            }
            Role::Worker => {}
        }
        Chrome {
            title: title.into(),
            username: self.username.clone(),
            role: role_label(role),
            csrf: self.csrf.clone(),
            nav,
        }
    }
}

/// What `base.html` draws around a page.
pub struct Chrome {
    /// Page title.
    pub title: String,
    /// Signed-in user name.
    pub username: String,
    /// Their role, in Chinese.
    pub role: &'static str,
    /// CSRF token (the sign-out form).
    pub csrf: String,
    /// Navigation.
    pub nav: Vec<NavLink>,
}

/// A navigation link.
pub struct NavLink {
    /// Where.
    pub href: &'static str,
    /// Label.
    pub label: &'static str,
    /// The current section.
    pub active: bool,
}

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let back = || PageError::SignIn(next_of(parts));
        let token = cookie_token(&parts.headers).ok_or_else(back)?;
        let caller = match Caller::of_token(state, &token).await {
            Ok(c) => c,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(back()),
            Err(e) => return Err(PageError::Api(e)),
        };
        if caller.role == Role::Worker {
            return Err(back());
        }
        let username = state
            .store
            .account(&caller.account_id)
            .await
            .map_err(PageError::from)?
            .map(|a| a.username)
            .unwrap_or_default();
        Ok(User {
            csrf: csrf_of(&token),
            caller,
            username,
            token,
        })
    }
}

/// Where to come back to after signing in: this page, if it is a console
/// page read with GET.
fn next_of(parts: &Parts) -> Option<String> {
    (parts.method == Method::GET)
        .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
        .flatten()
        .filter(|p| safe_next(p))
}

/// Only a path of the console itself (never `//host` or another scheme).
fn safe_next(p: &str) -> bool {
    p.starts_with("/console/")
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.contains("://")
        && !p.chars().any(char::is_control)
}

/// Why a page is not shown.
pub enum PageError {
    /// Not signed in (or the session ended): the sign-in page, then back.
    SignIn(Option<String>),
    /// The API's answer, as a page.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Api(e.into())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Api(ApiError::internal(e))
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    headline: &'static str,
    detail: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(next) => {
                let to = match next {
                    Some(n) => format!(
                        "/console/login?{}",
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair("next", &n)
                            .finish()
                    ),
                    None => "/console/login".to_owned(),
                };
                Redirect::to(&to).into_response()
            }
            PageError::Api(e) => {
                let headline = match e.status {
                    StatusCode::FORBIDDEN => "无权访问：您的账号不能查看或执行此项",
                    StatusCode::NOT_FOUND => "未找到：该内容不存在，或不属于您的账号",
                    StatusCode::CONFLICT => "当前状态下不能执行此操作",
                    StatusCode::BAD_REQUEST => "输入有误",
                    StatusCode::TOO_MANY_REQUESTS => "服务器繁忙，请稍后再试",
                    _ if e.status.is_server_error() => "服务器出错，请稍后再试或联系区信息中心",
                    _ => "请求未完成",
                };
                // The API's messages name no person (they never echo input).
                let page = ErrorPage {
                    status: e.status.as_u16(),
                    headline,
                    detail: if e.status.is_server_error() {
                        String::new()
                    } else {
                        e.message.clone()
                    },
                };
                let body = page.render().unwrap_or_else(|_| headline.to_owned());
                (e.status, Html(body)).into_response()
            }
        }
    }
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// Renders a template as an HTML answer.
pub fn render(t: &impl Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

/// `GET /console`: each role's first page.
async fn home(user: User) -> Response {
    let to = match user.caller.role {
        Role::Admin => "/console/accounts",
        _ => "/console/incidents",
    };
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    next: String,
    username: String,
    message: Option<&'static str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(Query(q): Query<NextQuery>) -> PageResult {
    render(&LoginPage {
        next: q.next.filter(|n| safe_next(n)).unwrap_or_default(),
        username: String::new(),
        message: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /console/login`: the phones' sign-in (lockouts, disabled
/// accounts), then the session cookie. Grid workers use the app.
async fn login(
    State(state): State<Arc<AppState>>,
    addr: Option<axum::Extension<ClientAddr>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> PageResult {
    let again = |status: StatusCode, message: &'static str| -> PageResult {
        let page = LoginPage {
            next: if safe_next(&form.next) {
                form.next.clone()
            } else {
                String::new()
            },
            username: form.username.clone(),
            message: Some(message),
        };
        Ok((status, Html(page.render()?)).into_response())
    };
    let req = LoginRequest {
        username: form.username.clone(),
        password: form.password.clone(),
        device_id: CONSOLE_DEVICE.to_owned(),
    };
    let signed = match crate::auth::sign_in(&state, addr.map(|a| a.0), req).await {
        Ok(s) => s,
        Err(e) => {
            return match e.code {
                codes::BAD_CREDENTIALS => again(StatusCode::UNAUTHORIZED, "用户名或密码错误"),
                codes::LOCKED => again(StatusCode::TOO_MANY_REQUESTS, "登录失败次数过多，请稍后再试"),
                codes::ACCOUNT_DISABLED => again(StatusCode::FORBIDDEN, "该账号已停用，请联系区信息中心"),
                codes::DEVICE_REVOKED => again(StatusCode::FORBIDDEN, "该账号的网页登录已被吊销，请联系区信息中心"),
                _ => Err(PageError::Api(e)),
            };
        }
    };
    if signed.role == Role::Worker {
        crate::auth::sign_out(&state, &signed.token).await?;
        return again(StatusCode::FORBIDDEN, "网格员请使用手机应用登录");
    }
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    let max_age = state.config.token_ttl_ms / 1000;
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        signed.token
    );
    let to = if safe_next(&form.next) {
        form.next.as_str()
    } else {
        "/console/"
    };
    let mut response = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`: the session ends on the server, the cookie goes.
async fn logout(State(state): State<Arc<AppState>>, user: User, axum::Form(form): axum::Form<CsrfForm>) -> PageResult {
    user.check_csrf(&form.csrf)?;
    crate::auth::sign_out(&state, &user.token).await?;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("fieldgrid_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

// ---- what pages show ----

/// A role in Chinese.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Worker => "网格员",
        Role::Operator => "网格中心",
        Role::Department => "职能部门",
        Role::Admin => "区信息中心",
    }
}

/// An incident status in Chinese. Matched on the domain's enum, so a new
/// status does not compile until it has its label.
pub fn status_label(status: &str) -> &'static str {
    use fieldgrid_domain::model::IncidentStatus as S;
    match S::parse(status) {
        Some(S::Draft) => "草稿",
        Some(S::Reported) => "已上报",
        Some(S::Dispatched) => "已交办",
        Some(S::Accepted) => "已受理",
        Some(S::ResolvedOnSite) => "现场处置",
        Some(S::Resolved) => "已办结",
        Some(S::Closed) => "已结案",
        Some(S::Returned) => "已退回",
        None => "未知",
    }
}

/// An event kind in Chinese (the action's name), matched on the domain's
/// enum as [`status_label`] is.
pub fn event_label(kind: &str) -> &'static str {
    use fieldgrid_domain::model::EventKind as K;
    match K::parse(kind) {
        Some(K::Reported) => "上报",
        Some(K::Dispatched) => "交办",
        Some(K::Accepted) => "受理",
        Some(K::Progress) => "进展",
        Some(K::ResolvedOnSite) => "现场处置",
        Some(K::Resolved) => "办结",
        Some(K::Closed) => "结案",
        Some(K::Returned) => "退回",
        Some(K::Note) => "补充",
        None => "其他",
    }
}

/// China time (UTC+8, the district's clock) of a server time in ms, to the
/// minute.
pub fn china_time(ms: i64) -> String {
    fieldgrid_domain::china_time::local(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The server time in ms of a `datetime-local` value read as China time.
pub fn parse_china_time(s: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Some(fieldgrid_domain::china_time::instant(t))
}

/// A query string of these pairs (empty values left out).
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert!(safe_next("/console/incidents?status=reported"));
        for bad in [
            "//evil.example/",
            "https://evil.example/console/",
            "/console/\\evil",
            "/console/\n",
            "/v1/accounts",
            "console/",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    #[test]
    fn posts_from_another_origin_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a:1"),
            ("host", "a:1")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[])), "not a browser: the CSRF token decides");
    }

    #[test]
    fn times_are_shown_and_read_in_china_time() {
        // 2026-11-26 12:00 China time.
        let t0 = 1_795_665_600_000;
        assert_eq!(china_time(t0), "2026-11-26 12:00");
        assert_eq!(parse_china_time("2026-11-26T12:00"), Some(t0));
        assert_eq!(parse_china_time("tomorrow"), None);
    }
}
