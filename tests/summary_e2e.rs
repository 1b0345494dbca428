//! The subscriber's loop over email, end to end with real Dovecot and Postfix: quarantine,
//! summary in the mailbox, a reply with A, R, a typo, an empty box and a removed line,
//! releases and receipt in the mailbox, and what the next mail and summary do.

use std::{io::Write, process::Command};

use quorum_domain::{EmailAddress, Keys};
use quorum_storage::{Database, Sqlite};
use quorum_summary::reply_text;
use quorum_tests::{MailStack, TestUser, fresh_sqlite, quorum_service, run};

struct Env {
    url: String,
    key: String,
    user: TestUser,
    /// The service's robot mailbox; summary replies go to `<its local part>+...`.
    robot: TestUser,
    _dir: tempfile::TempDir,
}

impl Env {
    /// A fresh database, a subscriber mailbox and a robot mailbox; the subscriber added with
    /// `extra` arguments to `subscriber add`.
    fn new(tag: &str, extra: &[&str]) -> Env {
        let stack = MailStack::get();
        let (dir, url) = fresh_sqlite();
        let env = Env {
            url,
            key: Keys::generate_master(),
            user: stack.new_user(tag),
            // Short: the reply address adds `+<id>.<day>.<token>` within 64 characters.
            robot: stack.new_user("r"),
            _dir: dir,
        };
        let user = &env.user;
        let mut add = env.cmd(&["subscriber", "add", &user.email, "--host", "127.0.0.1"]);
        add.args(["--port", &stack.pop3_port.to_string(), "--security", "plain", "--user", &user.email])
            .args(extra)
            .env("QUORUM_POP3_PASSWORD", &user.password);
        let (ok, out) = run(add);
        assert!(ok, "{out}");
        env
    }

    /// The robot mailbox as addressed by a summary's Reply-To (plus address, same maildrop).
    fn robot_at(&self, reply_to: &str) -> TestUser {
        TestUser { email: reply_to.to_string(), password: self.robot.password.clone() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = quorum_service(&self.url, &self.key, Some(&self.robot));
        cmd.args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = run(self.cmd(args));
        assert!(ok, "quorum {args:?}: {out}");
        out
    }
}

fn mail(from: &str, subject: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: x@quorum.test\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 06:00:00 +0000\r\n\r\nBody of {subject}\r\n.\r\n")
        .into_bytes()
}

/// The summary's line naming `subject`, as quoted in a reply, with `answer` in its box.
fn answer(summary_text: &str, subject: &str, answer: &str) -> String {
    let line = summary_text.lines().find(|l| l.contains(subject)).unwrap_or_else(|| panic!("{subject} not in summary"));
    format!("> {}", line.replacen("[ ]", &format!("[{answer}]"), 1))
}

fn header<'a>(raw: &'a str, name: &str) -> &'a str {
    raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("no {name} header"))
}

/// The Reply-To of the summary that lists exactly one held message.
fn second_summary_reply_to(inbox: &[(String, Vec<u8>)]) -> String {
    inbox
        .iter()
        .find(|(_, b)| reply_text(b).contains("1 held, listed below"))
        .map(|(_, b)| header(&String::from_utf8_lossy(b), "Reply-To").trim().to_string())
        .expect("second summary")
}

#[tokio::test]
async fn the_whole_loop_over_email() {
    let stack = MailStack::get();
    let env = Env::new("loop", &[]);
    let user = &env.user;

    let senders = [
        ("friend@good.example", "approve me"),
        ("once@ok.example", "deliver me"),
        ("typo@ok.example", "typo box"),
        ("spammer@bad.example", "delete me"),
        ("later@maybe.example", "keep me held"),
    ];
    for (from, subject) in senders {
        stack.maildir_drop(user, &mail(from, subject));
    }
    let originals = stack.retr_all(user).await;
    assert!(env.ok(&["poll", &user.email]).contains("5 quarantined"));

    // The summary arrives in the subscriber's own mailbox and stays there.
    let out = env.ok(&["summary", "send", &user.email]);
    assert!(out.contains("5 held messages"), "{out}");
    stack.wait_for_messages(user, 1).await;
    let summary_raw = stack.retr_all(user).await.remove(0).1;
    let summary_text = reply_text(&summary_raw);
    assert!(summary_text.contains("Type A in the box"), "{summary_text}");
    assert!(env.ok(&["poll", &user.email]).contains("0 quarantined, 1 left"));

    // The reply: A, R, a typo, an empty box, and one line removed.
    let summary_str = String::from_utf8_lossy(&summary_raw).into_owned();
    let reply_to = header(&summary_str, "Reply-To").trim().to_string();
    let body = [
        "Thanks!".to_string(),
        String::new(),
        "> Quorum summary".to_string(),
        answer(&summary_text, "approve me", "A"),
        answer(&summary_text, "deliver me", "R"),
        answer(&summary_text, "typo box", "?"),
        answer(&summary_text, "delete me", " "),
    ]
    .join("\r\n");
    let reply = format!("From: {}\r\nTo: {reply_to}\r\nSubject: Re: summary\r\n\r\n{body}\r\n", user.email);
    let reply_file = env._dir.path().join("reply.eml");
    std::fs::write(&reply_file, &reply).unwrap();
    // Sent like any mail: through Postfix to the robot mailbox (plus address), then read
    // by the robot poll, alongside a message that is no reply at all.
    stack.smtp_send(&env.robot_at(&reply_to), &user.email, reply.as_bytes()).await;
    stack.smtp_send(&env.robot, "someone@example.com", &mail("someone@example.com", "hello robot")).await;
    stack.wait_for_messages(&env.robot, 2).await;
    let out = env.ok(&["robot", "poll"]);
    assert!(
        out.contains(
            "1 replies applied, 0 rejected, 0 refusal notices, 0 answers to confirmations, 1 left for the operator; \
             3 releases delivered"
        ),
        "{out}"
    );
    let left = stack.retr_all(&env.robot).await;
    assert_eq!(left.len(), 1);
    assert!(String::from_utf8_lossy(&left[0].1).contains("hello robot"));

    // Summary + 3 releases + receipt, all left in the Inbox by the next poll.
    stack.wait_for_messages(user, 5).await;
    let inbox = stack.retr_all(user).await;
    for subject in ["approve me", "deliver me", "typo box"] {
        let original = &originals.iter().find(|(_, b)| String::from_utf8_lossy(b).contains(subject)).unwrap().1;
        assert_eq!(
            inbox.iter().filter(|(_, b)| b.ends_with(original)).count(),
            1,
            "{subject} delivered byte for byte, once"
        );
    }
    let receipt =
        inbox.iter().find(|(_, b)| String::from_utf8_lossy(b).contains("your reply was applied")).expect("receipt");
    assert!(String::from_utf8_lossy(&receipt.1).contains("1 approved, 3 delivered, 1 deleted"));
    assert!(env.ok(&["poll", &user.email]).contains("0 quarantined, 4 left"));

    // The approved sender's next message stays; the deleted sender's next one is deleted
    // without ever being shown.
    stack.maildir_drop(user, &mail("friend@good.example", "friend again"));
    stack.maildir_drop(user, &mail("spammer@bad.example", "spam again"));
    assert!(env.ok(&["poll", &user.email]).contains("1 quarantined, 1 left"));
    let out = env.ok(&["summary", "send", &user.email]);
    assert!(out.contains("1 held message"), "only the removed line is held again: {out}");
    stack.wait_for_messages(user, 7).await;
    let second = stack
        .retr_all(user)
        .await
        .into_iter()
        .map(|(_, b)| reply_text(&b))
        .find(|t| t.contains("Quorum summary for") && t.contains("1 held, listed below"))
        .expect("second summary");
    assert!(!second.contains("spam again") && !second.contains("delete me"), "{second}");
    assert!(second.contains("2 deleted") && second.contains("3 delivered"), "{second}");

    // The same reply again changes nothing.
    let out = env.ok(&["reply", "apply", reply_file.to_str().unwrap()]);
    assert!(out.contains("0 approved, 0 delivered, 0 deleted, 4 not found, 1 still held"), "{out}");

    // Forged: right token, wrong sender; right sender, wrong token. Rejected, and the
    // robot deletes them; nothing changes (the held message stays held, below).
    let forged = env._dir.path().join("forged.eml");
    let wrong_sender = reply.replacen(&format!("From: {}", user.email), "From: spammer@bad.example", 1);
    std::fs::write(&forged, &wrong_sender).unwrap();
    let (ok, out) = run(env.cmd(&["reply", "apply", forged.to_str().unwrap()]));
    assert!(!ok && out.contains("not from the subscriber"), "{out}");
    let token = reply_to.split('@').next().unwrap().rsplit('.').next().unwrap().to_string();
    let wrong_token = reply.replace(&token, "AAAAAAAAAAAAAAAAAAAAAA").replace("[ ]", "[A]");
    std::fs::write(&forged, &wrong_token).unwrap();
    let (ok, out) = run(env.cmd(&["reply", "apply", forged.to_str().unwrap()]));
    assert!(!ok && out.contains("token Quorum did not issue"), "{out}");
    stack.smtp_send(&env.robot_at(&reply_to), "spammer@bad.example", wrong_sender.as_bytes()).await;
    stack.smtp_send(&env.robot, user.email.as_str(), wrong_token.as_bytes()).await;
    stack.wait_for_messages(&env.robot, 3).await;
    let out = env.ok(&["robot", "poll"]);
    assert!(
        out.contains("0 replies applied, 2 rejected, 1 refusal notices, 0 answers to confirmations, 1 left"),
        "{out}"
    );
    // The subscriber's own refused reply is answered with why, the forger's is not; a second
    // refusal the same day sends no second notice.
    let notice = stack.wait_for_message_containing(user, "your reply could not be applied").await;
    assert!(
        notice.contains("token Quorum did not issue") && notice.contains("Auto-Submitted: auto-replied"),
        "{notice}"
    );
    stack.smtp_send(&env.robot, user.email.as_str(), wrong_token.as_bytes()).await;
    stack.wait_for_messages(&env.robot, 2).await;
    let out = env.ok(&["robot", "poll"]);
    assert!(out.contains("0 replies applied, 1 rejected, 0 refusal notices"), "{out}");

    let db = Sqlite::connect(&env.url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let held: Vec<String> = db.held(s.mailbox_id).await.unwrap().into_iter().filter_map(|m| m.subject).collect();
    assert_eq!(held, ["keep me held"]);

    // Resent summaries: a reply to the *old* summary still works for what is undecided...
    let late = format!(
        "From: {}\r\nTo: {reply_to}\r\nSubject: Re: summary\r\n\r\n{}\r\n",
        user.email,
        answer(&summary_text, "keep me held", "R")
    );
    let late_file = env._dir.path().join("late.eml");
    std::fs::write(&late_file, &late).unwrap();
    let out = env.ok(&["reply", "apply", late_file.to_str().unwrap()]);
    assert!(out.contains("0 approved, 1 delivered, 0 deleted, 0 not found"), "{out}");
    // ... and the same line answered through the newer summary is then a no-op.
    let second_reply_to = second_summary_reply_to(&stack.retr_all(user).await);
    let newer = late.replace(&reply_to, &second_reply_to).replace("[R]", "[ ]");
    std::fs::write(&late_file, &newer).unwrap();
    let out = env.ok(&["reply", "apply", late_file.to_str().unwrap()]);
    assert!(out.contains("0 approved, 0 delivered, 0 deleted, 1 not found"), "{out}");
    assert!(db.held(s.mailbox_id).await.unwrap().is_empty());
    let _ = std::io::stdout().flush();
}

#[tokio::test]
async fn a_summary_due_while_the_service_was_down_is_sent_once_and_old_mail_is_purged() {
    let stack = MailStack::get();
    let env = Env::new("scheduled", &["--summary-times", "07:00,19:00", "--time-zone", "Europe/Berlin"]);
    let user = &env.user;
    stack.maildir_drop(user, &mail("someone@example.com", "held for the summary"));
    stack.maildir_drop(user, &mail("someone@example.com", "held far too long"));
    assert!(env.ok(&["poll", &user.email]).contains("2 quarantined"));

    // The service was down for three days: six summary times passed.
    let db = Sqlite::connect(&env.url).await.unwrap();
    let now = quorum_domain::Timestamp::now().0;
    sqlx::query("UPDATE subscribers SET next_summary_at = $1").bind(now - 3 * 86_400).execute(db.pool()).await.unwrap();
    // One message has been held longer than max_retention (30 days).
    sqlx::query("UPDATE messages SET quarantined_at = $1 WHERE subject = 'held far too long'")
        .bind(now - 31 * 86_400)
        .execute(db.pool())
        .await
        .unwrap();

    let out = env.ok(&["scheduler", "--once"]);
    assert!(out.contains("1 summaries sent") && out.contains("1 held messages purged"), "{out}");
    let out = env.ok(&["scheduler", "--once"]);
    assert!(out.contains("0 summaries sent") && out.contains("0 held messages purged"), "{out}");
    stack.wait_for_messages(user, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let inbox = stack.retr_all(user).await;
    assert_eq!(inbox.len(), 1, "sent once, not once per missed time");
    let text = reply_text(&inbox[0].1);
    assert!(text.contains("held for the summary") && !text.contains("held far too long"), "{text}");

    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let next = s.next_summary_at.unwrap();
    assert!(next > now && next - now <= 12 * 3600 + 60, "next summary at the next local 07:00 or 19:00");
}
