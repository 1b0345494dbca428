//! The collaborative statistics in the running service: a spam probe's mail becomes spam
//! votes on arrival, the votes condemn a domain for another subscriber (deleted on arrival,
//! or before their summary), approved correspondents are untouched, and `quorum stats`
//! shows the tables.

use quorum_domain::{EmailAddress, Keys};
use quorum_storage::{Database, QuarantinedMessage, Sqlite};
use quorum_tests::{MailStack, TestUser, fresh_sqlite, quorum_service, run, unique};

struct Env {
    url: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let (dir, url) = fresh_sqlite();
        Env { url, key: Keys::generate_master(), _dir: dir }
    }

    fn ok(&self, args: &[&str]) -> String {
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(args).env("QUORUM_CONFIRMATIONS__ENABLED", "false");
        let (ok, out) = run(cmd);
        assert!(ok, "quorum {args:?}: {out}");
        out
    }

    fn subscriber(&self, tag: &str) -> TestUser {
        let stack = MailStack::get();
        let user = stack.new_user(tag);
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(["subscriber", "add", &user.email, "--host", "127.0.0.1", "--port", &stack.pop3_port.to_string()])
            .args(["--security", "plain", "--user", &user.email])
            .env("QUORUM_POP3_PASSWORD", &user.password);
        let (ok, out) = run(cmd);
        assert!(ok, "{out}");
        user
    }

    async fn messages(&self, user: &TestUser) -> Vec<QuarantinedMessage> {
        let db = Sqlite::connect(&self.url).await.unwrap();
        let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
        db.quarantined(s.mailbox_id).await.unwrap()
    }
}

fn mail(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: someone@quorum.test\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\nHello.\r\n",
        unique()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_votes_condemn_a_domain_for_everyone_else() {
    let stack = MailStack::get();
    let env = Env::new();
    let probe = env.subscriber("probe");
    let alice = env.subscriber("alice");
    env.ok(&["subscriber", "probe", &probe.email, "on"]);
    // Alice's message from the campaign's domain arrives before anyone voted: held.
    stack.maildir_drop(&alice, &mail("early@bulk-pharma.example", "early copy"));
    env.ok(&["poll", &alice.email]);
    // The probe receives the campaign from 15 sender addresses: 15 spam votes on arrival.
    for i in 0..15 {
        stack.maildir_drop(&probe, &mail(&format!("seller{i}@bulk-pharma.example"), "cheap pills"));
    }
    assert!(env.ok(&["poll", &probe.email]).contains("15 quarantined"));
    assert!(env.messages(&probe).await.iter().all(|m| m.status == "probe_spam"));

    // A new copy for alice is deleted on arrival; a correspondent's is not.
    stack.maildir_drop(&alice, &mail("seller99@bulk-pharma.example", "cheap pills"));
    stack.maildir_drop(&alice, &mail("friend@friends.example", "lunch"));
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    let by_subject = |s: &str| messages.iter().filter(|m| m.subject.as_deref() == Some(s)).collect::<Vec<_>>();
    let condemned = by_subject("cheap pills");
    assert_eq!(condemned.len(), 1);
    assert_eq!(condemned[0].status, "deleted_statistical");
    assert!(
        condemned[0].reason.as_deref().unwrap().starts_with("statistics: bulk-pharma.example is a spammer"),
        "{condemned:?}"
    );
    assert_eq!(by_subject("lunch")[0].status, "held");
    // The copy held before the votes is judged again before alice's summary.
    assert_eq!(by_subject("early copy")[0].status, "held");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("1 held messages"), "{out}");
    let messages = env.messages(&alice).await;
    let early = messages.iter().find(|m| m.subject.as_deref() == Some("early copy")).unwrap();
    assert_eq!(early.status, "deleted_statistical");

    // The operator's tables.
    let domains = env.ok(&["stats", "domains"]);
    let line = domains.lines().find(|l| l.starts_with("bulk-pharma.example")).expect("the domain is listed");
    assert!(line.contains("0.99999"), "{domains}");
    let trust = env.ok(&["stats", "trust"]);
    assert!(trust.lines().any(|l| l.starts_with(&probe.email) && l.contains("probe")), "{trust}");
}
