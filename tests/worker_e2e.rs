//! The worker end to end: real mail through Postfix into Dovecot, the real `quorum` binary
//! polling it, the quarantine in a real database. Crashes are real process aborts.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use quorum_domain::{EmailAddress, Keys, ReleaseMarker};
use quorum_storage::{Database, Postgres, Sqlite};
use quorum_tests::{
    Cut, MailStack, TestUser, faulty_proxy, fresh_postgres, fresh_sqlite, quorum, run_with_input as run, stalled_server,
};

/// Adds a subscriber without trying the mailbox: these tests give the worker broken,
/// stalled and faulty servers on purpose (the check itself is tested below).
fn add_subscriber(db: &str, key: &str, user: &TestUser, security: &str, port: u16, password: &str) {
    let mut cmd = quorum(db, key);
    cmd.args(["subscriber", "add", &user.email, "--host", "127.0.0.1", "--port", &port.to_string()]).args([
        "--security",
        security,
        "--user",
        &user.email,
        "--no-check",
    ]);
    let (ok, out) = run(cmd, &format!("{password}\n"));
    assert!(ok, "subscriber add: {out}");
}

fn poll(db: &str, key: &str, user: &TestUser) -> (bool, String) {
    let mut cmd = quorum(db, key);
    cmd.args(["poll", &user.email]);
    run(cmd, "")
}

/// `poll` from a test whose runtime must keep serving meanwhile (a proxy in this process).
async fn poll_off_thread(url: &str, key: &str, user: &TestUser) -> (bool, String) {
    let (url, key, user) = (url.to_string(), key.to_string(), user.clone());
    tokio::task::spawn_blocking(move || poll(&url, &key, &user)).await.unwrap()
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

/// Returns the subscriber's Dovecot user.
async fn approved_stays_unknown_is_quarantined(db_url: &str, db: impl Database) -> TestUser {
    let stack = MailStack::get();
    let key = Keys::generate_master();
    let user = stack.new_user("flow");
    add_subscriber(db_url, &key, &user, "plain", stack.pop3_port, &user.password);
    let mut approve = quorum(db_url, &key);
    approve.args(["subscriber", "approve", &user.email, "Friend@Example.org"]);
    assert!(run(approve, "").0);

    // Quorum's own release marker (SPEC 2.1 step 1): a verified one keeps the message, a
    // forged one or one issued for another mailbox does not.
    let keys = Keys::from_master_text(&key).unwrap();
    let mailbox_id =
        db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap().mailbox_id;
    let now = quorum_domain::Timestamp::now();
    let marker = |mailbox_id| ReleaseMarker::notice(mailbox_id, now).header_value(&keys);
    let released = [
        format!("{}: {}\r\n", ReleaseMarker::HEADER, marker(mailbox_id)).into_bytes(),
        message("x@spam.example", "released"),
    ]
    .concat();
    let forged = [
        format!("{}: {}.0.{}.AAAAAAAAAAAAAAAAAAAAAA\r\n", ReleaseMarker::HEADER, mailbox_id, now.0).into_bytes(),
        message("x@spam.example", "forged marker"),
    ]
    .concat();
    // Genuine markers copied onto other mail: one naming a release of other bytes, one from
    // a notice three days old.
    let copied = [
        ReleaseMarker::release(mailbox_id, 7, now).header_line(&keys).into_bytes(),
        message("x@spam.example", "copied release marker"),
    ]
    .concat();
    let stale = [
        ReleaseMarker::notice(mailbox_id, quorum_domain::Timestamp(now.0 - 3 * 86_400)).header_line(&keys).into_bytes(),
        message("x@spam.example", "stale notice marker"),
    ]
    .concat();
    let foreign = [
        format!("{}: {}\r\n", ReleaseMarker::HEADER, marker(mailbox_id + 1)).into_bytes(),
        message("x@spam.example", "other mailbox"),
    ]
    .concat();

    stack.smtp_send(&user, "friend@example.org", &message("Friend <friend@example.org>", "from a friend")).await;
    stack.smtp_send(&user, "stranger@example.net", &message("stranger@example.net", "buy now")).await;
    for m in [&released, &forged, &foreign, &copied, &stale] {
        stack.smtp_send(&user, "x@spam.example", m).await;
    }
    stack.wait_for_messages(&user, 7).await;
    let before = stack.retr_all(&user).await;

    let (ok, out) = poll(db_url, &key, &user);
    assert!(ok, "poll: {out}");
    assert!(out.contains("5 quarantined, 2 left in the Inbox"), "{out}");

    let after = stack.retr_all(&user).await;
    assert_eq!(after.len(), 2);
    for (kept_uidl, kept) in &after {
        assert!(before.iter().any(|(u, b)| u == kept_uidl && b == kept), "kept messages are untouched");
    }
    let kept_text: Vec<String> = after.iter().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect();
    assert!(kept_text.iter().any(|t| t.contains("from a friend")));
    assert!(kept_text.iter().any(|t| t.contains("Subject: released")));

    let mut expected: Vec<Vec<u8>> =
        before.iter().filter(|(u, _)| !after.iter().any(|(k, _)| k == u)).map(|(_, b)| b.clone()).collect();
    let mut quarantined = quarantined_bytes(&db, &user).await;
    expected.sort();
    quarantined.sort();
    assert_eq!(quarantined.len(), 5);
    assert!(quarantined == expected, "quarantined byte for byte as RETR returned them before");

    // Polling again changes nothing: the kept messages are remembered by their UIDLs.
    let (ok, out) = poll(db_url, &key, &user);
    assert!(ok && out.contains("0 quarantined, 0 left"), "{out}");
    assert_eq!(stack.retr_all(&user).await.len(), 2);
    assert_eq!(quarantined_bytes(&db, &user).await.len(), 5);
    user
}

#[tokio::test]
async fn sqlite_approved_sender_stays_unknown_sender_quarantined() {
    let (dir, url) = fresh_sqlite();
    let user = approved_stays_unknown_is_quarantined(&url, Sqlite::connect(&url).await.unwrap()).await;
    // The database holds no POP3 password in plain text (main file and WAL): the one this
    // subscriber's mailbox was added with. (Every Dovecot user's, as once, grew with the
    // users file to minutes of searching.)
    let password = user.password.as_bytes();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        assert!(!bytes.windows(password.len()).any(|w| w == password), "the POP3 password is in the database");
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
async fn crash_at(fail_point: &str, url: &str) {
    let stack = MailStack::get();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages(&format!("crash-{fail_point}"), 5);
    add_subscriber(url, &key, &user, "plain", stack.pop3_port, &user.password);

    let mut crashing = quorum(url, &key);
    crashing.env("QUORUM_FAILPOINT", fail_point).args(["poll", &user.email]);
    let (ok, out) = run(crashing, "");
    assert!(!ok && out.contains(&format!("fail point `{fail_point}` reached")), "{out}");

    // The crashed run's lease is still live; the operator takes it over.
    let mut after = quorum(url, &key);
    after.args(["poll", "--take-over", &user.email]);
    let (ok, out) = run(after, "");
    assert!(ok, "poll after the crash: {out}");
    assert_each_quarantined_once(url, &user, &subjects).await;
}

/// Every message (by subject) is in the quarantine exactly once and no longer in the mailbox.
async fn assert_each_quarantined_once(url: &str, user: &TestUser, subjects: &[String]) {
    let quarantined = if url.starts_with("postgres") {
        quarantined_bytes(&Postgres::connect(url).await.unwrap(), user).await
    } else {
        quarantined_bytes(&Sqlite::connect(url).await.unwrap(), user).await
    };
    let in_mailbox = MailStack::get().retr_all(user).await;
    for s in subjects {
        let q = quarantined.iter().filter(|b| String::from_utf8_lossy(b).contains(s.as_str())).count();
        let m = in_mailbox.iter().filter(|(_, b)| String::from_utf8_lossy(b).contains(s.as_str())).count();
        assert_eq!((q, m), (1, 0), "{s}: {q} in the quarantine, {m} in the mailbox");
    }
    assert_eq!(quarantined.len(), subjects.len(), "no message quarantined twice");
}

/// A mailbox with `n` messages from an unknown sender, each with a unique subject.
fn mailbox_with_messages(tag: &str, n: usize) -> (TestUser, Vec<String>) {
    let stack = MailStack::get();
    let user = stack.new_user(tag);
    let subjects: Vec<String> = (0..n).map(|i| format!("{tag} {i} {}", quorum_tests::unique())).collect();
    for s in &subjects {
        stack.maildir_drop(&user, &message("unknown@example.com", s));
    }
    (user, subjects)
}

/// The server connection breaks at `cut` during the first poll; the next poll recovers.
async fn server_fault(tag: &str, cut: Cut, expected_error: &str) {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages(tag, 5);
    let port = faulty_proxy(stack.pop3_port, cut).await;
    add_subscriber(&url, &key, &user, "plain", port, &user.password);

    let (ok, out) = poll_off_thread(&url, &key, &user).await;
    assert!(!ok && out.contains(expected_error), "the cut poll must fail while {expected_error}: {out}");
    let (ok, out) = poll_off_thread(&url, &key, &user).await;
    assert!(ok, "poll after the fault: {out}");
    assert_each_quarantined_once(&url, &user, &subjects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_message_loses_nothing() {
    // Greeting, CAPA, login, UIDL and LIST take a few hundred bytes; the five messages
    // about 1.2 KB: 900 bytes cuts inside the first RETR answers.
    server_fault("cut-mid-retr", Cut::AfterServerBytes(900), "closed the connection while reading a message").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_before_dele_duplicates_nothing() {
    server_fault(
        "cut-before-dele",
        Cut::BeforeClientSends("DELE"),
        "closed the connection while reading the DELE response",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_before_quit_duplicates_nothing() {
    server_fault("cut-before-quit", Cut::BeforeClientSends("QUIT"), "closed the connection while QUIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_mailbox_is_retried_later_not_failed() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages("in-use", 2);
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    // Another client holds the maildrop lock.
    let mut other = stack.login(&user).await;
    other.stat().await.unwrap();
    let (ok, out) = poll_off_thread(&url, &key, &user).await;
    assert!(ok && out.starts_with("busy"), "{out}");
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    assert_eq!(s.last_status.as_deref(), Some("busy"));
    let error = s.last_error.unwrap();
    assert!(error.contains("busy") && error.contains("locked"), "{error}");
    other.quit().await.unwrap();

    let (ok, out) = poll(&url, &key, &user);
    assert!(ok && out.contains("2 quarantined"), "{out}");
    assert_each_quarantined_once(&url, &user, &subjects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_does_not_hold_up_other_mailboxes() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let stalled_port = stalled_server().await;
    let stalled = stack.new_user("stalled");
    add_subscriber(&url, &key, &stalled, "plain", stalled_port, &stalled.password);
    let (good, subjects) = mailbox_with_messages("beside-stalled", 3);
    add_subscriber(&url, &key, &good, "plain", stack.pop3_port, &good.password);

    let mut worker = quorum(&url, &key);
    worker
        .env("QUORUM_WORKER__POP3_TIMEOUT_SECS", "8")
        .env("QUORUM_WORKER__LEASE_SECS", "60")
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = worker.spawn().unwrap();
    let db = Sqlite::connect(&url).await.unwrap();
    let status = |u: &TestUser| {
        let db = db.clone();
        let email = EmailAddress::parse(&u.email).unwrap();
        async move { db.subscriber_by_email(&email).await.unwrap().unwrap() }
    };
    let mut good_done_while_stalled = None;
    for _ in 0..300 {
        let (g, s) = (status(&good).await, status(&stalled).await);
        if g.polls >= 1 && good_done_while_stalled.is_none() {
            good_done_while_stalled = Some(s.polls == 0);
        }
        if s.polls >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(good_done_while_stalled, Some(true), "the good mailbox waited for the stalled one");
    let s = status(&stalled).await;
    assert_eq!(s.last_status.as_deref(), Some("error"));
    assert!(s.last_error.as_deref().unwrap_or_default().contains("did not answer within 8 s"), "{:?}", s.last_error);
    assert_each_quarantined_once(&url, &good, &subjects).await;
}

#[tokio::test]
async fn crash_between_retr_and_commit_loses_nothing() {
    let (_dir, url) = fresh_sqlite();
    crash_at("after-retr", &url).await;
}

#[tokio::test]
async fn crash_between_commit_and_dele_duplicates_nothing() {
    let (_dir, url) = fresh_sqlite();
    crash_at("after-commit", &url).await;
}

#[tokio::test]
async fn postgres_crash_between_commit_and_dele_duplicates_nothing() {
    crash_at("after-commit", &fresh_postgres().await).await;
}

#[tokio::test]
async fn crash_between_dele_and_quit_duplicates_nothing() {
    let (_dir, url) = fresh_sqlite();
    crash_at("after-dele", &url).await;
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

/// After a crash left quarantined messages on the server, the server rebuilds its index
/// (new UIDLs, one message gone, a new one arrived): nothing is lost, nothing stored twice.
#[tokio::test]
async fn mailbox_renumbered_by_the_server_after_a_crash() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, mut subjects) = mailbox_with_messages("renumbered", 3);
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    let mut crashing = quorum(&url, &key);
    crashing.env("QUORUM_FAILPOINT", "after-commit").args(["poll", &user.email]);
    assert!(!run(crashing, "").0);

    // Rebuild: drop Dovecot's index and UID list, remove one message, deliver a new one.
    // Dovecot may still be closing the crashed session (rewriting its index, moving files
    // from new to cur): a file can vanish between listing and reading or removing it, which
    // is fine, and the message to drop is looked for until no file holds it.
    let gone_already = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let remove = |path: &std::path::Path| {
        if let Err(e) = std::fs::remove_file(path).or_else(|e| if gone_already(&e) { Ok(()) } else { Err(e) }) {
            panic!("removing {}: {e}", path.display());
        }
    };
    let maildir = stack.mail_dir.join(&user.email);
    for entry in std::fs::read_dir(&maildir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("dovecot") {
            remove(&path);
        }
    }
    let gone = subjects.remove(0);
    let holding = |needle: &str| -> Vec<std::path::PathBuf> {
        ["cur", "new"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(maildir.join(sub)).unwrap())
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| std::fs::read(path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)))
            .collect()
    };
    // Two clean scans in a row: a file moving between new and cur during one scan is seen
    // by the next.
    let mut clean = 0;
    for _ in 0..100 {
        let found = holding(&gone);
        clean = if found.is_empty() { clean + 1 } else { 0 };
        if clean == 2 {
            break;
        }
        found.iter().for_each(|p| remove(p));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(holding(&gone).is_empty(), "the message to drop is still in the Maildir");
    let late = format!("renumbered late {}", quorum_tests::unique());
    stack.maildir_drop(&user, &message("unknown@example.com", &late));

    let mut after = quorum(&url, &key);
    after.args(["poll", "--take-over", &user.email]);
    let (ok, out) = run(after, "");
    assert!(ok, "{out}");
    // The removed message was quarantined before the crash: it stays there, once.
    subjects.push(gone);
    subjects.push(late);
    assert_each_quarantined_once(&url, &user, &subjects).await;
}

/// The id and bytes of every quarantined message of a user.
async fn quarantined_ids(url: &str, user: &TestUser) -> Vec<(i64, String)> {
    let db = Sqlite::connect(url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    db.quarantined(s.mailbox_id).await.unwrap().into_iter().map(|m| (m.id, m.status)).collect()
}

fn with_smtp(mut cmd: Command, port: u16) -> Command {
    cmd.env("QUORUM_SMTP__PORT", port.to_string()).env("QUORUM_SMTP__ENVELOPE_FROM", "quorum@quorum.test");
    cmd
}

#[tokio::test]
async fn release_delivers_the_original_bytes_and_the_worker_leaves_them() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages("release", 2);
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    let before = stack.retr_all(&user).await;
    assert!(poll(&url, &key, &user).0);

    let ids = quarantined_ids(&url, &user).await;
    let db = Sqlite::connect(&url).await.unwrap();
    let original = db.message_raw(ids[0].0).await.unwrap();
    assert!(before.iter().any(|(_, b)| *b == original));

    let mut release = with_smtp(quorum(&url, &key), stack.smtp_port);
    release.args(["subscriber", "release", &user.email, &ids[0].0.to_string()]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains("1 queued for release: 1 delivered"), "{out}");
    stack.wait_for_messages(&user, 1).await;

    let delivered = stack.retr_all(&user).await;
    let bytes = &delivered[0].1;
    assert!(
        bytes.ends_with(&original),
        "the original bytes follow the added headers unchanged:\n{}\n---- original:\n{}",
        String::from_utf8_lossy(bytes),
        String::from_utf8_lossy(&original)
    );
    let added = String::from_utf8_lossy(&bytes[..bytes.len() - original.len()]);
    assert!(added.contains("X-Quorum-Release: ") && added.contains("released from quarantine"), "{added}");
    assert!(
        String::from_utf8_lossy(&original).contains(&subjects[0])
            || String::from_utf8_lossy(&original).contains(&subjects[1])
    );

    // The worker recognises its own release and leaves it in the Inbox.
    let (ok, out) = poll(&url, &key, &user);
    assert!(ok && out.contains("0 quarantined, 1 left in the Inbox"), "{out}");
    assert_eq!(stack.retr_all(&user).await.len(), 1);
    let statuses: Vec<String> = quarantined_ids(&url, &user).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["released", "held"]);

    // Releasing it again does nothing.
    let mut again = with_smtp(quorum(&url, &key), stack.smtp_port);
    again.args(["subscriber", "release", &user.email, &ids[0].0.to_string()]);
    let (ok, out) = run(again, "");
    assert!(!ok && out.contains("is not held"), "{out}");
}

#[tokio::test]
async fn smtp_down_during_release_delivers_exactly_once_when_it_is_back() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, _) = mailbox_with_messages("smtp-down", 1);
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    assert!(poll(&url, &key, &user).0);

    // Nothing listens on this port: the SMTP server is down.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut release = with_smtp(quorum(&url, &key), down);
    release.args(["subscriber", "release", &user.email]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains("0 delivered, 1 failed"), "{out}");
    let mut list = quorum(&url, &key);
    list.args(["outbox", "list"]);
    let (_, out) = run(list, "");
    assert!(out.contains(&user.email) && out.contains("Connection refused"), "{out}");

    // Still down: a second pass before the backoff sends nothing and loses nothing.
    let mut flush = with_smtp(quorum(&url, &key), down);
    flush.args(["outbox", "flush"]);
    let (ok, out) = run(flush, "");
    assert!(ok && out.contains("0 delivered, 0 failed (retried later), 1 waiting"), "{out}");

    // Back: delivered once.
    for _ in 0..2 {
        let mut flush = with_smtp(quorum(&url, &key), stack.smtp_port);
        flush.args(["outbox", "flush", "--retry-now"]);
        assert!(run(flush, "").0);
    }
    stack.wait_for_messages(&user, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.retr_all(&user).await.len(), 1, "delivered exactly once");
    let statuses: Vec<String> = quarantined_ids(&url, &user).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["released"]);
}

#[tokio::test]
async fn disable_releases_everything_then_stops_polling() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages("disable", 3);
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    assert!(poll(&url, &key, &user).0);
    assert!(stack.retr_all(&user).await.is_empty());

    let mut disable = with_smtp(quorum(&url, &key), stack.smtp_port);
    disable.args(["subscriber", "disable", &user.email]);
    let (ok, out) = run(disable, "");
    assert!(ok && out.contains("3 held messages released (3 delivered now, 0 waiting"), "{out}");
    stack.wait_for_messages(&user, 3).await;
    let back = stack.retr_all(&user).await;
    for s in &subjects {
        assert_eq!(back.iter().filter(|(_, b)| String::from_utf8_lossy(b).contains(s.as_str())).count(), 1);
    }
    let (ok, out) = poll(&url, &key, &user);
    assert!(!ok && out.contains("disabled"), "a disabled mailbox is not polled: {out}");
}

#[tokio::test]
async fn tls_failures_name_their_cause_and_the_setting_that_fixes_it() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user("tls-advice");
    let check = |port: u16, trust_test_ca: bool| {
        let mut cmd = quorum(&url, &key);
        if !trust_test_ca {
            cmd.env_remove("QUORUM_WORKER__TLS_CA_FILES");
        }
        cmd.args(["check-mailbox", "--host", "127.0.0.1", "--port", &port.to_string(), "--security", "tls"])
            .args(["--user", &user.email]);
        run(cmd, &format!("{}\n", user.password))
    };
    // The test stack's certificate is signed by its own CA, which this machine does not trust.
    let (ok, out) = check(stack.pop3s_port, false);
    assert!(!ok && out.contains("not signed by a CA") && out.contains("[worker] tls_ca_files"), "{out}");
    let (ok, out) = check(stack.pop3_port, true);
    assert!(!ok && out.contains("does not speak TLS on this port"), "{out}");
    let (ok, out) = check(stack.pop3s_port, true);
    assert!(ok && out.contains("mailbox OK"), "{out}");
}

#[tokio::test]
async fn a_message_that_breaks_classification_is_held_and_the_poll_goes_on() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages("poison", 2);
    stack.maildir_drop(&user, &message("poison@example.com", "the poison POISON-7f3a message"));
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);

    // A test-only fail point panics inside the classification of that one message.
    let mut poll = quorum(&url, &key);
    poll.env("QUORUM_FAILPOINT", "panic:classify:POISON-7f3a").args(["poll", &user.email]);
    let (ok, out) = run(poll, "");
    assert!(ok && out.contains("3 quarantined"), "the poll goes on: {out}");
    assert!(stack.retr_all(&user).await.is_empty(), "all three committed, then deleted from the server");
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let held = db.held(s.mailbox_id).await.unwrap();
    assert_eq!(held.len(), 3, "{held:?}");
    let poison = held.iter().find(|m| m.subject.as_deref().is_some_and(|t| t.contains("POISON"))).unwrap();
    let reason = poison.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("could not be classified: the evidence keys: fail point `classify` reached"),
        "{reason}"
    );
    assert_eq!(poison.stat_keys, None, "judged by no one");
    for s in &subjects {
        let m = held.iter().find(|m| m.subject.as_deref() == Some(s.as_str())).unwrap();
        assert!(!m.reason.as_deref().unwrap_or_default().starts_with("could not be classified"), "{m:?}");
        assert!(m.stat_keys.is_some(), "classified as usual: {m:?}");
    }
    // The operator's dashboard counts it.
    assert_eq!(db.worker_totals().await.unwrap().unclassified, 1);
}

#[tokio::test]
async fn the_cli_checks_changes_and_removes_a_subscriber() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, subjects) = mailbox_with_messages("cli-lifecycle", 2);
    let port = stack.pop3_port.to_string();
    let cli = |args: &[&str], stdin: &str| {
        let mut cmd = with_smtp(quorum(&url, &key), stack.smtp_port);
        cmd.args(args);
        run(cmd, stdin)
    };
    let add = ["subscriber", "add", &user.email, "--host", "127.0.0.1", "--port", &port, "--security", "plain"];
    let add: Vec<&str> = add.iter().copied().chain(["--user", &user.email]).collect();

    // A wrong password is tried, refused with the reason, and nothing is stored.
    let (ok, out) = cli(&add, "not-the-password\n");
    assert!(!ok && out.contains("FAILED at login") && out.contains("not added"), "{out}");
    let (_, list) = cli(&["subscriber", "list"], "");
    assert!(!list.contains(&user.email), "{list}");
    let (ok, out) = cli(&add, &format!("{}\n", user.password));
    assert!(ok && out.contains("mailbox OK") && out.contains("added"), "{out}");
    assert!(poll(&url, &key, &user).0);

    // New settings are tried with the stored password; a failing change changes nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (ok, out) = cli(&["subscriber", "set", &user.email, "--port", &closed], "");
    assert!(!ok && out.contains("FAILED") && out.contains("unchanged"), "{out}");
    assert!(poll(&url, &key, &user).0, "still polled with the old settings");
    let (ok, out) = cli(&["subscriber", "set", &user.email, "--user", "nobody@quorum.test"], "");
    assert!(!ok && out.contains("FAILED at login"), "{out}");
    let (ok, out) = cli(&["subscriber", "set", &user.email, "--port", &closed, "--no-check"], "");
    assert!(ok && out.contains(&format!("127.0.0.1:{closed}")), "{out}");
    let (ok, out) = poll(&url, &key, &user);
    assert!(!ok, "the stored settings are the new ones: {out}");
    let (ok, out) =
        cli(&["subscriber", "set", &user.email, "--port", &port, "--password"], &format!("{}\n", user.password));
    assert!(ok && out.contains("mailbox OK"), "{out}");
    assert!(poll(&url, &key, &user).0);

    // Removed: what was held goes back to the mailbox first, then nothing is kept.
    let (ok, out) = cli(&["subscriber", "remove", &user.email], "");
    assert!(ok && out.contains("removed") && out.contains("2 held messages released"), "{out}");
    stack.wait_for_messages(&user, 2).await;
    let back = stack.retr_all(&user).await;
    for s in &subjects {
        assert_eq!(back.iter().filter(|(_, b)| String::from_utf8_lossy(b).contains(s.as_str())).count(), 1, "{s}");
    }
    let (_, list) = cli(&["subscriber", "list"], "");
    assert!(!list.contains(&user.email), "{list}");
    let db = Sqlite::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(db.pool()).await.unwrap();
    assert_eq!(left, 0, "no held mail, no bytes kept");
    let (ok, out) = cli(&["subscriber", "remove", &user.email], "");
    assert!(!ok && out.contains("no subscriber"), "{out}");
}

/// SMTP smuggling: held mail carrying each end-of-data variant that some server reads as
/// the end of DATA is released through a Postfix that accepts bare newlines, and each
/// arrives as exactly one message: nothing a sender hid inside becomes a second message.
#[tokio::test]
async fn released_mail_cannot_smuggle_a_second_message() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user("smuggle");
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    let variants: [&[u8]; 6] = [b"\n.\n", b"\n.\r\n", b"\r\n.\r\r\n", b"\r.\r", b"\r\n.\0\r\n", b"\r\n\0.\r\n"];
    for (i, end) in variants.iter().enumerate() {
        let injected = format!(
            "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<{}>\r\nDATA\r\nFrom: ceo@bank.example\r\n\
             Subject: smuggled {i}\r\n\r\nPay now.\r\n.\r\n",
            user.email
        );
        let raw = [
            format!("From: someone@example.com\r\nSubject: carrier {i}\r\n\r\nBefore the end.").as_bytes(),
            end,
            injected.as_bytes(),
            b"After the end.\r\n",
        ]
        .concat();
        stack.maildir_drop(&user, &raw);
    }
    assert!(poll(&url, &key, &user).0);
    assert!(stack.retr_all(&user).await.is_empty());
    let mut release = with_smtp(quorum(&url, &key), stack.smtp_port);
    release.args(["subscriber", "release", &user.email]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains(&format!("{} delivered", variants.len())), "{out}");
    stack.wait_for_messages(&user, variants.len() as u32).await;
    // Give a smuggled message time to arrive too, then count again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inbox = stack.retr_all(&user).await;
    assert_eq!(inbox.len(), variants.len(), "one message per release, nothing injected");
    for i in 0..variants.len() {
        let carrier: Vec<&Vec<u8>> = inbox
            .iter()
            .map(|(_, b)| b)
            .filter(|b| String::from_utf8_lossy(b).contains(&format!("carrier {i}")))
            .collect();
        assert_eq!(carrier.len(), 1, "variant {i}");
        let text = String::from_utf8_lossy(carrier[0]);
        assert!(text.contains("Before the end.") && text.contains("After the end."), "all of it, in one: {text}");
    }
    // The injected text is still there, as the carrier's body, never as a message's headers.
    for (_, b) in &inbox {
        let text = String::from_utf8_lossy(b);
        let headers = text.split("\r\n\r\n").next().unwrap_or_default();
        assert!(!headers.contains("Subject: smuggled"), "{text}");
    }
}

#[tokio::test]
async fn release_keeps_dots_8bit_and_mime_byte_for_byte() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user("release-bytes");
    add_subscriber(&url, &key, &user, "plain", stack.pop3_port, &user.password);
    let tricky = b"From: x@example.com\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n.\r\n..\r\n. leading\r\n\xe4\xf6\xfc\xff\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b--\r\n";
    stack.maildir_drop(&user, tricky);
    assert!(poll(&url, &key, &user).0);
    let mut release = with_smtp(quorum(&url, &key), stack.smtp_port);
    release.args(["subscriber", "release", &user.email]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains("1 delivered"), "{out}");
    stack.wait_for_messages(&user, 1).await;
    let delivered = &stack.retr_all(&user).await[0].1;
    assert!(delivered.ends_with(tricky), "{}", String::from_utf8_lossy(delivered));
}

#[tokio::test]
async fn a_release_refused_for_good_goes_back_to_held() {
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let (user, _) = mailbox_with_messages("refused", 1);
    // The subscriber's address is in a domain this Postfix refuses to relay to (550).
    let mut add = quorum(&url, &key);
    add.args(["subscriber", "add", "someone@elsewhere.example", "--host", "127.0.0.1"]).args([
        "--port",
        &stack.pop3_port.to_string(),
        "--security",
        "plain",
        "--user",
        &user.email,
    ]);
    assert!(run(add, &format!("{}\n", user.password)).0);
    let mut poll = quorum(&url, &key);
    poll.args(["poll", "someone@elsewhere.example"]);
    assert!(run(poll, "").0);

    let mut release = with_smtp(quorum(&url, &key), stack.smtp_port);
    release.args(["subscriber", "release", "someone@elsewhere.example"]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains("0 delivered, 1 failed"), "{out}");
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse("someone@elsewhere.example").unwrap()).await.unwrap().unwrap();
    assert_eq!(db.held(s.mailbox_id).await.unwrap().len(), 1, "held again, listed in the next summary");
    assert!(db.outbox_pending().await.unwrap().is_empty(), "not retried forever");
}

/// Rows of every Quorum table, by name.
async fn row_counts<'e, E>(db: E, tables: &[String]) -> Vec<(String, i64)>
where
    E: sqlx::Executor<'e> + Copy,
    i64: sqlx::Type<E::Database> + for<'r> sqlx::Decode<'r, E::Database>,
    for<'q> <E::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, E::Database>,
    (i64,): for<'r> sqlx::FromRow<'r, <E::Database as sqlx::Database>::Row>,
{
    let mut out = Vec::new();
    for t in tables {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {t}")).fetch_one(db).await.unwrap();
        out.push((t.clone(), n));
    }
    out
}

#[tokio::test]
async fn an_installation_moves_from_sqlite_to_postgres_with_every_row() {
    let stack = MailStack::get();
    let key = Keys::generate_master();
    let (_dir, lite_url) = fresh_sqlite();
    let (user, subjects) = mailbox_with_messages("move", 3);
    add_subscriber(&lite_url, &key, &user, "plain", stack.pop3_port, &user.password);
    assert!(poll(&lite_url, &key, &user).0);
    // A subscriber added and removed: its id must never be issued again.
    let gone = stack.new_user("move-gone");
    add_subscriber(&lite_url, &key, &gone, "plain", stack.pop3_port, &gone.password);
    let lite = Sqlite::connect(&lite_url).await.unwrap();
    let gone_id = lite.subscriber_by_email(&EmailAddress::parse(&gone.email).unwrap()).await.unwrap().unwrap();
    let mut remove = quorum(&lite_url, &key);
    remove.args(["subscriber", "remove", &gone.email, "--discard"]);
    assert!(run(remove, "").0);
    let held = quarantined_bytes(&lite, &user).await;
    assert_eq!(held.len(), subjects.len());
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(lite.pool())
    .await
    .unwrap();
    let before = row_counts(lite.pool(), &tables).await;

    let pg_url = fresh_postgres().await;
    let mut mv = quorum(&lite_url, &key);
    mv.args(["move-to-postgres", &pg_url]);
    let (ok, out) = run(mv, "");
    assert!(ok && out.contains("rows in") && out.contains("set database_url"), "{out}");
    let pg = Postgres::connect(&pg_url).await.unwrap();
    assert_eq!(row_counts(pg.pool(), &tables).await, before, "every table, every row");
    assert_eq!(quarantined_bytes(&pg, &user).await, held, "the quarantine byte for byte");

    // The service goes on on PostgreSQL with the same key: the stored POP3 password decrypts,
    // the kept UIDLs are there, and ids go on after every id SQLite issued.
    stack.maildir_drop(&user, &message("unknown@example.com", "after the move"));
    let (ok, out) = poll(&pg_url, &key, &user);
    assert!(ok, "poll on PostgreSQL: {out}");
    assert_eq!(quarantined_bytes(&pg, &user).await.len(), held.len() + 1, "only the new message is new");
    let next = stack.new_user("move-next");
    add_subscriber(&pg_url, &key, &next, "plain", stack.pop3_port, &next.password);
    let next_id = pg.subscriber_by_email(&EmailAddress::parse(&next.email).unwrap()).await.unwrap().unwrap();
    assert!(next_id.subscriber_id > gone_id.subscriber_id, "{next_id:?} reuses an id ({gone_id:?})");
    assert!(next_id.mailbox_id > gone_id.mailbox_id, "{next_id:?} reuses an id ({gone_id:?})");

    // A database in use is never filled a second time.
    let mut again = quorum(&lite_url, &key);
    again.args(["move-to-postgres", &pg_url]);
    let (ok, out) = run(again, "");
    assert!(!ok && out.contains("in use already"), "{out}");
    assert_eq!(quarantined_bytes(&pg, &user).await.len(), held.len() + 1);
}
