//! Forgery checks in the running service: the real `quorum` binary polls a Dovecot
//! mailbox, asks the in-process DNS server of this test, deletes what is proven forged,
//! keeps the evidence with every message, lets no spoofed approved sender through, and,
//! when DNS fails, holds mail and decides it before the summary.

use std::process::Command;

use quorum_domain::{EmailAddress, Keys};
use quorum_storage::{Database, QuarantinedMessage, Sqlite};
use quorum_tests::{
    MailStack, TestUser,
    dns::{TestDns, Zones, silent_dns},
    fresh_sqlite, quorum_service, run,
    seed::{SEED_FORGED, SEED_GENUINE, seed_zones},
};

struct Env {
    url: String,
    key: String,
    user: TestUser,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new(tag: &str) -> Env {
        let stack = MailStack::get();
        let (dir, url) = fresh_sqlite();
        let env = Env { url, key: Keys::generate_master(), user: stack.new_user(tag), _dir: dir };
        let user = &env.user;
        let mut add = env.cmd(None, &["subscriber", "add", &user.email, "--host", "127.0.0.1"]);
        add.args(["--port", &stack.pop3_port.to_string(), "--security", "plain", "--user", &user.email])
            .env("QUORUM_POP3_PASSWORD", &user.password);
        let (ok, out) = run(add);
        assert!(ok, "{out}");
        // The seed's row for web.de (seed 002: insert into dns values ('web.de','1','1','1','cinetic.de')).
        let (ok, out) = run(env
            .cmd(None, &["providers", "add", "web.de", "--major-isp", "--ptr-required", "--ns-matches", "cinetic.de"]));
        assert!(ok && out.contains("ns_matches=cinetic.de"), "{out}");
        env
    }

    /// `quorum ARGS` asking `dns` for the forgery checks, with short DNS timeouts.
    fn cmd(&self, dns: Option<std::net::SocketAddr>, args: &[&str]) -> Command {
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(args).env("QUORUM_DNS__TIMEOUT_MS", "300").env("QUORUM_DNS__CHECK_BUDGET_MS", "1000");
        if let Some(dns) = dns {
            cmd.env("QUORUM_DNS__NAMESERVERS", dns.to_string());
        }
        cmd
    }

    async fn messages(&self) -> Vec<QuarantinedMessage> {
        let db = Sqlite::connect(&self.url).await.unwrap();
        let s = db.subscriber_by_email(&EmailAddress::parse(&self.user.email).unwrap()).await.unwrap().unwrap();
        db.quarantined(s.mailbox_id).await.unwrap()
    }
}

/// Mail from `from` handed over by `ip`, the way the subscriber's provider recorded it.
fn direct(from: &str, ip: &str, subject: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nReceived: from out.sender.example (out.sender.example [{ip}])\r\n\tby mx1.isp.example (Postfix) with ESMTP id 4A1B2C; Tue, 24 Nov 2026 10:00:00 +0000\r\n\
From: {from}\r\nTo: me@isp.example\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\nHello.\r\n",
        quorum_tests::unique()
    )
    .into_bytes()
}

fn zones() -> Zones {
    seed_zones()
        .zone("bank.example")
        .txt("bank.example", "v=spf1 ip4:81.169.146.0/24 -all")
        .txt("_dmarc.bank.example", "v=DMARC1; p=none")
}

fn by_subject<'a>(messages: &'a [QuarantinedMessage], subject: &str) -> &'a QuarantinedMessage {
    messages.iter().find(|m| m.subject.as_deref() == Some(subject)).unwrap_or_else(|| panic!("{subject} not stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_deletes_forgeries_keeps_evidence_and_stops_spoofed_approved_senders() {
    let stack = MailStack::get();
    let env = Env::new("forgery");
    let dns = TestDns::start(zones()).await;
    let (ok, out) = run(env.cmd(None, &["subscriber", "approve", &env.user.email, "billing@bank.example"]));
    assert!(ok, "{out}");
    for raw in [
        SEED_FORGED.as_bytes().to_vec(),
        SEED_GENUINE.as_bytes().to_vec(),
        direct("billing@bank.example", "81.169.146.7", "Your statement"),
        direct("billing@bank.example", "203.113.5.9", "Urgent: verify your account"),
    ] {
        stack.maildir_drop(&env.user, &raw);
    }
    let (ok, out) = run(env.cmd(Some(dns.addr), &["poll", &env.user.email]));
    assert!(ok, "{out}");

    let stored = env.messages().await;
    assert_eq!(stored.len(), 3, "the genuine approved message stays in the Inbox: {stored:?}");
    let forged = by_subject(&stored, "of 9 but");
    assert_eq!(forged.status, "deleted_forged");
    assert_eq!(forged.reason.as_deref(), Some("forged: PTR of 211.191.62.186 missing, claims web.de"));
    let genuine = by_subject(&stored, "Test from web.de");
    assert_eq!((genuine.status.as_str(), genuine.reason.as_deref()), ("held", None));
    let spoofed = by_subject(&stored, "Urgent: verify your account");
    assert_eq!((spoofed.status.as_str(), spoofed.reason.as_deref()), ("held", Some("DMARC fails (p=none)")));
    let inbox: Vec<String> = stack
        .retr_all(&env.user)
        .await
        .into_iter()
        .map(|(_, raw)| String::from_utf8_lossy(&raw).into_owned())
        .collect();
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("Subject: Your statement"));

    // The operator sees status and reason.
    let (ok, out) = run(env.cmd(None, &["subscriber", "quarantine", &env.user.email]));
    assert!(
        ok && out.contains("deleted_forged") && out.contains("(forged: PTR of 211.191.62.186 missing, claims web.de)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_down_holds_mail_and_the_summary_decides_it_once_dns_answers() {
    let stack = MailStack::get();
    let env = Env::new("forgery-dns-down");
    stack.maildir_drop(&env.user, SEED_FORGED.as_bytes());
    stack.maildir_drop(&env.user, SEED_GENUINE.as_bytes());

    // A resolver that never answers: the poll still finishes, nothing is deleted.
    let (silent, task) = silent_dns().await;
    let started = std::time::Instant::now();
    let (ok, out) = run(env.cmd(Some(silent), &["poll", &env.user.email]));
    assert!(ok, "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "poll took {:?}", started.elapsed());
    task.abort();
    let stored = env.messages().await;
    assert_eq!(stored.len(), 2);
    for m in &stored {
        assert_eq!(m.status, "held", "{m:?}");
        assert!(m.reason.as_deref().is_some_and(|r| r.starts_with("checks incomplete:")), "{m:?}");
    }

    // DNS answers again; the summary first re-runs the checks.
    let dns = TestDns::start(zones()).await;
    let (ok, out) = run(env.cmd(Some(dns.addr), &["summary", "send", &env.user.email]));
    assert!(ok, "{out}");
    let stored = env.messages().await;
    assert_eq!(by_subject(&stored, "of 9 but").status, "deleted_forged");
    let genuine = by_subject(&stored, "Test from web.de");
    assert_eq!((genuine.status.as_str(), genuine.reason.as_deref()), ("held", None));

    stack.wait_for_messages(&env.user, 1).await;
    let summary = stack.retr_all(&env.user).await.pop().unwrap().1;
    let parsed = mail_parser::MessageParser::default().parse(&summary).unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("1 deleted (of which 1 forged), 0 delivered. 1 held"), "{text}");
    assert!(text.contains("Test from web.de"), "{text}");
    assert!(text.contains("Deleted as forged since the last summary:"), "{text}");
    assert!(text.contains("(forged: PTR of 211.191.62.186 missing, claims web.de)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_classifies_files_without_changing_anything() {
    let env = Env::new("explain");
    let dns = TestDns::start(zones()).await;
    let forged = env._dir.path().join("forged.eml");
    let genuine = env._dir.path().join("genuine.eml");
    std::fs::write(&forged, SEED_FORGED).unwrap();
    std::fs::write(&genuine, format!("From shelby_moore@web.de  Wed Aug 18 15:18:14 2004\n{SEED_GENUINE}")).unwrap();
    let (ok, out) =
        run(env.cmd(Some(dns.addr), &["explain", "--json", forged.to_str().unwrap(), genuine.to_str().unwrap()]));
    assert!(ok, "{out}");
    let reports: Vec<serde_json::Value> =
        out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2, "{out}");
    assert_eq!(reports[0]["verdict"], "deleted_forged");
    assert_eq!(reports[0]["reason"], "forged: PTR of 211.191.62.186 missing, claims web.de");
    assert_eq!(reports[0]["checks"]["reverse_dns"]["outcome"], "fail");
    assert_eq!(
        (reports[1]["verdict"].as_str(), reports[1]["from"].as_str()),
        (Some("held"), Some("shelby_moore@web.de"))
    );
    assert!(
        reports[1]["statistics"]["not_spam"].as_f64().is_some()
            && reports[1]["fingerprint"]["words"].as_u64().is_some()
    );
    let (ok, text) = run(env.cmd(Some(dns.addr), &["explain", forged.to_str().unwrap()]));
    assert!(ok && text.contains("verdict: deleted_forged (forged: PTR of 211.191.62.186 missing"), "{text}");
    // Nothing was stored.
    assert!(env.messages().await.is_empty());
    let db = Sqlite::connect(&env.url).await.unwrap();
    assert!(db.trust_rows().await.unwrap().is_empty());
}
