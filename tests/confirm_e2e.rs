//! Confirmations end to end (SPEC 2.4), with the real `quorum` binary, Dovecot, Postfix and
//! the in-process DNS server: who gets one, a confirmation to an address that does not exist
//! bouncing through Postfix's own DSN, a sender's reply delivering that one message (and not
//! approving the sender), and a confirmation coming back to the subscriber's own mailbox.

use std::process::Command;

use quorum_domain::{EmailAddress, Keys};
use quorum_storage::{Database, QuarantinedMessage, Sqlite};
use quorum_tests::{
    MailStack, TestUser,
    dns::{TestDns, Zones},
    fresh_sqlite, quorum_service, run, unique,
};

struct Env {
    url: String,
    key: String,
    user: TestUser,
    robot: TestUser,
    dns: TestDns,
    _dir: tempfile::TempDir,
}

/// Mail sent through 81.169.146.7, which quorum.test's SPF record authorises.
const GOOD_IP: &str = "81.169.146.7";
/// Not authorised: SPF fails (`-all`), and there is no DKIM signature.
const BAD_IP: &str = "203.113.5.9";

impl Env {
    async fn new(tag: &str) -> Env {
        let stack = MailStack::get();
        let (dir, url) = fresh_sqlite();
        let zones = Zones::new().zone("quorum.test").txt("quorum.test", "v=spf1 ip4:81.169.146.0/24 -all");
        let env = Env {
            url,
            key: Keys::generate_master(),
            user: stack.new_user(tag),
            // Short: the reply address adds `+<id>.<day>.<token>` within 64 characters.
            robot: stack.new_user("r"),
            dns: TestDns::start(zones).await,
            _dir: dir,
        };
        let user = &env.user;
        let mut add = env.cmd(&["subscriber", "add", &user.email, "--host", "127.0.0.1"]);
        add.args(["--port", &stack.pop3_port.to_string(), "--security", "plain", "--user", &user.email])
            .env("QUORUM_POP3_PASSWORD", &user.password);
        let (ok, out) = run(add);
        assert!(ok, "{out}");
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = quorum_service(&self.url, &self.key, Some(&self.robot));
        cmd.env("QUORUM_DNS__NAMESERVERS", self.dns.addr.to_string()).args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = run(self.cmd(args));
        assert!(ok, "quorum {args:?}: {out}");
        out
    }

    async fn messages(&self) -> Vec<QuarantinedMessage> {
        let db = Sqlite::connect(&self.url).await.unwrap();
        let s = db.subscriber_by_email(&EmailAddress::parse(&self.user.email).unwrap()).await.unwrap().unwrap();
        db.quarantined(s.mailbox_id).await.unwrap()
    }

    async fn status_of(&self, subject: &str) -> String {
        let messages = self.messages().await;
        let m = messages.iter().find(|m| m.subject.as_deref() == Some(subject));
        m.unwrap_or_else(|| panic!("{subject} not stored: {messages:?}")).status.clone()
    }

    async fn confirmed(&self) -> Vec<String> {
        let db = Sqlite::connect(&self.url).await.unwrap();
        let mut out = Vec::new();
        for m in self.messages().await {
            if let Some(c) = db.confirmation(m.id).await.unwrap() {
                out.push(c.sender);
            }
        }
        out
    }
}

/// Mail from `from` handed to the subscriber's provider by `ip`.
fn mail(from: &str, ip: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nReceived: from out.sender.example (out.sender.example [{ip}])\r\n\tby mx1.isp.example (Postfix) with ESMTP id 4A1B2C; Wed, 25 Nov 2026 10:00:00 +0000\r\n\
{extra}From: {from}\r\nTo: someone@isp.example\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\nHello.\r\n",
        unique()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_bounce_reply_and_limits() {
    let stack = MailStack::get();
    let env = Env::new("confirm").await;
    let friend = stack.new_user("friend");
    let nobody = format!("nobody-{}@quorum.test", unique());
    for raw in [
        mail(&nobody, GOOD_IP, "From someone who does not exist", ""),
        mail(&friend.email, GOOD_IP, "From a friend", ""),
        mail(&friend.email, GOOD_IP, "From a friend, again", ""),
        mail(&format!("spoofed-{}@quorum.test", unique()), BAD_IP, "SPF fails", ""),
        mail(&friend.email, GOOD_IP, "Newsletter", "List-Id: <news.quorum.test>\r\n"),
        mail(&friend.email, GOOD_IP, "Bulk", "Precedence: bulk\r\n"),
    ] {
        stack.maildir_drop(&env.user, &raw);
    }
    env.ok(&["poll", &env.user.email]);
    // One confirmation each to the two authenticated, non-list senders (the friend's second
    // message falls under the 24-hour limit); none where SPF and DKIM fail, none to lists
    // or bulk mail.
    let mut confirmed = env.confirmed().await;
    confirmed.sort();
    let mut expected = vec![nobody.clone(), friend.email.clone()];
    expected.sort();
    assert_eq!(confirmed, expected);

    // Postfix accepted the confirmation to the non-existent address, Dovecot refused it,
    // and Postfix's DSN went to the confirmation's VERP address: the robot mailbox.
    stack.wait_for_messages(&env.robot, 1).await;
    // The friend got theirs, with its reply address.
    stack.wait_for_messages(&friend, 1).await;
    let confirmation = stack.retr_all(&friend).await.pop().unwrap().1;
    let parsed = mail_parser::MessageParser::default().parse(&confirmation).unwrap();
    assert_eq!(parsed.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    let verp = parsed.reply_to().and_then(|r| r.first()).and_then(|a| a.address()).unwrap().to_string();
    assert!(verp.contains("+cnfm-"), "{verp}");
    let reply = format!(
        "From: {}\r\nTo: {verp}\r\nSubject: Re: {}\r\nMessage-ID: <{}@test>\r\n\r\nYes, that was me.\r\n",
        friend.email,
        parsed.subject().unwrap(),
        unique()
    );
    stack
        .smtp_send(
            &TestUser { email: verp.clone(), password: env.robot.password.clone() },
            &friend.email,
            reply.as_bytes(),
        )
        .await;
    stack.wait_for_messages(&env.robot, 2).await;

    let out = env.ok(&["robot", "poll"]);
    assert!(out.contains("2 answers to confirmations") && out.contains("1 releases delivered"), "{out}");
    assert_eq!(env.status_of("From someone who does not exist").await, "deleted_nonexistent");
    assert_eq!(env.status_of("From a friend").await, "released");
    assert_eq!(env.status_of("From a friend, again").await, "held", "a reply releases one message only");
    // The released message arrives (by SMTP) with its release marker, and stays there.
    stack.wait_for_messages(&env.user, 1).await;
    // The friend is not approved: the next message from them is held again.
    stack.maildir_drop(&env.user, &mail(&friend.email, GOOD_IP, "Third", ""));
    env.ok(&["poll", &env.user.email]);
    assert_eq!(env.status_of("Third").await, "held");
    let inbox: Vec<String> =
        stack.retr_all(&env.user).await.into_iter().map(|(_, r)| String::from_utf8_lossy(&r).into_owned()).collect();
    assert!(
        inbox.iter().any(|m| m.contains("Subject: From a friend\r\n")),
        "the released message is in the Inbox: {inbox:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_that_comes_back_to_the_same_mailbox_deletes_both() {
    let stack = MailStack::get();
    let env = Env::new("alias").await;
    // The subscriber's own plus-address is an alias of the same maildrop (seed 002's
    // zstom@/contactform@coolpage.com).
    let (local, domain) = env.user.email.split_once('@').unwrap();
    let alias = format!("{local}+alias@{domain}");
    stack.maildir_drop(&env.user, &mail(&alias, GOOD_IP, "Spam from my own alias", ""));
    env.ok(&["poll", &env.user.email]);
    assert_eq!(env.confirmed().await, [alias]);
    stack.wait_for_messages(&env.user, 1).await;
    env.ok(&["poll", &env.user.email]);
    let messages = env.messages().await;
    let original = messages.iter().find(|m| m.subject.as_deref() == Some("Spam from my own alias")).unwrap();
    assert_eq!(original.status, "deleted_forged");
    assert!(original.reason.as_deref().unwrap().contains("alias of this mailbox"), "{original:?}");
    assert!(messages.iter().any(|m| m.status == "own_confirmation"), "{messages:?}");
    assert!(stack.retr_all(&env.user).await.is_empty(), "the confirmation left the mailbox too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_can_be_turned_off_per_subscriber() {
    let stack = MailStack::get();
    let env = Env::new("no-confirm").await;
    env.ok(&["subscriber", "confirmations", &env.user.email, "off"]);
    let friend = stack.new_user("friend");
    stack.maildir_drop(&env.user, &mail(&friend.email, GOOD_IP, "Hello", ""));
    env.ok(&["poll", &env.user.email]);
    assert_eq!(env.status_of("Hello").await, "held");
    assert!(env.confirmed().await.is_empty());
}

/// The worker dies after the poll's commit, before any confirmation went out, and again
/// between claiming one and sending it: each queued confirmation is sent exactly once by
/// the runs after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_survives_a_crash_and_goes_out_once() {
    let stack = MailStack::get();
    let env = Env::new("confirm-crash").await;
    let friend = stack.new_user("friend");
    stack.maildir_drop(&env.user, &mail(&friend.email, GOOD_IP, "Before the crash", ""));
    let mut crashing = env.cmd(&["poll", &env.user.email]);
    crashing.env("QUORUM_FAILPOINT", "after-commit");
    let (ok, out) = run(crashing);
    assert!(!ok && out.contains("fail point `after-commit` reached"), "{out}");
    assert!(env.confirmed().await.is_empty(), "nothing was sent before the crash");

    // The next run dies between the claim and the send; the one after sends it.
    let mut crashing = env.cmd(&["poll", "--take-over", &env.user.email]);
    crashing.env("QUORUM_FAILPOINT", "after-confirmation-claim");
    let (ok, out) = run(crashing);
    assert!(!ok && out.contains("fail point `after-confirmation-claim` reached"), "{out}");
    env.ok(&["poll", "--take-over", &env.user.email]);
    stack.wait_for_messages(&friend, 1).await;
    // Later polls send nothing more.
    env.ok(&["poll", &env.user.email]);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let inbox = stack.retr_all(&friend).await;
    assert_eq!(inbox.len(), 1, "exactly one confirmation");
    let parsed = mail_parser::MessageParser::default().parse(&inbox[0].1).unwrap();
    assert_eq!(parsed.subject(), Some("Held: Before the crash"));
    assert_eq!(env.confirmed().await, std::slice::from_ref(&friend.email));
    assert_eq!(env.status_of("Before the crash").await, "held");
}
