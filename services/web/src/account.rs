//! The subscriber's own pages: held messages with the summary's three answers, approved
//! senders, and disabling the account. Every query is scoped to the session's own mailbox,
//! so changing an id in a URL reaches no one else's mail.

use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
};
use quorum_domain::{EmailAddress, Timestamp};
use quorum_storage::{Database, QuarantinedMessage, ReleaseSelection, SubscriberStatus};
use quorum_summary::Action;
use quorum_worker::{Held, Receipt, apply_action};
use serde::Deserialize;

use crate::{AppState, Me, WebError, auth, public::CsrfForm, with_cookie};

#[derive(Template)]
#[template(path = "account.html")]
struct HeldPage {
    email: String,
    csrf: String,
    messages: Vec<QuarantinedMessage>,
    /// This mailbox's messages by status.
    counts: Vec<(String, i64)>,
    last_poll: String,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub async fn held<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> Result<Response, WebError> {
    let Me { subscriber, csrf } = state.subscriber(&headers).await?;
    let messages = state.db.held(subscriber.mailbox_id).await?;
    let counts = state.db.message_counts(Some(subscriber.mailbox_id)).await?;
    let last_poll = match (&subscriber.last_status, subscriber.last_poll_at) {
        (Some(status), Some(at)) => format!(
            "{status} at {}{}",
            quorum_domain::release::rfc5322_date(Timestamp(at)),
            subscriber.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        _ => "not polled yet".into(),
    };
    let notice = notice.done.map(|d| match d.as_str() {
        "approve" => "Sender approved: their held mail is on its way to your Inbox.".to_string(),
        "deliver" => "The message is on its way to your Inbox.".to_string(),
        "delete" => "Message deleted and its sender blocked.".to_string(),
        _ => "Done.".to_string(),
    });
    let page = HeldPage { email: subscriber.email, csrf, messages, counts, last_poll, notice };
    Ok(Html(page.render()?).into_response())
}

/// A button on a held message: `approve` (A), `deliver` (R) or `delete` (empty box) —
/// exactly what the summary reply does ([`apply_action`]).
pub async fn decide<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let Me { subscriber, .. } = state.subscriber(&headers).await?;
    let action = match action.as_str() {
        "approve" => Action::Approve,
        "deliver" => Action::Release,
        "delete" => Action::Delete,
        _ => return Err(WebError::NotFound),
    };
    // Another subscriber's message is not found: the same answer as no message at all.
    let message = state.db.message_in_mailbox(subscriber.mailbox_id, id).await?.ok_or(WebError::NotFound)?;
    let owner = owner(&subscriber)?;
    if message.status == "held" {
        let sender = message.from_address.as_deref().and_then(|a| EmailAddress::parse(a).ok());
        let held = Held {
            subscriber_id: subscriber.subscriber_id,
            owner: &owner,
            mailbox_id: subscriber.mailbox_id,
            message_id: message.id,
            sender: sender.as_ref(),
        };
        let mut receipt = Receipt::default();
        apply_action(&state.db, &held, action, &mut Vec::new(), &mut receipt, Timestamp::now()).await?;
        tracing::info!(subscriber = subscriber.subscriber_id, message = id, %receipt, "decided on the web");
    }
    let done = match action {
        Action::Approve => "approve",
        Action::Release => "deliver",
        Action::Delete => "delete",
    };
    Ok(Redirect::to(&format!("/account?done={done}")).into_response())
}

/// The subscriber's address: where released mail goes.
fn owner(subscriber: &SubscriberStatus) -> Result<EmailAddress, WebError> {
    EmailAddress::parse(&subscriber.email).map_err(|_| {
        quorum_storage::StorageError::Corrupt(format!("subscriber {} email", subscriber.subscriber_id)).into()
    })
}

#[derive(Template)]
#[template(path = "senders.html")]
struct SendersPage {
    email: String,
    csrf: String,
    senders: Vec<String>,
    errors: Vec<String>,
    added: usize,
}

async fn senders_page<DB: Database>(
    state: &AppState<DB>,
    headers: &HeaderMap,
    errors: Vec<String>,
    added: usize,
) -> Result<Response, WebError> {
    let Me { subscriber, csrf } = state.subscriber(headers).await?;
    let senders = state.db.all_approved_senders(subscriber.subscriber_id).await?;
    let page = SendersPage { email: subscriber.email, csrf, senders, errors, added };
    Ok(Html(page.render()?).into_response())
}

pub async fn senders<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    senders_page(&state, &headers, Vec::new(), 0).await
}

#[derive(Debug, Deserialize)]
pub struct SendersForm {
    #[serde(default)]
    csrf: String,
    /// One address, or a pasted list (one per line, or separated by commas or spaces).
    addresses: String,
}

/// Adds one sender or imports a list; addresses that do not parse are named.
pub async fn add_senders<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<SendersForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let Me { subscriber, .. } = state.subscriber(&headers).await?;
    let (mut errors, mut added) = (Vec::new(), 0);
    for word in form.addresses.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|w| !w.is_empty()) {
        let address = word.trim_matches(|c| c == '<' || c == '>');
        match EmailAddress::parse(address) {
            Ok(sender) => {
                state.db.approve_sender(subscriber.subscriber_id, &sender, Timestamp::now()).await?;
                added += 1;
            }
            Err(e) => errors.push(format!("{address}: {e}")),
        }
    }
    senders_page(&state, &headers, errors, added).await
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    address: String,
}

pub async fn remove_sender<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<RemoveForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let Me { subscriber, .. } = state.subscriber(&headers).await?;
    if let Ok(sender) = EmailAddress::parse(&form.address) {
        state.db.remove_approved_sender(subscriber.subscriber_id, &sender).await?;
    }
    Ok(Redirect::to("/account/senders").into_response())
}

/// Disables the account: polling stops, everything held is delivered, the sessions end.
pub async fn disable<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let Me { subscriber, .. } = state.subscriber(&headers).await?;
    let owner = owner(&subscriber)?;
    let released =
        state.db.queue_release(subscriber.mailbox_id, ReleaseSelection::All, &owner, Timestamp::now()).await?;
    state.db.set_subscriber_enabled(subscriber.subscriber_id, false).await?;
    state.db.delete_subscriber_sessions(subscriber.subscriber_id).await?;
    tracing::info!(subscriber = subscriber.subscriber_id, released, "account disabled on the web");
    let gone = auth::set_cookie(auth::SESSION_COOKIE, "", 0, state.settings.web.secure_cookies);
    Ok(with_cookie(Redirect::to("/?disabled=1"), Some(gone)))
}

/// The settings form as typed (passwords are never sent back).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    approved_days: String,
    summary_times: String,
    time_zone: String,
    /// A checkbox: present when ticked.
    confirmations: Option<String>,
    /// A new POP3 password (empty: unchanged); checked against the server before it is kept.
    #[serde(default)]
    pop3_password: String,
    /// A new web password (empty: unchanged), with the current one.
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    current_password: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    email: String,
    csrf: String,
    form: SettingsForm,
    username: String,
    errors: Vec<String>,
    saved: bool,
}

async fn settings_form<DB: Database>(state: &AppState<DB>, me: &Me) -> Result<(SettingsForm, String), WebError> {
    let s = state.db.subscriber_settings(me.subscriber.subscriber_id).await?.ok_or(WebError::Login)?;
    let form = SettingsForm {
        approved_days: s.approved_days.to_string(),
        summary_times: s.summary_times,
        time_zone: s.time_zone,
        confirmations: s.confirmations.then(|| "on".into()),
        ..SettingsForm::default()
    };
    Ok((form, s.username))
}

pub async fn settings_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let me = state.subscriber(&headers).await?;
    let (form, username) = settings_form(&state, &me).await?;
    let page =
        SettingsPage { email: me.subscriber.email, csrf: me.csrf, form, username, errors: Vec::new(), saved: false };
    Ok(Html(page.render()?).into_response())
}

/// Saves the settings; a new POP3 password is checked on the server first, a new web
/// password needs the current one.
pub async fn settings<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<SettingsForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let me = state.subscriber(&headers).await?;
    let (_, username) = settings_form(&state, &me).await?;
    let id = me.subscriber.subscriber_id;
    let mut errors = Vec::new();
    let approved_days = form.approved_days.trim().parse::<i64>().ok().filter(|d| (1..=3650).contains(d));
    if approved_days.is_none() {
        errors.push("Approved days: a number of days from 1 to 3650.".to_string());
    }
    let schedule = quorum_domain::schedule::SummarySchedule::parse(form.summary_times.trim(), form.time_zone.trim())
        .map_err(|e| errors.push(format!("Summary times: {e}.")))
        .ok();
    if !form.new_password.is_empty() {
        let current = state.db.web_password(id).await?.flatten();
        if !current.is_some_and(|h| auth::verify_password(&form.current_password, &h)) {
            errors.push("Current password: it does not match; the web password was not changed.".into());
        } else if form.new_password.chars().count() < auth::MIN_PASSWORD_LEN {
            errors.push(format!("New password: at least {} characters.", auth::MIN_PASSWORD_LEN));
        }
    }
    let pop3 =
        (!form.pop3_password.is_empty()).then(|| quorum_domain::secrets::Password::new(form.pop3_password.clone()));
    if let (Some(password), true) = (&pop3, errors.is_empty()) {
        let security = me.subscriber.security.parse().map_err(|_| {
            quorum_storage::StorageError::Corrupt(format!("mailbox {} security", me.subscriber.mailbox_id))
        })?;
        let protocol = me.subscriber.protocol.parse().map_err(|_| {
            quorum_storage::StorageError::Corrupt(format!("mailbox {} protocol", me.subscriber.mailbox_id))
        })?;
        let mailbox = (protocol, me.subscriber.host.as_str(), me.subscriber.port as u16, security, username.as_str());
        if let Err(problem) = state.check_mailbox(mailbox, password).await {
            errors.push(format!("Mailbox password: {problem}"));
        }
    }
    let (Some(approved_days), Some(schedule), true) = (approved_days, schedule, errors.is_empty()) else {
        let form = SettingsForm {
            pop3_password: String::new(),
            new_password: String::new(),
            current_password: String::new(),
            ..form
        };
        let page = SettingsPage { email: me.subscriber.email, csrf: me.csrf, form, username, errors, saved: false };
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response());
    };
    let now = Timestamp::now();
    state.db.update_subscriber_settings(id, approved_days, &schedule, form.confirmations.is_some(), now).await?;
    if let Some(password) = &pop3 {
        let owner = owner(&me.subscriber)?;
        state.db.set_mailbox_password(id, &state.keys.encrypt_password(password, owner.as_str())).await?;
    }
    if !form.new_password.is_empty() {
        state.db.set_web_password(id, &auth::hash_password(&form.new_password)).await?;
    }
    tracing::info!(subscriber = id, "settings changed on the web");
    // The page shows what was just stored, as stored (times and zone in their normal form).
    let form = SettingsForm {
        approved_days: approved_days.to_string(),
        summary_times: schedule.times(),
        time_zone: schedule.zone().to_string(),
        confirmations: form.confirmations,
        ..SettingsForm::default()
    };
    let page =
        SettingsPage { email: me.subscriber.email, csrf: me.csrf, form, username, errors: Vec::new(), saved: true };
    Ok(Html(page.render()?).into_response())
}
