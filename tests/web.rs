//! The web pages' security rules, through the real router on a real (SQLite) database:
//! forms without a CSRF token are refused, a subscriber cannot reach another's mail by
//! changing an id, operator pages refuse subscribers, and rapid wrong logins are throttled.
//! The same answers the browser test sees, without the browser.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::connect_info::MockConnectInfo,
    http::{Request, StatusCode, header},
    response::Response,
};
use quorum_domain::{EmailAddress, Keys, MessageHash, Timestamp};
use quorum_storage::{Database, KeyRow, PollItem, PollOutcome, PollStatus, Sqlite, StatisticsUpdate};
use quorum_tests::{MailStack, TestUser, dovecot_subscriber, fresh_sqlite};
use quorum_web::{AppState, auth};
use tower::ServiceExt;

struct Site {
    app: Router,
    db: Sqlite,
    _dir: tempfile::TempDir,
}

/// A browser: its cookies, and the CSRF token of the last page it loaded.
#[derive(Default, Clone)]
struct Browser {
    cookies: Vec<(String, String)>,
    csrf: String,
}

impl Site {
    async fn new() -> Site {
        Site::with_mailer(false).await
    }

    /// With `mail`, notices go through the test stack's Postfix.
    async fn with_mailer(mail: bool) -> Site {
        let (dir, url) = fresh_sqlite();
        let db = Sqlite::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
        let mut settings = quorum_config::Settings::load(None).unwrap();
        settings.smtp.port = MailStack::get().smtp_port;
        settings.smtp.envelope_from = "quorum@quorum.test".into();
        // Mailbox checks against servers that never answer give up quickly.
        settings.worker.pop3_timeout_secs = 2;
        let mailer = mail.then(|| Arc::new(quorum_mailer::Mailer::new(&settings.smtp).unwrap()));
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let state = AppState::new(db.clone(), metrics, keys, Arc::new(settings), mailer);
        let app = quorum_web::router(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 7], 50_000))));
        Site { app, db, _dir: dir }
    }

    async fn send(&self, browser: &mut Browser, request: Request<Body>) -> (StatusCode, String, Response<()>) {
        let mut request = request;
        if !browser.cookies.is_empty() {
            let cookies: Vec<String> = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request.headers_mut().insert(header::COOKIE, cookies.join("; ").parse().unwrap());
        }
        let response = self.app.clone().oneshot(request).await.unwrap();
        for c in response.headers().get_all(header::SET_COOKIE) {
            let (pair, _) = c.to_str().unwrap().split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            browser.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                browser.cookies.push((k.to_string(), v.to_string()));
            }
        }
        let (parts, body) = response.into_parts();
        let body = String::from_utf8(axum::body::to_bytes(body, 1 << 22).await.unwrap().to_vec()).unwrap();
        if let Some(i) = body.find(r#"name="csrf" value=""#) {
            let rest = &body[i + 19..];
            browser.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
        (parts.status, body, Response::from_parts(parts, ()))
    }

    async fn get(&self, browser: &mut Browser, path: &str) -> (StatusCode, String) {
        let (status, body, _) = self.send(browser, Request::get(path).body(Body::empty()).unwrap()).await;
        (status, body)
    }

    async fn post(
        &self,
        browser: &mut Browser,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Response<()>) {
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(browser, request).await
    }

    /// A subscriber with a web password and one held message; returns (browser logged in, message id).
    async fn subscriber(&self, name: &str, subject: &str) -> (Browser, i64) {
        self.subscriber_as(&TestUser { email: format!("{name}@web.test"), password: "x".into() }, subject).await
    }

    async fn subscriber_as(&self, user: &TestUser, subject: &str) -> (Browser, i64) {
        let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
        let name = &user.email;
        let ids = self.db.add_subscriber(&dovecot_subscriber(user, &keys), Timestamp::now()).await.unwrap();
        self.db.set_web_password(ids.subscriber_id, &auth::hash_password("a long password")).await.unwrap();
        let raw = format!("From: spammer@bulk.example\r\nSubject: {subject}\r\n\r\nbuy\r\n").into_bytes();
        let from = EmailAddress::parse("spammer@bulk.example").unwrap();
        let item = PollItem::Quarantine {
            uidl: "u1",
            status: "held",
            raw: &raw,
            hash: MessageHash::of(&raw),
            from: Some(&from),
            from_name: None,
            subject: Some(subject),
            checked: None,
            campaign: None,
            stat_keys: None,
            confirm_to: None,
            reputation: &[],
            imap_folder: None,
        };
        let stored = self.db.commit_poll(ids.mailbox_id, ids.subscriber_id, &[item], Timestamp::now()).await.unwrap();
        let (browser, status, response) = self.log_in(&user.email, "a long password").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {name}");
        assert_eq!(response.headers()[header::LOCATION], "/account");
        (browser, stored[0].unwrap())
    }

    /// An operator account, logged in.
    async fn operator(&self) -> Browser {
        let email = EmailAddress::parse("ops@web.test").unwrap();
        self.db.add_operator(&email, &auth::hash_password("operator password"), Timestamp::now()).await.unwrap();
        let (ops, status, response) = self.log_in("ops@web.test", "operator password").await;
        assert_eq!(
            (status, &response.headers()[header::LOCATION]),
            (StatusCode::SEE_OTHER, &"/admin".parse().unwrap())
        );
        ops
    }

    /// A new browser loads the login page and posts its form.
    async fn log_in(&self, email: &str, password: &str) -> (Browser, StatusCode, Response<()>) {
        let mut browser = Browser::default();
        self.get(&mut browser, "/login").await;
        let csrf = browser.csrf.clone();
        let (status, _, response) =
            self.post(&mut browser, "/login", &[("csrf", &csrf), ("email", email), ("password", password)]).await;
        (browser, status, response)
    }

    async fn login(&self, email: &str, password: &str) -> StatusCode {
        self.log_in(email, password).await.1
    }

    async fn status_of(&self, subscriber: &str, message: i64) -> String {
        let s = self.db.subscriber_by_email(&EmailAddress::parse(subscriber).unwrap()).await.unwrap().unwrap();
        self.db.message_in_mailbox(s.mailbox_id, message).await.unwrap().unwrap().status
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused() {
    let site = Site::new().await;
    let (mut alice, message) = site.subscriber("alice", "cheap pills").await;
    // The session cookie alone (what a forged cross-site form would carry at best) is not enough.
    let (status, body, _) = site.post(&mut alice, &format!("/account/messages/{message}/delete"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) =
        site.post(&mut alice, &format!("/account/messages/{message}/delete"), &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(site.status_of("alice@web.test", message).await, "held");
    // A login form posted without the form cookie's token is refused too.
    let mut stranger = Browser::default();
    let (status, _, _) =
        site.post(&mut stranger, "/login", &[("email", "alice@web.test"), ("password", "a long password")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // With the token it works.
    site.get(&mut alice, "/account").await;
    let csrf = alice.csrf.clone();
    let (status, _, response) =
        site.post(&mut alice, &format!("/account/messages/{message}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/account?done=delete");
    assert_eq!(site.status_of("alice@web.test", message).await, "deleted_spam");
}

#[tokio::test]
async fn a_subscriber_cannot_reach_another_subscribers_quarantine() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "alice's own").await;
    let (_, bobs) = site.subscriber("bob", "bob's secret").await;
    let (status, page) = site.get(&mut alice, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("alice&#39;s own") || page.contains("alice's own"), "{page}");
    assert!(!page.contains("bob"), "{page}");
    // Bob's message id in alice's URL: not found, and untouched.
    let csrf = alice.csrf.clone();
    for action in ["approve", "deliver", "delete"] {
        let (status, _, _) =
            site.post(&mut alice, &format!("/account/messages/{bobs}/{action}"), &[("csrf", &csrf)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(site.status_of("bob@web.test", bobs).await, "held");
    // Without a session the account pages send the browser to the login page.
    let (status, _) = site.get(&mut Browser::default(), "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_response_forbids_framing_sniffing_and_referers() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    let pages = [
        ("/", &mut Browser::default()),
        ("/account", &mut alice),
        ("/static/quorum.css", &mut Browser::default()),
        ("/no-such-page", &mut Browser::default()),
    ];
    for (path, browser) in pages {
        let (_, _, response) = site.send(browser, Request::get(path).body(Body::empty()).unwrap()).await;
        let h = response.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
}

#[tokio::test]
async fn a_login_always_starts_a_new_session() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    let first = alice.cookies.iter().find(|(k, _)| k == "quorum_session").unwrap().1.clone();
    // A session id planted in the browser before the login (session fixation) is not
    // adopted: the login sets a new one, and the planted one opens nothing.
    alice.cookies.retain(|(k, _)| k != "quorum_session");
    alice.cookies.push(("quorum_session".into(), "planted-by-an-attacker".into()));
    site.get(&mut alice, "/login").await;
    let csrf = alice.csrf.clone();
    let form = [("csrf", csrf.as_str()), ("email", "alice@web.test"), ("password", "a long password")];
    let (status, _, _) = site.post(&mut alice, "/login", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let second = alice.cookies.iter().find(|(k, _)| k == "quorum_session").unwrap().1.clone();
    assert!(second != first && second != "planted-by-an-attacker", "{second}");
    let mut planted = Browser::default();
    planted.cookies.push(("quorum_session".into(), "planted-by-an-attacker".into()));
    assert_eq!(site.get(&mut planted, "/account").await.0, StatusCode::SEE_OTHER);
    assert_eq!(site.get(&mut alice, "/account").await.0, StatusCode::OK);
}

#[tokio::test]
async fn operator_pages_refuse_subscribers_and_serve_operators() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    for path in ["/admin", "/admin/correlation", "/admin/trust", "/admin/keys?kind=url", "/api/admin/keys"] {
        let (status, _) = site.get(&mut alice, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let (status, _) = site.get(&mut Browser::default(), path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path} without a session");
    }
    let mut ops = site.operator().await;
    let (status, page) = site.get(&mut ops, "/admin/correlation").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="correlation""#), "{page}");
    // The evidence tables, one kind of key at a time; the domains' old address still works.
    let row = KeyRow {
        kind: "url".into(),
        name: "pills.example".into(),
        logit: 9.2,
        spam_units: 4,
        ham_units: 0,
        computed_at: 1,
    };
    site.db.write_statistics(&StatisticsUpdate { keys: vec![row], ..Default::default() }).await.unwrap();
    let (status, page) = site.get(&mut ops, "/admin/keys?kind=url").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<td>pills.example</td><td>+9.20</td><td>0.9998990</td><td>4</td><td>0</td>"), "{page}");
    let (_, page) = site.get(&mut ops, "/admin/keys").await;
    assert!(page.contains("Evidence per key: domain") && !page.contains("pills.example"), "{page}");
    let (_, json) = site.get(&mut ops, "/api/admin/keys?kind=url").await;
    assert!(json.contains(r#""name":"pills.example""#), "{json}");
    let (status, _) = site.get(&mut ops, "/admin/domains").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    let (status, json) = site.get(&mut ops, "/api/admin/trust").await;
    assert_eq!(status, StatusCode::OK);
    assert!(json.starts_with('['), "{json}");
    // An operator is not a subscriber: the account pages are not theirs.
    let (status, _) = site.get(&mut ops, "/account").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // POP3 passwords never appear anywhere.
    let (_, dashboard) = site.get(&mut ops, "/admin").await;
    assert!(!dashboard.contains("password_enc"));
}

#[tokio::test]
async fn a_hundred_rapid_wrong_logins_are_throttled() {
    let site = Site::new().await;
    site.subscriber("alice", "x").await;
    let mut attacker = Browser::default();
    site.get(&mut attacker, "/login").await;
    let csrf = attacker.csrf.clone();
    let mut answers = std::collections::BTreeMap::new();
    for i in 0..100 {
        let (status, _, _) = site
            .post(
                &mut attacker,
                "/login",
                &[("csrf", &csrf), ("email", "alice@web.test"), ("password", &format!("guess {i}"))],
            )
            .await;
        *answers.entry(status.as_u16()).or_insert(0) += 1;
    }
    // Ten tries per 15 minutes ([web] attempts_per_15_minutes), then 429.
    assert_eq!(answers, [(401, 10), (429, 90)].into_iter().collect(), "{answers:?}");
    // Even the right password waits now: guessing cannot continue.
    let (status, _, _) = site
        .post(&mut attacker, "/login", &[("csrf", &csrf), ("email", "alice@web.test"), ("password", "a long password")])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn approving_on_the_web_is_the_summary_answer_a() {
    let site = Site::new().await;
    let (mut alice, message) = site.subscriber("alice", "from a friend").await;
    site.get(&mut alice, "/account").await;
    let csrf = alice.csrf.clone();
    let (status, _, _) =
        site.post(&mut alice, &format!("/account/messages/{message}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(site.status_of("alice@web.test", message).await, "releasing");
    let s = site.db.subscriber_by_email(&EmailAddress::parse("alice@web.test").unwrap()).await.unwrap().unwrap();
    let approved = site.db.all_approved_senders(s.subscriber_id).await.unwrap();
    assert_eq!(approved, ["spammer@bulk.example"]);
    let votes = site.db.votes_after(Default::default(), 10).await.unwrap();
    assert_eq!(votes.iter().map(|v| v.verdict.as_str()).collect::<Vec<_>>(), ["approve"]);
    let (_, page) = site.get(&mut alice, "/account?done=approve").await;
    assert!(page.contains("Sender approved") && page.contains("Nothing is held"), "{page}");
    // The approved senders page lists it, and removing it works.
    let (_, page) = site.get(&mut alice, "/account/senders").await;
    assert!(page.contains("spammer@bulk.example"));
    let csrf = alice.csrf.clone();
    site.post(&mut alice, "/account/senders/remove", &[("csrf", &csrf), ("address", "spammer@bulk.example")]).await;
    assert!(site.db.all_approved_senders(s.subscriber_id).await.unwrap().is_empty());
    // Import a list; a bad line is named.
    let (_, page, _) = site
        .post(
            &mut alice,
            "/account/senders",
            &[("csrf", &csrf), ("addresses", "a@x.example\nb@y.example, not-an-address")],
        )
        .await;
    assert!(page.contains("2 added") && page.contains("not-an-address"), "{page}");
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_an_emailed_link_that_works_once() {
    let site = Site::with_mailer(true).await;
    let stack = MailStack::get();
    let user = stack.new_user("reset");
    site.subscriber_as(&user, "x").await;
    let mut browser = Browser::default();
    let (_, page) = site.get(&mut browser, "/reset").await;
    assert!(page.contains("Send me a link"));
    let csrf = browser.csrf.clone();
    // An unknown address gets the same answer (no way to learn who is signed up).
    let (status, unknown, _) =
        site.post(&mut browser, "/reset", &[("csrf", &csrf), ("email", "nobody@web.test")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, known, _) = site.post(&mut browser, "/reset", &[("csrf", &csrf), ("email", &user.email)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown.replace(&csrf, ""), known.replace(&csrf, ""));
    // The link arrives in the Dovecot mailbox, marked so that Quorum leaves it in the Inbox.
    let mut mail = None;
    for _ in 0..100 {
        mail = stack
            .retr_all(&user)
            .await
            .into_iter()
            .map(|(_, m)| String::from_utf8_lossy(&m).into_owned())
            .find(|m| m.contains("/reset/"));
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mail = mail.expect("the reset email arrived");
    assert!(mail.contains("X-Quorum-Release:"), "{mail}");
    let link = mail.lines().find_map(|l| l.find("/reset/").map(|i| l[i..].trim().to_string())).unwrap();
    // A tampered link is refused.
    let (status, _) = site.get(&mut Browser::default(), &format!("{}x", link)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut owner = Browser::default();
    let (status, _) = site.get(&mut owner, &link).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = owner.csrf.clone();
    let (status, _, _) = site.post(&mut owner, &link, &[("csrf", &csrf), ("password", "short")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, response) =
        site.post(&mut owner, &link, &[("csrf", &csrf), ("password", "a brand new password")]).await;
    assert_eq!((status, &response.headers()[header::LOCATION]), (StatusCode::SEE_OTHER, &"/account".parse().unwrap()));
    let (status, _) = site.get(&mut owner, "/account").await;
    assert_eq!(status, StatusCode::OK, "logged in");
    assert_eq!(site.login(&user.email, "a long password").await, StatusCode::UNAUTHORIZED);
    assert_eq!(site.login(&user.email, "a brand new password").await, StatusCode::SEE_OTHER);
    // The link worked once.
    let (status, _) = site.get(&mut Browser::default(), &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_change_the_schedule_and_passwords_and_say_what_is_wrong() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    let (status, page) = site.get(&mut alice, "/account/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"value="07:00,19:00""#) && page.contains(r#"value="90""#), "{page}");
    let csrf = alice.csrf.clone();
    let (status, page, _) = site
        .post(
            &mut alice,
            "/account/settings",
            &[("csrf", &csrf), ("approved_days", "0"), ("summary_times", "8:00"), ("time_zone", "Mars/Base")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Approved days") && page.contains("Summary times"), "{page}");
    assert!(page.contains(r#"value="Mars/Base""#), "what was typed stays: {page}");
    // Valid schedule fields plus `extra`.
    let valid = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![("approved_days", "30"), ("summary_times", "08:00"), ("time_zone", "Europe/Berlin")];
        form.extend_from_slice(extra);
        form
    };
    let mut save = async |extra: &[(&'static str, &'static str)]| {
        let mut form = valid(extra);
        form.push(("csrf", &csrf));
        let (status, page, _) = site.post(&mut alice, "/account/settings", &form).await;
        (status, page)
    };
    // A POP3 password the server refuses is not kept.
    let (status, page) = save(&[("pop3_password", "wrong")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Mailbox password: We could not use this mailbox: login failed"), "{page}");
    // A new web password needs the current one.
    let (status, page) = save(&[("new_password", "another long one"), ("current_password", "wrong")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Current password"), "{page}");
    let (status, page) = save(&[("new_password", "another long one"), ("current_password", "a long password")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved."));
    let s = site.db.subscriber_by_email(&EmailAddress::parse("alice@web.test").unwrap()).await.unwrap().unwrap();
    let settings = site.db.subscriber_settings(s.subscriber_id).await.unwrap().unwrap();
    assert_eq!(
        (settings.approved_days, settings.summary_times.as_str(), settings.time_zone.as_str()),
        (30, "08:00", "Europe/Berlin")
    );
    assert!(!settings.confirmations, "the unticked box turns confirmations off");
    assert_eq!(site.login("alice@web.test", "another long one").await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn operators_edit_providers_and_probes_and_see_the_charts() {
    let site = Site::new().await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    let mut ops = site.operator().await;
    // Alice's last poll failed: the dashboard names her mailbox with the error.
    let now = Timestamp::now();
    let leased = site.db.lease_due_mailboxes("w", now, Timestamp(now.0 + 60), 10).await.unwrap();
    let failed = PollOutcome {
        status: PollStatus::Error,
        error: Some("login failed: wrong password".into()),
        polled_at: now,
        next_poll_at: now,
        quarantined: 0,
        kept: 0,
    };
    site.db.finish_poll(leased[0].mailbox_id, "w", &failed).await.unwrap();
    let (status, page) = site.get(&mut ops, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The last 30 days") && page.matches("<svg").count() == 4, "{page}");
    let failing = &page[page.find(r#"id="failing""#).expect("the failing mailboxes")..];
    assert!(failing.contains("alice@web.test") && failing.contains("login failed: wrong password"), "{page}");
    let request = Request::get("/admin").header(header::ACCEPT, "application/json").body(Body::empty()).unwrap();
    let (_, json, _) = site.send(&mut ops, request).await;
    let dashboard: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(dashboard["history"].as_array().unwrap().len(), 30, "{json}");
    assert_eq!(dashboard["stats"]["held"], 1);
    assert_eq!(dashboard["workers"]["mailboxes"], 1);

    // The provider table.
    let csrf = ops.csrf.clone();
    let row = [
        ("csrf", csrf.as_str()),
        ("domain", "mail.example"),
        ("ptr_required", "on"),
        ("ptr_domains", "relays.example"),
    ];
    let (status, _, _) = site.post(&mut ops, "/admin/providers", &row).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = site.db.providers().await.unwrap().into_iter().find(|p| p.domain == "mail.example").unwrap();
    assert!(saved.ptr_required && saved.ptr_supported && !saved.major_isp);
    assert_eq!(saved.ptr_domains, ["relays.example"]);
    let (status, page, _) =
        site.post(&mut ops, "/admin/providers", &[("csrf", &csrf), ("domain", "not a domain")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(r#"id="error""#) && page.contains(r#"value="not a domain""#), "{page}");
    site.post(&mut ops, "/admin/providers/remove", &[("csrf", &csrf), ("domain", "mail.example")]).await;
    assert!(!site.db.providers().await.unwrap().iter().any(|p| p.domain == "mail.example"));
    // Subscribers cannot edit it.
    let alice_csrf = alice.csrf.clone();
    let (status, _, _) =
        site.post(&mut alice, "/admin/providers", &[("csrf", &alice_csrf), ("domain", "x.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Spam-probe flags.
    let (status, _, _) =
        site.post(&mut ops, "/admin/probes", &[("csrf", &csrf), ("email", "alice@web.test"), ("probe", "on")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(site.db.spam_probes().await.unwrap().len(), 1);
    let (_, page) = site.get(&mut ops, "/admin/probes").await;
    assert!(page.contains("<li>alice@web.test</li>"), "{page}");
    site.post(&mut ops, "/admin/probes", &[("csrf", &csrf), ("email", "alice@web.test"), ("probe", "off")]).await;
    assert!(site.db.spam_probes().await.unwrap().is_empty());
    let (status, _, _) =
        site.post(&mut ops, "/admin/probes", &[("csrf", &csrf), ("email", "nobody@web.test"), ("probe", "on")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = site.get(&mut ops, "/admin/trust?status=probe").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn disabling_the_account_releases_everything_and_ends_the_session() {
    let site = Site::new().await;
    let (mut alice, message) = site.subscriber("alice", "still held").await;
    site.get(&mut alice, "/account").await;
    let csrf = alice.csrf.clone();
    let (status, _, response) = site.post(&mut alice, "/account/disable", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, &response.headers()[header::LOCATION]),
        (StatusCode::SEE_OTHER, &"/?disabled=1".parse().unwrap())
    );
    assert_eq!(site.status_of("alice@web.test", message).await, "releasing");
    let s = site.db.subscriber_by_email(&EmailAddress::parse("alice@web.test").unwrap()).await.unwrap().unwrap();
    assert!(!s.enabled);
    let (status, _) = site.get(&mut alice, "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(site.login("alice@web.test", "a long password").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signups_are_rate_limited_and_say_what_failed() {
    let site = Site::new().await;
    let mut visitor = Browser::default();
    site.get(&mut visitor, "/signup").await;
    let csrf = visitor.csrf.clone();
    // Port 1 on loopback refuses at once: each attempt is a real (failed) mailbox check.
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..12 {
        let (status, page, _) = site.post(&mut visitor, "/signup", &signup_form(&csrf, "1")).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(page.contains("connect failed") && page.contains("Check the host name and port"), "{page}");
            assert!(page.contains(r#"value="new@web.test""#) && !page.contains(r#"value="p""#), "{page}");
        }
        *answers.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(answers, [(422, 10), (429, 2)].into_iter().collect(), "{answers:?}");
    assert!(site.db.list_subscribers().await.unwrap().is_empty());
}

/// A valid signup of new@web.test for a plain POP3 server on loopback at `port`.
fn signup_form<'a>(csrf: &'a str, port: &'a str) -> [(&'static str, &'a str); 11] {
    [
        ("csrf", csrf),
        ("email", "new@web.test"),
        ("host", "127.0.0.1"),
        ("port", port),
        ("security", "plain"),
        ("username", "u"),
        ("password", "p"),
        ("approved_days", "90"),
        ("summary_times", "07:00,19:00"),
        ("time_zone", "UTC"),
        ("web_password", "long enough password"),
    ]
}

/// A POP3 server that accepts connections and never says a word (a firewall that swallows
/// packets looks the same to a client).
async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    port
}

/// An old POP3 server without UIDL: greets, logs anyone in, answers STAT, refuses UIDL.
async fn server_without_uidl() -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"+OK old server ready\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let command = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match command.as_str() {
                        "CAPA" => b"+OK\r\nUSER\r\n.\r\n",
                        "STAT" => b"+OK 0 0\r\n",
                        "UIDL" => b"-ERR unknown command\r\n",
                        "QUIT" => b"+OK bye\r\n",
                        _ => b"+OK\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn signup_says_what_to_do_when_the_server_is_silent_or_has_no_uidl() {
    let site = Site::new().await;
    let mut visitor = Browser::default();
    site.get(&mut visitor, "/signup").await;
    let csrf = visitor.csrf.clone();
    for (port, expected) in [
        (silent_server().await, "does your provider allow POP3 from outside its network?"),
        (server_without_uidl().await, "Quorum needs UIDL to recognise messages"),
    ] {
        let (status, page, _) = site.post(&mut visitor, "/signup", &signup_form(&csrf, &port.to_string())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains(expected), "{expected}: {page}");
    }
    assert!(site.db.list_subscribers().await.unwrap().is_empty());
}

#[tokio::test]
async fn operators_see_the_campaign_report_and_export_block_lists() {
    let site = Site::new().await;
    quorum_tests::botnet_spam(&site.db, &Keys::from_master_text(&Keys::generate_master()).unwrap()).await;
    let (mut alice, _) = site.subscriber("alice", "x").await;
    let paths = ["/admin/campaigns", "/api/admin/campaigns", "/admin/blocklist/postfix"];
    for path in paths {
        assert_eq!(site.get(&mut alice, path).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(site.get(&mut Browser::default(), path).await.0, StatusCode::SEE_OTHER, "{path} without a session");
    }
    let mut ops = site.operator().await;
    let (status, page) = site.get(&mut ops, "/admin/campaigns?since=1h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="campaigns""#) && page.contains("6 spam messages"), "{page}");
    // The botnet's /24 and its subject pattern, each one group with its timeline.
    assert!(page.contains("network:103.176.192.0/24\">103.176.192.0/24</a></td><td>6</td><td>1</td>"), "{page}");
    assert!(page.contains("your tool set</a></td><td>6</td>"), "{page}");
    assert!(page.contains(r#"<rect x="92" y="0" width="3" height="20">"#), "the last bar, now: {page}");
    // Drill-down: the group's messages.
    let (status, page) = site.get(&mut ops, "/admin/campaigns?since=1h&group=network:103.176.192.0/24").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("<td>probe_spam</td>").count(), 6, "{page}");
    let (_, json) = site.get(&mut ops, "/api/admin/campaigns?since=1h").await;
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["messages"], 6, "{report:#}");
    assert!(report["groups"].as_array().unwrap().iter().any(|g| g["by"] == "network" && g["messages"] == 6));
    // The export, the CLI's text: three hosts of the /24, two reports each; merged.
    let (status, text) = site.get(&mut ops, "/admin/blocklist/postfix?min=2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.lines().any(|l| l == "103.176.192.0/24\tREJECT spam source (6 reports to Quorum)"), "{text}");
    let (_, text) = site.get(&mut ops, "/admin/blocklist/cidr").await;
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 0, "two reports per host are too few: {text}");
    assert_eq!(site.get(&mut ops, "/admin/blocklist/xml").await.0, StatusCode::NOT_FOUND);
    let (status, page) = site.get(&mut ops, "/admin/campaigns?since=forever").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("expected a number and a unit, like 12h or 7d"), "{page}");
}
