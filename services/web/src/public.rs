//! Pages anyone can open: the landing page with live statistics, signup, login and logout.

use std::{net::SocketAddr, time::Instant};

use askama::Template;
use axum::{
    Form, Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use quorum_domain::{
    AuthMethod, EmailAddress, Protocol, Security, Timestamp, schedule::SummarySchedule, secrets::Password,
};
use quorum_pop3::{ConnectOptions, Credentials, Endpoint, TlsSettings};
use quorum_storage::{Database, MailboxSettings, NewSubscriber, Principal};
use serde::{Deserialize, Serialize};

use crate::{AppState, WebError, auth, client, form_seed, with_cookie};

/// How long the global statistics are served from memory: counting a million messages on
/// every request would make the busiest page the slowest.
const STATS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The service's live statistics: messages by what happened to them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GlobalStats {
    pub messages: i64,
    pub held: i64,
    pub delivered: i64,
    /// Deleted by subscribers' answers (empty box).
    pub deleted_by_subscribers: i64,
    pub deleted_forged: i64,
    pub deleted_statistical: i64,
    /// Bounced confirmations: the sender does not exist.
    pub deleted_nonexistent: i64,
    /// Mail from senders the subscriber had blocked before.
    pub deleted_blocked: i64,
    pub purged: i64,
    /// Of the decided messages, the share that was spam (deleted for any reason).
    pub share_spam: f64,
    pub computed_at: i64,
}

impl GlobalStats {
    /// When the counts were taken, for the page.
    pub fn counted_at(&self) -> String {
        quorum_domain::release::rfc5322_date(Timestamp(self.computed_at))
    }

    pub fn from_counts(counts: &[(String, i64)], now: Timestamp) -> GlobalStats {
        let get = |status: &str| counts.iter().filter(|(s, _)| s == status).map(|(_, n)| n).sum::<i64>();
        let mut s = GlobalStats {
            messages: counts.iter().map(|(_, n)| n).sum(),
            held: get("held"),
            delivered: get("released") + get("releasing"),
            deleted_by_subscribers: get("deleted_spam"),
            deleted_forged: get("deleted_forged"),
            deleted_statistical: get("deleted_statistical"),
            deleted_nonexistent: get("deleted_nonexistent"),
            deleted_blocked: get("deleted_blocked"),
            purged: get("purged"),
            share_spam: 0.0,
            computed_at: now.0,
        };
        let spam = s.deleted_by_subscribers
            + s.deleted_forged
            + s.deleted_statistical
            + s.deleted_nonexistent
            + s.deleted_blocked
            + s.purged;
        let decided = spam + s.delivered;
        s.share_spam = if decided > 0 { spam as f64 / decided as f64 } else { 0.0 };
        s
    }
}

impl<DB: Database> AppState<DB> {
    /// Checks a mailbox for real (POP3: connect with a timeout, CAPA, login, STAT, UIDL;
    /// IMAP: login, Quorum's folders, the Inbox): what failed and what to do about it, in a
    /// sentence for the page.
    pub(crate) async fn check_mailbox(
        &self,
        (protocol, host, port, security, username): (Protocol, &str, u16, Security, &str),
        password: &Password,
    ) -> Result<(), String> {
        // The trusted roots are read from disk once per process, as the worker does.
        let tls = self
            .tls
            .get_or_init(|| {
                (TlsSettings { extra_ca_files: self.settings.worker.tls_ca_files.clone() })
                    .client_config()
                    .map_err(|e| tracing::error!(error = %e, "TLS roots unavailable for mailbox checks"))
                    .ok()
            })
            .clone()
            .ok_or_else(|| "Quorum cannot check mailboxes right now; please try again later.".to_string())?;
        let options = ConnectOptions {
            endpoint: Endpoint {
                host: host.to_string(),
                port,
                security,
                timeout: self.settings.worker.pop3_timeout(),
                tls,
            },
            max_message_size: self.settings.worker.max_message_size,
        };
        let checked = match protocol {
            Protocol::Pop3 => {
                let credentials = Credentials::new(AuthMethod::Auto, username, password.expose());
                quorum_worker::check_mailbox(&options, credentials).await
            }
            Protocol::Imap => {
                quorum_worker::check_imap_mailbox(&options.endpoint, AuthMethod::Auto, username, password.expose())
                    .await
            }
        };
        checked.map(|_| ()).map_err(|failure| format!("We could not use this mailbox: {failure}"))
    }

    pub(crate) async fn global_stats(&self) -> Result<GlobalStats, WebError> {
        self.stats
            .get(STATS_TTL, || async {
                Ok(GlobalStats::from_counts(&self.db.message_counts(None).await?, Timestamp::now()))
            })
            .await
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    stats: GlobalStats,
    logged_in: bool,
}

pub async fn index<DB: Database>(State(state): State<AppState<DB>>, headers: HeaderMap) -> Result<Response, WebError> {
    let logged_in = state.principal(&headers).await?.is_some();
    Ok(Html(IndexPage { stats: state.global_stats().await?, logged_in }.render()?).into_response())
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    stats: GlobalStats,
}

pub async fn stats<DB: Database>(State(state): State<AppState<DB>>) -> Result<Response, WebError> {
    Ok(Html(StatsPage { stats: state.global_stats().await? }.render()?).into_response())
}

pub async fn stats_json<DB: Database>(State(state): State<AppState<DB>>) -> Result<Response, WebError> {
    Ok(Json(state.global_stats().await?).into_response())
}

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], include_str!("../../../web/static/quorum.css")).into_response()
}

/// The signup form as typed (passwords are never sent back to the browser).
#[derive(Debug, Clone, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf: String,
    email: String,
    /// `pop3` or `imap`; a form without it (an older page) means POP3.
    #[serde(default)]
    protocol: String,
    host: String,
    port: String,
    security: String,
    username: String,
    #[serde(default)]
    password: String,
    approved_days: String,
    summary_times: String,
    time_zone: String,
    #[serde(default)]
    web_password: String,
}

impl Default for SignupForm {
    fn default() -> Self {
        SignupForm {
            csrf: String::new(),
            email: String::new(),
            protocol: "pop3".into(),
            host: String::new(),
            port: "995".into(),
            security: "tls".into(),
            username: String::new(),
            password: String::new(),
            approved_days: "90".into(),
            summary_times: SummarySchedule::DEFAULT_TIMES.into(),
            time_zone: "UTC".into(),
            web_password: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    form: SignupForm,
    csrf: String,
    errors: Vec<String>,
}

pub async fn signup_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (csrf, cookie) = form_seed(&state, &headers);
    let page = SignupPage { form: SignupForm::default(), csrf, errors: Vec::new() };
    Ok(with_cookie(Html(page.render()?), cookie))
}

/// Everything the signup form says, validated.
struct Signup {
    email: EmailAddress,
    protocol: Protocol,
    host: String,
    port: u16,
    security: Security,
    username: String,
    password: Password,
    approved_days: i64,
    schedule: SummarySchedule,
    web_password: String,
}

fn validate(form: &SignupForm) -> Result<Signup, Vec<String>> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(form.email.trim()).map_err(|e| errors.push(format!("Email address: {e}."))).ok();
    let protocol = match form.protocol.trim() {
        "" => Some(Protocol::Pop3),
        p => p.parse::<Protocol>().map_err(|e| errors.push(format!("Protocol: {e}."))).ok(),
    };
    let host = form.host.trim().to_string();
    if host.is_empty() || host.contains(char::is_whitespace) {
        errors.push(
            "Mail server: enter the host name your provider gives for POP3 or IMAP (e.g. imap.example.com).".into(),
        );
    }
    let port = form.port.trim().parse::<u16>().ok().filter(|p| *p > 0);
    if port.is_none() {
        errors.push("Port: a number from 1 to 65535 (usually 993 for IMAP with TLS, 995 for POP3 with TLS).".into());
    }
    let security = form.security.parse::<Security>().map_err(|e| errors.push(format!("Security: {e}."))).ok();
    if form.username.trim().is_empty() {
        errors.push("User name: enter the mailbox's user name (often your full address).".into());
    }
    if form.password.is_empty() {
        errors.push("Mailbox password: enter the password of your mailbox.".into());
    }
    let approved_days = form.approved_days.trim().parse::<i64>().ok().filter(|d| (1..=3650).contains(d));
    if approved_days.is_none() {
        errors.push("Approved days: a number of days from 1 to 3650.".into());
    }
    let schedule = SummarySchedule::parse(form.summary_times.trim(), form.time_zone.trim())
        .map_err(|e| errors.push(format!("Summary times: {e}.")))
        .ok();
    if form.web_password.chars().count() < auth::MIN_PASSWORD_LEN {
        errors.push(format!("Web password: at least {} characters.", auth::MIN_PASSWORD_LEN));
    }
    match (email, protocol, port, security, approved_days, schedule) {
        (Some(email), Some(protocol), Some(port), Some(security), Some(approved_days), Some(schedule))
            if errors.is_empty() =>
        {
            Ok(Signup {
                email,
                protocol,
                host,
                port,
                security,
                username: form.username.trim().to_string(),
                password: Password::new(form.password.clone()),
                approved_days,
                schedule,
                web_password: form.web_password.clone(),
            })
        }
        _ => Err(errors),
    }
}

pub async fn signup<DB: Database>(
    State(state): State<AppState<DB>>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let csrf = state.csrf(&headers);
    let again = |errors: Vec<String>| -> Result<Response, WebError> {
        let form = SignupForm { password: String::new(), web_password: String::new(), ..form.clone() };
        Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Html(SignupPage { form, csrf: csrf.clone(), errors }.render()?),
        )
            .into_response())
    };
    let signup = match validate(&form) {
        Ok(s) => s,
        Err(errors) => return again(errors),
    };
    if !state.limiter.attempt(&[&format!("signup:{}", client(&addr))], Instant::now()) {
        return Err(WebError::TooMany);
    }
    if state.db.subscriber_by_email(&signup.email).await?.is_some() {
        return again(vec![format!("{} is signed up already: log in instead.", signup.email)]);
    }
    // The mailbox is checked for real before anything is stored.
    let mailbox = (signup.protocol, signup.host.as_str(), signup.port, signup.security, signup.username.as_str());
    if let Err(problem) = state.check_mailbox(mailbox, &signup.password).await {
        return again(vec![problem]);
    }
    let new = NewSubscriber {
        email: signup.email.clone(),
        approved_days: signup.approved_days,
        schedule: signup.schedule,
        mailbox: MailboxSettings {
            protocol: signup.protocol,
            host: signup.host,
            port: signup.port,
            security: signup.security,
            auth: AuthMethod::Auto,
            username: signup.username,
            password_enc: state.keys.encrypt_password(&signup.password, signup.email.as_str()),
            trusted_domains: Vec::new(),
        },
    };
    let ids = match state.db.add_subscriber(&new, Timestamp::now()).await {
        Ok(ids) => ids,
        Err(quorum_storage::StorageError::Duplicate(_)) => {
            return again(vec![format!("{} is signed up already: log in instead.", signup.email)]);
        }
        Err(e) => return Err(e.into()),
    };
    state.db.set_web_password(ids.subscriber_id, &auth::hash_password(&signup.web_password)).await?;
    tracing::info!(subscriber = ids.subscriber_id, "signed up on the web");
    welcome(&state, &signup.email, ids.mailbox_id, signup.protocol).await;
    let cookie = state.login(Principal::Subscriber(ids.subscriber_id)).await?;
    Ok(with_cookie(Redirect::to("/account"), Some(cookie)))
}

/// The welcome email: where held mail is, and how summaries work.
async fn welcome<DB: Database>(state: &AppState<DB>, to: &EmailAddress, mailbox_id: i64, protocol: Protocol) {
    let held = match protocol {
        Protocol::Imap => {
            "Held mail waits in the folder Quorum/Held of your mailbox, where you can read it; what\r\n\
             Quorum deletes goes to the folder Quorum/Deleted, kept as long as your provider keeps it.\r\n"
        }
        Protocol::Pop3 => "Held mail is taken out of your mailbox and kept by Quorum until you decide.\r\n",
    };
    let body = format!(
        "Your mailbox is now protected by Quorum.\r\n\r\n\
         Mail from senders you have approved stays in your Inbox. Everything else waits in the\r\n\
         quarantine, and twice a day you get a summary of it. {held}\
         Answer the summary by replying:\r\n\
         \x20 A  approves the sender: this and all their future mail reaches your Inbox;\r\n\
         \x20 R  delivers that one message;\r\n\
         \x20 an empty box deletes the message and blocks its sender.\r\n\r\n\
         Forged mail and mail that all subscribers together know to be spam is deleted for you.\r\n\
         Your pages: {base}/account\r\n",
        base = state.settings.web.base_url.trim_end_matches('/'),
    );
    state.notify(to, mailbox_id, "Welcome to Quorum", &body).await;
}

impl<DB: Database> AppState<DB> {
    /// Mails a notice to a subscriber. It carries a notice marker, so the worker leaves it
    /// in the Inbox. A failure is logged: the page's action stands.
    pub(crate) async fn notify(&self, to: &EmailAddress, mailbox_id: i64, subject: &str, body: &str) {
        let Some(mailer) = &self.mailer else { return };
        let now = Timestamp::now();
        let text = format!(
            "{marker}From: Quorum <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            marker = quorum_domain::ReleaseMarker::notice(mailbox_id, now).header_line(&self.keys),
            from = mailer.from_address(),
            date = quorum_domain::release::rfc5322_date(now),
        );
        if let Err(e) = mailer.send(to, text.as_bytes()).await {
            tracing::warn!(error = %e, subject, "a notice to a subscriber could not be sent");
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    email: String,
    csrf: String,
    error: Option<String>,
}

pub async fn login_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (csrf, cookie) = form_seed(&state, &headers);
    Ok(with_cookie(Html(LoginPage { email: String::new(), csrf, error: None }.render()?), cookie))
}

/// Subscribers and operators log in on the same form; a wrong password, an unknown address
/// and a disabled account get the same answer in the same time.
pub async fn login<DB: Database>(
    State(state): State<AppState<DB>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    let email = EmailAddress::parse(form.email.trim()).ok();
    let account = format!("login-account:{}", email.as_ref().map_or("-", |e| e.as_str()));
    let keys = [format!("login:{}", client(&addr)), account.clone()];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if !state.limiter.allows(&keys, Instant::now()) {
        return Err(WebError::TooMany);
    }
    let principal = match &email {
        Some(email) => match state.db.operator_login(email).await? {
            Some((id, hash)) => auth::verify_password(&form.password, &hash).then_some(Principal::Operator(id)),
            None => {
                let login = state.db.web_login(email).await?;
                let hash = login.as_ref().and_then(|(_, h)| h.as_deref()).unwrap_or(auth::dummy_hash());
                let ok = auth::verify_password(&form.password, hash);
                login.filter(|_| ok).map(|(id, _)| Principal::Subscriber(id))
            }
        },
        None => None,
    };
    let Some(principal) = principal else {
        state.limiter.record(&keys, Instant::now());
        let page = LoginPage {
            email: form.email.clone(),
            csrf: state.csrf(&headers),
            error: Some("Wrong email address or password.".into()),
        };
        return Ok((axum::http::StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response());
    };
    let cookie = state.login(principal).await?;
    let to = if matches!(principal, Principal::Operator(_)) { "/admin" } else { "/account" };
    Ok(with_cookie(Redirect::to(to), Some(cookie)))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    if let Some(token) = auth::cookie(&headers, auth::SESSION_COOKIE) {
        state.db.delete_session(&auth::token_hash(token)).await?;
    }
    let gone = auth::set_cookie(auth::SESSION_COOKIE, "", 0, state.settings.web.secure_cookies);
    Ok(with_cookie(Redirect::to("/"), Some(gone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_from_counts() {
        let counts: Vec<(String, i64)> =
            [("held", 5), ("released", 3), ("deleted_spam", 4), ("deleted_forged", 2), ("purged", 1)]
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect();
        let s = GlobalStats::from_counts(&counts, Timestamp(7));
        assert_eq!((s.messages, s.held, s.delivered, s.deleted_forged), (15, 5, 3, 2));
        assert!((s.share_spam - 7.0 / 10.0).abs() < 1e-12);
        assert_eq!(GlobalStats::from_counts(&[], Timestamp(0)).share_spam, 0.0);
    }

    #[test]
    fn signup_validation_says_what_is_wrong() {
        let form = SignupForm {
            email: "not an address".into(),
            port: "99999".into(),
            protocol: "smtp".into(),
            web_password: "short".into(),
            ..SignupForm::default()
        };
        let errors = validate(&form).err().unwrap();
        assert!(errors.iter().any(|e| e.starts_with("Email address")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("Port")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("Mail server")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("Protocol: unknown protocol `smtp`")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("Web password")), "{errors:?}");
        let good = SignupForm {
            email: "a@example.org".into(),
            host: "pop.example.org".into(),
            username: "a".into(),
            password: "pw".into(),
            web_password: "long enough pw".into(),
            ..SignupForm::default()
        };
        let s = validate(&good).unwrap();
        assert_eq!((s.protocol, s.port, s.security, s.approved_days), (Protocol::Pop3, 995, Security::Tls, 90));
        // A form without the field (an older page) means POP3; IMAP when chosen.
        assert_eq!(validate(&SignupForm { protocol: String::new(), ..good.clone() }).unwrap().protocol, Protocol::Pop3);
        assert_eq!(validate(&SignupForm { protocol: "imap".into(), ..good }).unwrap().protocol, Protocol::Imap);
    }
}
