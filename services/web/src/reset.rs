//! Password reset by emailed link. The link carries `<subscriber>.<expires>.<mac>`, the mac
//! an HMAC over those and the current password hash: it expires after an hour and works
//! once (the new password changes the hash), and nothing is stored. The request page says
//! the same whether or not the address is signed up.

use std::{net::SocketAddr, time::Instant};

use askama::Template;
use axum::{
    Form,
    extract::{ConnectInfo, Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
};
use quorum_domain::{EmailAddress, Timestamp};
use quorum_storage::{Database, Principal};
use serde::Deserialize;

use crate::{AppState, WebError, auth, client, form_seed, with_cookie};

const VALID_SECS: i64 = 3600;

/// The link's token for a subscriber whose current web password hash is `hash`.
fn token<DB: Database>(state: &AppState<DB>, subscriber_id: i64, expires: i64, hash: &str) -> String {
    let mac = state.keys.token("reset", &format!("{subscriber_id}.{expires}.{hash}"));
    format!("{subscriber_id}.{expires}.{mac}")
}

/// The subscriber a token names, if it is genuine, unexpired and unused.
async fn verify<DB: Database>(state: &AppState<DB>, token: &str) -> Result<Option<i64>, WebError> {
    let mut parts = token.splitn(3, '.');
    let (Some(id), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else { return Ok(None) };
    let (Ok(id), Ok(expires)) = (id.parse::<i64>(), expires.parse::<i64>()) else { return Ok(None) };
    if expires < Timestamp::now().0 {
        return Ok(None);
    }
    let Some(hash) = state.db.web_password(id).await? else { return Ok(None) };
    let data = format!("{id}.{expires}.{}", hash.unwrap_or_default());
    Ok(state.keys.verify_token("reset", &data, mac).then_some(id))
}

#[derive(Template)]
#[template(path = "reset_request.html")]
struct RequestPage {
    csrf: String,
    sent: bool,
}

pub async fn request_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (csrf, cookie) = form_seed(&state, &headers);
    Ok(with_cookie(Html(RequestPage { csrf, sent: false }.render()?), cookie))
}

#[derive(Debug, Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    email: String,
}

pub async fn request<DB: Database>(
    State(state): State<AppState<DB>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<RequestForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let email = EmailAddress::parse(form.email.trim()).ok();
    let account = format!("reset-account:{}", email.as_ref().map_or("-", |e| e.as_str()));
    if !state.limiter.attempt(&[&format!("reset:{}", client(&addr)), &account], Instant::now()) {
        return Err(WebError::TooMany);
    }
    if let Some(email) = email
        && let Some(subscriber) = state.db.subscriber_by_email(&email).await?
        && let Some(hash) = state.db.web_password(subscriber.subscriber_id).await?
    {
        let expires = Timestamp::now().0 + VALID_SECS;
        let link = format!(
            "{}/reset/{}",
            state.settings.web.base_url.trim_end_matches('/'),
            token(&state, subscriber.subscriber_id, expires, &hash.unwrap_or_default())
        );
        let body = format!(
            "Someone (we hope you) asked to set a new password for Quorum's pages.\r\n\r\n\
             Open this link within an hour to choose it:\r\n{link}\r\n\r\n\
             If it was not you, ignore this message: your password stays as it is.\r\n"
        );
        state.notify(&email, subscriber.mailbox_id, "Quorum: set a new password", &body).await;
        tracing::info!(subscriber = subscriber.subscriber_id, "password reset link sent");
    }
    Ok(Html(RequestPage { csrf: state.csrf(&headers), sent: true }.render()?).into_response())
}

#[derive(Template)]
#[template(path = "reset_choose.html")]
struct ChoosePage {
    csrf: String,
    token: String,
    error: Option<String>,
}

pub async fn choose_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    if verify(&state, &token).await?.is_none() {
        return Err(WebError::LinkExpired);
    }
    let (csrf, cookie) = form_seed(&state, &headers);
    Ok(with_cookie(Html(ChoosePage { csrf, token, error: None }.render()?), cookie))
}

#[derive(Debug, Deserialize)]
pub struct ChooseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// Sets the new password, ends every other session and logs in.
pub async fn choose<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<ChooseForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let Some(subscriber_id) = verify(&state, &token).await? else { return Err(WebError::LinkExpired) };
    if form.password.chars().count() < auth::MIN_PASSWORD_LEN {
        let error = Some(format!("At least {} characters, please.", auth::MIN_PASSWORD_LEN));
        let page = ChoosePage { csrf: state.csrf(&headers), token, error };
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response());
    }
    state.db.set_web_password(subscriber_id, &auth::hash_password(&form.password)).await?;
    state.db.delete_subscriber_sessions(subscriber_id).await?;
    tracing::info!(subscriber = subscriber_id, "web password reset");
    let cookie = state.login(Principal::Subscriber(subscriber_id)).await?;
    Ok(with_cookie(Redirect::to("/account"), Some(cookie)))
}
