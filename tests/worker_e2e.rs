//! The worker end to end: real mail through Postfix into Dovecot, the real `quorum` binary
//! polling it, the quarantine in a real database. Crashes are real process aborts.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use quorum_domain::{EmailAddress, Keys};
use quorum_storage::{Database, Postgres, Sqlite};
use quorum_tests::{MailStack, TestUser, fresh_postgres, fresh_sqlite, quorum};

/// Runs `quorum` with `stdin`, returning (success, stdout + stderr).
fn run(mut cmd: Command, stdin: &str) -> (bool, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn add_subscriber(db: &str, key: &str, user: &TestUser, security: &str, port: u16, password: &str) {
    let mut cmd = quorum(db, key);
    cmd.args(["subscriber", "add", &user.email, "--host", "127.0.0.1", "--port", &port.to_string()]).args([
        "--security",
        security,
        "--user",
        &user.email,
    ]);
    let (ok, out) = run(cmd, &format!("{password}\n"));
    assert!(ok, "subscriber add: {out}");
}

fn poll(db: &str, key: &str, user: &TestUser) -> (bool, String) {
    let mut cmd = quorum(db, key);
    cmd.args(["poll", &user.email]);
    run(cmd, "")
}

async fn quarantined_bytes(db: &impl Database, user: &TestUser) -> Vec<Vec<u8>> {
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in db.quarantined(s.mailbox_id).await.unwrap() {
        out.push(db.message_raw(m.id).await.unwrap());
    }
    out
}

fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: someone@quorum.test\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\nHello,\r\n.dot line\r\n\r\nBye\r\n",
        quorum_tests::unique()
    )
    .into_bytes()
}

async fn approved_stays_unknown_is_quarantined(db_url: &str, db: impl Database) {
    let stack = MailStack::get();
    let key = Keys::generate_master();
    let user = stack.new_user("flow");
    add_subscriber(db_url, &key, &user, "plain", stack.pop3_port, &user.password);
    let mut approve = quorum(db_url, &key);
    approve.args(["subscriber", "approve", &user.email, "Friend@Example.org"]);
    assert!(run(approve, "").0);

    stack.smtp_send(&user, "friend@example.org", &message("Friend <friend@example.org>", "from a friend")).await;
    stack.smtp_send(&user, "stranger@example.net", &message("stranger@example.net", "buy now")).await;
    stack.wait_for_messages(&user, 2).await;
    let before = stack.retr_all(&user).await;

    let (ok, out) = poll(db_url, &key, &user);
    assert!(ok, "poll: {out}");
    assert!(out.contains("1 quarantined, 1 left in the Inbox"), "{out}");

    let after = stack.retr_all(&user).await;
    assert_eq!(after.len(), 1);
    let (kept_uidl, kept) = &after[0];
    assert!(String::from_utf8_lossy(kept).contains("from a friend"));
    assert!(before.iter().any(|(u, b)| u == kept_uidl && b == kept), "the approved message is untouched");

    let stranger = before.iter().find(|(_, b)| String::from_utf8_lossy(b).contains("buy now")).unwrap();
    assert_eq!(quarantined_bytes(&db, &user).await, vec![stranger.1.clone()], "quarantined byte for byte");

    // Polling again changes nothing: the kept message is remembered by its UIDL.
    let (ok, out) = poll(db_url, &key, &user);
    assert!(ok && out.contains("0 quarantined, 0 left"), "{out}");
    assert_eq!(stack.retr_all(&user).await.len(), 1);
    assert_eq!(quarantined_bytes(&db, &user).await.len(), 1);
}

#[tokio::test]
async fn sqlite_approved_sender_stays_unknown_sender_quarantined() {
    let (dir, url) = fresh_sqlite();
    approved_stays_unknown_is_quarantined(&url, Sqlite::connect(&url).await.unwrap()).await;
    // The database holds no POP3 password in plain text (main file and WAL).
    let stack_user_passwords: Vec<String> = std::fs::read_to_string(MailStack::get().mail_dir.join("../dovecot/users"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1).and_then(|p| p.strip_prefix("{PLAIN}")).map(str::to_string))
        .filter(|p| p.starts_with("pw-"))
        .collect();
    assert!(!stack_user_passwords.is_empty());
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        for p in &stack_user_passwords {
            assert!(!bytes.windows(p.len()).any(|w| w == p.as_bytes()), "password {p} found in the database");
        }
    }
    assert!(files >= 1);
}

#[tokio::test]
async fn postgres_approved_sender_stays_unknown_sender_quarantined() {
    let url = fresh_postgres().await;
    approved_stays_unknown_is_quarantined(&url, Postgres::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn polls_over_starttls_and_implicit_tls() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    for (security, port) in [("starttls", stack.pop3_port), ("tls", stack.pop3s_port)] {
        let user = stack.new_user(security);
        add_subscriber(&url, &key, &user, security, port, &user.password);
        stack.maildir_drop(&user, &message("someone@example.com", security));
        let (ok, out) = poll(&url, &key, &user);
        assert!(ok && out.contains("1 quarantined"), "{security}: {out}");
        assert!(stack.retr_all(&user).await.is_empty());
    }
}

/// Kills the worker at a named step, restarts it, and checks every message is in exactly
/// one place.
async fn crash_at(fail_point: &str) {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user(&format!("crash-{fail_point}"));
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    let subjects: Vec<String> = (0..5).map(|i| format!("crash test {i} {}", quorum_tests::unique())).collect();
    for s in &subjects {
        stack.maildir_drop(&user, &message("unknown@example.com", s));
    }

    let mut crashing = quorum(&url, &key);
    crashing.env("QUORUM_FAILPOINT", fail_point).args(["poll", &user.email]);
    let (ok, out) = run(crashing, "");
    assert!(!ok && out.contains(&format!("fail point `{fail_point}` reached")), "{out}");

    let (ok, out) = poll(&url, &key, &user);
    assert!(ok, "poll after the crash: {out}");

    let db = Sqlite::connect(&url).await.unwrap();
    let quarantined = quarantined_bytes(&db, &user).await;
    let in_mailbox = stack.retr_all(&user).await;
    for s in &subjects {
        let q = quarantined.iter().filter(|b| String::from_utf8_lossy(b).contains(s.as_str())).count();
        let m = in_mailbox.iter().filter(|(_, b)| String::from_utf8_lossy(b).contains(s.as_str())).count();
        assert_eq!((q, m), (1, 0), "{s}: {q} in the quarantine, {m} in the mailbox");
    }
    assert_eq!(quarantined.len(), 5, "no message quarantined twice");
}

#[tokio::test]
async fn crash_between_retr_and_commit_loses_nothing() {
    crash_at("after-retr").await;
}

#[tokio::test]
async fn crash_between_commit_and_dele_duplicates_nothing() {
    crash_at("after-commit").await;
}

#[tokio::test]
async fn crash_between_dele_and_quit_duplicates_nothing() {
    crash_at("after-dele").await;
}

#[tokio::test]
async fn bad_input_is_quarantined_and_a_broken_mailbox_does_not_stop_the_others() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let good = stack.new_user("bad-input");
    let broken = stack.new_user("wrong-password");
    add_subscriber(&url, &key, &broken, "plain", stack.pop3_port, "not-the-password");
    add_subscriber(&url, &key, &good, "plain", stack.pop3_port, &good.password);

    let huge_line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n";
    let bad: Vec<Vec<u8>> = vec![
        // Malformed MIME: a boundary that never comes, a part without headers.
        b"From: mime@example.com\r\nSubject: broken mime\r\nContent-Type: multipart/mixed; boundary=\"never\"\r\n\r\n--wrong\r\nno headers\r\n--never\r\n".to_vec(),
        // Invalid UTF-8 in headers.
        b"From: \xff\xfe <bytes@example.com>\r\nSubject: \xc3\x28 invalid \xe2\x82\r\n\r\nbody\r\n".to_vec(),
        // No From at all.
        b"Subject: nobody sent this\r\nTo: x@quorum.test\r\n\r\nbody\r\n".to_vec(),
        // 30 MB.
        [b"From: big@example.com\r\nSubject: 30 MB\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec(), huge_line.repeat(30 * 1024 * 1024 / huge_line.len())].concat(),
    ];
    for m in &bad {
        stack.maildir_drop(&good, m);
    }
    let before = stack.retr_all(&good).await;
    assert_eq!(before.len(), 4);

    // The real worker loop polls both mailboxes.
    let mut worker = quorum(&url, &key);
    worker
        .env("QUORUM_WORKER__POLL_INTERVAL_SECS", "1")
        .env("QUORUM_WORKER__RETRY_ERROR_SECS", "1")
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = worker.spawn().unwrap();
    let db = Sqlite::connect(&url).await.unwrap();
    let email = |u: &TestUser| EmailAddress::parse(&u.email).unwrap();
    let mut done = false;
    for _ in 0..600 {
        let g = db.subscriber_by_email(&email(&good)).await.unwrap().unwrap();
        let b = db.subscriber_by_email(&email(&broken)).await.unwrap().unwrap();
        if g.quarantined_count == 4 && b.polls >= 2 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited_early = child.try_wait().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(exited_early.is_none(), "the worker died: {exited_early:?}");
    assert!(done, "the good mailbox was not drained while the broken one failed");

    let b = db.subscriber_by_email(&email(&broken)).await.unwrap().unwrap();
    assert_eq!(b.last_status.as_deref(), Some("error"));
    let error = b.last_error.unwrap();
    assert!(error.contains("login failed") && error.contains("password"), "{error}");
    assert!(!error.contains("not-the-password"), "the password leaked into the error: {error}");

    let mut quarantined = quarantined_bytes(&db, &good).await;
    let mut expected: Vec<Vec<u8>> = before.into_iter().map(|(_, b)| b).collect();
    quarantined.sort();
    expected.sort();
    assert!(quarantined == expected, "quarantined bytes differ from what RETR returned");
    assert!(stack.retr_all(&good).await.is_empty());
}
