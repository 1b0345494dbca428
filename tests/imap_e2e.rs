//! IMAP mailboxes end to end: Dovecot's IMAP, the real `quorum` binary polling it, the
//! quarantine in a real database. Held mail is moved to `Quorum/Held` with its bytes and
//! deleted mail to `Quorum/Deleted`; approved mail stays; nothing is deleted on the server;
//! a crash between commit and MOVE and a new UIDVALIDITY make no second copy, nor, on a
//! server without MOVE, one between COPY and EXPUNGE; a release
//! moves the message back to the Inbox, where the next poll leaves it.

use quorum_domain::{AuthMethod, EmailAddress, Keys, Security, Timestamp};
use quorum_imap::Session;
use quorum_storage::{Database, Sqlite};
use quorum_tests::{Cut, MailStack, TestUser, faulty_proxy_to, fresh_sqlite, quorum, run_with_input as run};

/// A new mail stack user, signed up in a fresh database (its directory, URL and master key)
/// with `--protocol imap` over STARTTLS, which checks the mailbox first: it logs in and
/// makes Quorum's folders. friend@example.org is an approved sender.
fn imap_subscriber(name: &str) -> (tempfile::TempDir, String, String, TestUser) {
    let stack = MailStack::get();
    let (dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user(name);
    let mut cmd = quorum(&url, &key);
    cmd.args(["subscriber", "add", &user.email, "--protocol", "imap", "--host", "127.0.0.1"]).args([
        "--port",
        &stack.imap_port.to_string(),
        "--security",
        "starttls",
        "--user",
        &user.email,
    ]);
    let (ok, out) = run(cmd, &format!("{}\n", user.password));
    assert!(ok && out.contains("held mail goes to Quorum.Held, deleted mail to Quorum.Deleted"), "{out}");
    let mut approve = quorum(&url, &key);
    approve.args(["subscriber", "approve", &user.email, "friend@example.org"]);
    assert!(run(approve, "").0);
    (dir, url, key, user)
}

fn poll(url: &str, key: &str, user: &TestUser, fail_point: Option<&str>) -> (bool, String) {
    let mut cmd = quorum(url, key);
    if let Some(point) = fail_point {
        cmd.env("QUORUM_FAILPOINT", point);
    }
    cmd.args(["poll", "--take-over", &user.email]);
    run(cmd, "")
}

fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: someone@quorum.test\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\n\
         caf\u{e9}, {subject}\r\n.\r\n",
        quorum_tests::unique()
    )
    .into_bytes()
}

/// Every folder's messages, byte for byte, sorted.
async fn folders(user: &TestUser) -> [Vec<Vec<u8>>; 3] {
    let stack = MailStack::get();
    let endpoint = stack.endpoint(stack.imap_port, Security::Plain);
    let mut session = Session::connect(&endpoint, AuthMethod::Auto, &user.email, &user.password).await.unwrap();
    let mut out: [Vec<Vec<u8>>; 3] = Default::default();
    for (i, folder) in ["INBOX", "Quorum.Held", "Quorum.Deleted"].into_iter().enumerate() {
        session.select(folder).await.unwrap();
        let uids: Vec<u32> = session.list().await.unwrap().iter().map(|l| l.uid).collect();
        out[i] = session.fetch(&uids).await.unwrap().into_iter().map(|f| f.bytes).collect();
        out[i].sort();
    }
    session.logout().await.unwrap();
    out
}

/// The quarantine's messages: bytes and status, sorted by bytes.
async fn quarantine(db: &Sqlite, user: &TestUser) -> Vec<(Vec<u8>, String)> {
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in db.quarantined(s.mailbox_id).await.unwrap() {
        out.push((db.message_raw(m.id).await.unwrap(), m.status));
    }
    out.sort();
    out
}

#[tokio::test]
async fn held_mail_moves_to_quorum_held_approved_mail_stays_and_blocked_mail_goes_to_quorum_deleted() {
    let stack = MailStack::get();
    let (_dir, url, key, user) = imap_subscriber("imap-flow");

    let (friend, stranger) = (message("Friend <friend@example.org>", "hello"), message("x@spam.example", "buy now"));
    stack.maildir_drop(&user, &friend);
    stack.maildir_drop(&user, &stranger);
    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    assert_eq!(folders(&user).await, [vec![friend.clone()], vec![stranger.clone()], vec![]]);
    let db = Sqlite::connect(&url).await.unwrap();
    assert_eq!(quarantine(&db, &user).await, vec![(stranger.clone(), "held".to_string())]);

    // A second poll finds nothing new: the friend's message is remembered as kept.
    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    assert_eq!(folders(&user).await, [vec![friend.clone()], vec![stranger.clone()], vec![]]);
    assert_eq!(quarantine(&db, &user).await.len(), 1);

    // The subscriber deletes the held message and so blocks its sender (an empty box): its
    // copy moves on to Quorum/Deleted, and the sender's next message is deleted on arrival,
    // kept there too.
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let held = db.held(s.mailbox_id).await.unwrap()[0].id;
    let sender = EmailAddress::parse("x@spam.example").unwrap();
    assert!(
        db.reject_message(s.subscriber_id, s.mailbox_id, held, Some(&sender), "deleted_spam", Timestamp::now())
            .await
            .unwrap()
    );
    let again = message("x@spam.example", "buy now, again");
    stack.maildir_drop(&user, &again);
    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    let mut deleted = vec![stranger, again.clone()];
    deleted.sort();
    assert_eq!(folders(&user).await, [vec![friend], vec![], deleted]);
    assert!(quarantine(&db, &user).await.contains(&(again, "deleted_blocked".to_string())));
}

/// A crash after the commit and before the MOVE, then the server renumbering its messages
/// (a new UIDVALIDITY): each message ends up in exactly one place, stored once.
#[tokio::test]
async fn a_crash_before_the_move_and_a_new_uidvalidity_make_no_second_copy() {
    let stack = MailStack::get();
    let (_dir, url, key, user) = imap_subscriber("imap-crash");
    let friend = message("friend@example.org", "kept");
    let strangers: Vec<Vec<u8>> = (0..3).map(|i| message("x@spam.example", &format!("held {i}"))).collect();
    stack.maildir_drop(&user, &friend);
    for m in &strangers {
        stack.maildir_drop(&user, m);
    }
    let (ok, out) = poll(&url, &key, &user, Some("after-commit"));
    assert!(!ok && out.contains("fail point `after-commit` reached"), "{out}");
    let db = Sqlite::connect(&url).await.unwrap();
    assert_eq!(quarantine(&db, &user).await.len(), 3, "committed");
    let mut all = strangers.clone();
    all.push(friend.clone());
    all.sort();
    assert_eq!(folders(&user).await, [all, vec![], vec![]], "nothing moved yet");

    // Dovecot gives the Inbox a new UIDVALIDITY when its UID list and index are gone.
    let root = stack.mail_dir.join(&user.email);
    let before = uid_validity(&user).await;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert_ne!(uid_validity(&user).await, before, "the server renumbered");

    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    let mut held = strangers.clone();
    held.sort();
    assert_eq!(folders(&user).await, [vec![friend], held.clone(), vec![]]);
    let stored: Vec<Vec<u8>> = quarantine(&db, &user).await.into_iter().map(|(raw, _)| raw).collect();
    assert_eq!(stored, held, "each stored once");
}

async fn uid_validity(user: &TestUser) -> u32 {
    let stack = MailStack::get();
    let endpoint = stack.endpoint(stack.imap_port, Security::Plain);
    let mut session = Session::connect(&endpoint, AuthMethod::Auto, &user.email, &user.password).await.unwrap();
    let v = session.select("INBOX").await.unwrap().uid_validity;
    session.logout().await.unwrap();
    v
}

/// A release moves the held message back to the Inbox (no SMTP: the SMTP port given is
/// closed), byte for byte, and the next poll leaves it there, by its bytes even without
/// Quorum's keyword; the keyword on other bytes proves nothing.
#[tokio::test]
async fn a_release_moves_the_message_back_and_the_next_poll_leaves_it() {
    use futures::TryStreamExt;
    let stack = MailStack::get();
    let (_dir, url, key, user) = imap_subscriber("imap-release");
    let (wanted, other) = (message("x@example.net", "wanted after all"), message("y@example.net", "not released"));
    stack.maildir_drop(&user, &wanted);
    stack.maildir_drop(&user, &other);
    assert!(poll(&url, &key, &user, None).0);
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let id = db
        .quarantined(s.mailbox_id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.subject.as_deref() == Some("wanted after all"))
        .unwrap()
        .id;

    let mut release = quorum(&url, &key);
    release.env("QUORUM_SMTP__PORT", "1").args(["subscriber", "release", &user.email, &id.to_string()]);
    let (ok, out) = run(release, "");
    assert!(ok && out.contains("1 delivered"), "{out}");
    let mut held = vec![other.clone()];
    held.sort();
    assert_eq!(folders(&user).await, [vec![wanted.clone()], held.clone(), vec![]]);

    // Someone sets Quorum's keyword on a message of their own in the Inbox: it is no release.
    let forged = message("z@spam.example", "keyword set by someone else");
    stack.maildir_drop(&user, &forged);
    let mut other_client = stack.other_imap_client(&user).await;
    // And the keyword is gone from the released message (a server need not keep keywords):
    // its bytes alone keep it in the Inbox.
    let _: Vec<_> = other_client.store("1:*", "-FLAGS ($QuorumReleased)").await.unwrap().try_collect().await.unwrap();
    let _: Vec<_> = other_client.store("*", "+FLAGS ($QuorumReleased)").await.unwrap().try_collect().await.unwrap();
    other_client.logout().await.unwrap();
    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    let mut held = vec![other, forged];
    held.sort();
    assert_eq!(folders(&user).await, [vec![wanted], held, vec![]], "the release stays, the forged keyword does not");
    let statuses: Vec<String> = quarantine(&db, &user).await.into_iter().map(|(_, status)| status).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "released").count(), 1, "{statuses:?}");
}

/// `quorum worker` with a poll interval of an hour: after its first poll of an IMAP mailbox
/// it watches it with IDLE, and a message delivered then is held within seconds, long before
/// a poll would have run. With the bound at 0 it says so, and polling alone holds the mail.
#[tokio::test]
async fn idle_holds_new_mail_before_the_next_poll_and_the_bound_falls_back_to_polling() {
    let stack = MailStack::get();
    for (bound, interval) in [("1000", "3600"), ("0", "2")] {
        let (_dir, url, key, user) = imap_subscriber("imap-idle-worker");
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut worker = quorum(&url, &key);
        worker
            .env("QUORUM_LOG", "info")
            .env("QUORUM_WORKER__POLL_INTERVAL_SECS", interval)
            .env("QUORUM_WORKER__IDLE_CONNECTIONS", bound)
            .arg("worker")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap());
        let mut child = worker.spawn().unwrap();
        let db = Sqlite::connect(&url).await.unwrap();
        let email = EmailAddress::parse(&user.email).unwrap();
        // The first poll of the new mailbox (due at once), with nothing to hold.
        for _ in 0..300 {
            if db.subscriber_by_email(&email).await.unwrap().unwrap().polls >= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let news = message("x@spam.example", "arrives while idle");
        stack.maildir_drop(&user, &news);
        let mut held = false;
        for _ in 0..300 {
            if folders(&user).await[1] == [news.clone()] {
                held = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let log = std::fs::read_to_string(log.path()).unwrap();
        assert!(held, "bound {bound}: not held within 30 s: {log}");
        let polls = db.subscriber_by_email(&email).await.unwrap().unwrap().polls;
        if bound == "0" {
            assert!(log.contains("IDLE bound reached"), "{log}");
        } else {
            // Held by the poll IDLE asked for, the second of the hour.
            assert!(polls <= 3 && !log.contains("IDLE bound reached"), "{polls} polls: {log}");
        }
    }
}

/// Five held messages (8 KB each) in a new IMAP mailbox reached through a proxy in front
/// of `host` that breaks the first connection as `cut` says; the first poll runs and fails
/// on the cut. Returns the database, the subscriber, the messages sorted, and the database
/// directory to keep.
async fn first_poll_cut(host: &str, cut: Cut) -> (tempfile::TempDir, String, String, TestUser, Vec<Vec<u8>>) {
    let stack = MailStack::get();
    let (dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let user = stack.new_user("imap-cut");
    let port = faulty_proxy_to(host, stack.imap_port, cut).await;
    let mut add = quorum(&url, &key);
    add.args(["subscriber", "add", &user.email, "--protocol", "imap", "--host", "127.0.0.1"]).args([
        "--port",
        &port.to_string(),
        "--security",
        "plain",
        "--user",
        &user.email,
        "--no-check",
    ]);
    assert!(run(add, &format!("{}\n", user.password)).0);
    let mut held: Vec<Vec<u8>> =
        (0..5).map(|i| message("x@spam.example", &format!("cut {i} {}", "x".repeat(8000)))).collect();
    for m in &held {
        stack.maildir_drop(&user, m);
    }
    let (url2, key2, user2) = (url.clone(), key.clone(), user.clone());
    let first = tokio::task::spawn_blocking(move || poll(&url2, &key2, &user2, None)).await.unwrap();
    // A lost connection is the network's fault, not the account's: retried soon.
    assert!(first.1.contains("mailbox busy, will retry"), "{cut:?}: the cut poll fails: {}", first.1);
    held.sort();
    (dir, url, key, user, held)
}

/// The next poll after [`first_poll_cut`] recovers: each message in Quorum/Held once,
/// stored once.
async fn next_poll_recovers(url: &str, key: &str, user: &TestUser, held: &[Vec<u8>], cut: Cut) {
    let (url2, key2, user2) = (url.to_string(), key.to_string(), user.clone());
    let second = tokio::task::spawn_blocking(move || poll(&url2, &key2, &user2, None)).await.unwrap();
    assert!(second.0, "{cut:?}: the next poll: {}", second.1);
    let now = folders(user).await;
    assert_eq!(now.each_ref().map(Vec::len), [0, held.len(), 0], "{cut:?}: messages in Inbox, Held, Deleted");
    assert_eq!(now, [vec![], held.to_vec(), vec![]], "{cut:?}");
    let db = Sqlite::connect(url).await.unwrap();
    let stored: Vec<Vec<u8>> = quarantine(&db, user).await.into_iter().map(|(raw, _)| raw).collect();
    assert_eq!(stored, held, "{cut:?}: each stored once");
}

/// The IMAP connection breaks during the first poll, in the middle of the bodies or just
/// before the MOVE; the next poll recovers: each message in Quorum/Held once, stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_fetch_or_before_the_move_loses_and_doubles_nothing() {
    // The bodies are 40 KB in all; login, folders and the listing well under 8 KB.
    for cut in [Cut::AfterServerBytes(20_000), Cut::BeforeClientSends("UID MOVE")] {
        let (_dir, url, key, user, held) = first_poll_cut("127.0.0.1", cut).await;
        next_poll_recovers(&url, &key, &user, &held, cut).await;
    }
}

/// A server without MOVE: a move is COPY, `\Deleted`, UID EXPUNGE. The connection breaks
/// after the COPY, or after the `\Deleted`: each message is then in the Inbox (marked
/// `\Deleted` or not) and in Quorum/Held. The next poll finds the copies it made by their
/// bytes and only expunges the originals: no second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_a_cut_between_copy_and_expunge_makes_no_second_copy() {
    let stack = MailStack::get();
    for cut in [Cut::BeforeClientSends("UID STORE"), Cut::BeforeClientSends("UID EXPUNGE")] {
        let (_dir, url, key, user, held) = first_poll_cut(&stack.imap_without_move, cut).await;
        let between = folders(&user).await;
        assert_eq!(between.each_ref().map(Vec::len), [held.len(), held.len(), 0], "{cut:?}: the cut fell between");
        assert_eq!(between, [held.clone(), held.clone(), vec![]], "{cut:?}");
        next_poll_recovers(&url, &key, &user, &held, cut).await;
    }
}

/// A crash just after the move: the message's folder was recorded with it, so when the
/// subscriber deletes it the next poll moves its copy on to Quorum/Deleted.
#[tokio::test]
async fn a_crash_after_the_move_still_lets_a_decision_move_the_copy_on() {
    let stack = MailStack::get();
    let (_dir, url, key, user) = imap_subscriber("imap-after-move");
    let stranger = message("x@spam.example", "after the move");
    stack.maildir_drop(&user, &stranger);
    let (ok, out) = poll(&url, &key, &user, Some("after-dele"));
    assert!(!ok && out.contains("fail point `after-dele` reached"), "{out}");
    assert_eq!(folders(&user).await, [vec![], vec![stranger.clone()], vec![]]);
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let held = db.held(s.mailbox_id).await.unwrap()[0].id;
    assert!(
        db.reject_message(s.subscriber_id, s.mailbox_id, held, None, "deleted_spam", Timestamp::now()).await.unwrap()
    );
    let (ok, out) = poll(&url, &key, &user, None);
    assert!(ok, "{out}");
    assert_eq!(folders(&user).await, [vec![], vec![], vec![stranger]]);
}

/// The poison-message rule over IMAP: a message that trips a bug in its classification is
/// held unclassified, in Quorum/Held like the rest, and the poll goes on.
#[tokio::test]
async fn a_poison_message_is_held_unclassified_and_the_poll_goes_on() {
    let stack = MailStack::get();
    let (_dir, url, key, user) = imap_subscriber("imap-poison");
    let mut held = vec![message("x@spam.example", "plain spam"), message("p@example.com", "the POISON-9c1e message")];
    for m in &held {
        stack.maildir_drop(&user, m);
    }
    let (ok, out) = poll(&url, &key, &user, Some("panic:classify:POISON-9c1e"));
    assert!(ok && out.contains("2 quarantined"), "the poll goes on: {out}");
    held.sort();
    assert_eq!(folders(&user).await, [vec![], held, vec![]]);
    let db = Sqlite::connect(&url).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
    let reasons: Vec<bool> = db
        .held(s.mailbox_id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.reason.as_deref().unwrap_or_default().starts_with("could not be classified"))
        .collect();
    assert_eq!(reasons.iter().filter(|r| **r).count(), 1, "only the poison message: {reasons:?}");
}
