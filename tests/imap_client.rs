//! Quorum's IMAP session (shared/imap) against the mail stack's Dovecot: login over STARTTLS
//! and implicit TLS, folders by the server's delimiter, listing, byte-exact fetches, keywords,
//! and moves that keep bytes and flags, with MOVE and by COPY + EXPUNGE.

use quorum_domain::{AuthMethod, Security};
use quorum_imap::{Endpoint, ImapError, Listed, Session};
use quorum_tests::{MailStack, TestUser};

/// IMAP with STARTTLS (or none, for [`Security::Plain`]) or IMAPS.
fn options(stack: &MailStack, security: Security) -> Endpoint {
    stack.endpoint(if security == Security::Tls { stack.imaps_port } else { stack.imap_port }, security)
}

async fn open(stack: &MailStack, user: &TestUser) -> Session {
    Session::connect(&options(stack, Security::StartTls), AuthMethod::Auto, &user.email, &user.password).await.unwrap()
}

#[tokio::test]
async fn logs_in_over_starttls_and_implicit_tls_and_tells_a_wrong_password_apart() {
    let stack = MailStack::get();
    let user = stack.new_user("imap-login");
    for (security, method) in [
        (Security::StartTls, AuthMethod::Auto),
        (Security::Tls, AuthMethod::Plain),
        (Security::Plain, AuthMethod::Auto),
    ] {
        let session = Session::connect(&options(stack, security), method, &user.email, &user.password)
            .await
            .unwrap_or_else(|e| panic!("{security:?} {method:?}: {e}"));
        let caps = *session.capabilities();
        assert!(caps.idle && caps.moves && caps.uidplus && caps.condstore, "{caps:?}");
        session.logout().await.unwrap();
    }
    for method in [AuthMethod::Auto, AuthMethod::Plain] {
        let wrong =
            Session::connect(&options(stack, Security::StartTls), method, &user.email, "not-the-password").await;
        let Err(e) = wrong else { panic!("a wrong password logged in") };
        assert!(e.is_auth_failure() && !e.is_transient(), "{method:?}: {e:?}");
    }
    // Nothing listens on the port: a clear, transient error.
    let mut closed = options(stack, Security::StartTls);
    closed.port = 1;
    let e = Session::connect(&closed, AuthMethod::Auto, &user.email, &user.password).await.err().unwrap();
    assert!(e.is_transient() && e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn folders_are_made_once_under_the_servers_delimiter_and_subscribed() {
    let stack = MailStack::get();
    let user = stack.new_user("imap-folder");
    let mut session = open(stack, &user).await;
    // Dovecot's Maildir namespace separates levels with a dot.
    let held = session.folder(&["Quorum", "Held"]).await.unwrap();
    assert_eq!(held, "Quorum.Held");
    assert_eq!(session.folder(&["Quorum", "Held"]).await.unwrap(), held, "a second call finds it");
    let selected = session.select(&held).await.unwrap();
    assert_eq!(selected.exists, 0);
    // Another session (another worker) finds it too, and names are checked before sending.
    let mut other = open(stack, &user).await;
    assert_eq!(other.folder(&["Quorum", "Held"]).await.unwrap(), held);
    for bad in [&["Quorum", "a.b"][..], &["Quorum", "x\r\nA1 LOGOUT"], &["Quorum", ""], &["*"]] {
        assert!(matches!(other.folder(bad).await, Err(ImapError::InvalidArgument(_))), "{bad:?}");
    }
    let subscribed = std::fs::read_to_string(stack.mail_dir.join(&user.email).join("subscriptions")).unwrap();
    assert!(subscribed.lines().any(|l| l.replace('\t', ".") == held), "{subscribed:?}");
    other.logout().await.unwrap();
    session.logout().await.unwrap();
}

/// Three messages: 8-bit text, a body that looks like IMAP, an empty body.
fn messages() -> Vec<Vec<u8>> {
    vec![
        b"From: a@example.org\r\nSubject: one\r\n\r\ncaf\xc3\xa9 \xff\xfe\r\n.\r\n".to_vec(),
        b"From: b@example.org\r\nSubject: two\r\n\r\n)\r\nA0009 OK done\r\n* 2 FETCH ({5}\r\n".to_vec(),
        b"From: c@example.org\r\nSubject: three\r\n\r\n".to_vec(),
    ]
}

/// Lists, fetches and moves two of three messages to `Quorum/Held`; returns the session
/// with the held folder selected, and its name.
async fn hold_two(session: &mut Session, stack: &MailStack, user: &TestUser) -> String {
    let raw = messages();
    for m in &raw {
        stack.maildir_drop(user, m);
    }
    let held = session.folder(&["Quorum", "Held"]).await.unwrap();
    session.select("INBOX").await.unwrap();
    // What another client marked deleted is not Quorum's to move.
    let listed: Vec<Listed> = session.list().await.unwrap().into_iter().filter(|l| !l.deleted).collect();
    assert_eq!(listed.len(), 3);
    let uids: Vec<u32> = listed.iter().map(|l| l.uid).collect();
    let fetched = session.fetch(&uids).await.unwrap();
    let mut got: Vec<Vec<u8>> = fetched.iter().map(|f| f.bytes.clone()).collect();
    let mut want = raw.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "byte for byte");
    for l in &listed {
        let bytes = &fetched.iter().find(|f| f.uid == l.uid).unwrap().bytes;
        assert_eq!(l.size as usize, bytes.len(), "RFC822.SIZE is the size fetched");
        assert!(l.keywords.is_empty() && !l.deleted && !l.seen);
    }
    // Fetching is a peek: nothing is marked read. A keyword marks one message.
    session.add_keyword(&uids[..1], "$QuorumReleased").await.unwrap();
    assert!(matches!(session.add_keyword(&uids, "\\Seen").await, Err(ImapError::InvalidArgument(_))));
    session.move_to(&uids[..2], &held).await.unwrap();
    let left: Vec<u32> = session.list().await.unwrap().iter().filter(|l| !l.deleted).map(|l| l.uid).collect();
    assert_eq!(left, vec![uids[2]], "only the third stays");
    let before: Vec<Vec<u8>> =
        [uids[0], uids[1]].iter().map(|u| fetched.iter().find(|f| f.uid == *u).unwrap().bytes.clone()).collect();
    session.select(&held).await.unwrap();
    let moved = session.list().await.unwrap();
    assert_eq!(moved.len(), 2);
    let bytes = session.fetch(&moved.iter().map(|l| l.uid).collect::<Vec<_>>()).await.unwrap();
    let mut after: Vec<Vec<u8>> = bytes.into_iter().map(|f| f.bytes).collect();
    let mut before = before;
    after.sort();
    before.sort();
    assert_eq!(after, before, "moved byte for byte");
    assert_eq!(moved.iter().filter(|l| l.keywords == ["$QuorumReleased"]).count(), 1, "{moved:?}");
    held
}

#[tokio::test]
async fn messages_are_fetched_byte_for_byte_and_moved_with_their_keywords() {
    let stack = MailStack::get();
    let user = stack.new_user("imap-move");
    let mut session = open(stack, &user).await;
    assert!(session.capabilities().moves);
    let held = hold_two(&mut session, stack, &user).await;
    // Nothing was marked read on the way (BODY.PEEK), and an empty set is no command.
    assert!(session.list().await.unwrap().iter().all(|l| !l.seen));
    session.fetch(&[]).await.unwrap();
    session.move_to(&[], "INBOX").await.unwrap();
    let uids: Vec<u32> = session.list().await.unwrap().iter().map(|l| l.uid).collect();
    session.move_to(&uids, "INBOX").await.unwrap();
    assert!(session.list().await.unwrap().is_empty());
    assert_eq!(session.select("INBOX").await.unwrap().exists, 3, "back in the Inbox: {held}");
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_uid_that_is_gone_is_simply_absent_and_a_missing_folder_is_refused() {
    let stack = MailStack::get();
    let user = stack.new_user("imap-gone");
    stack.maildir_drop(&user, &messages()[0]);
    let mut session = open(stack, &user).await;
    let selected = session.select("INBOX").await.unwrap();
    let uid = session.list().await.unwrap()[0].uid;
    assert_eq!(session.fetch(&[uid, uid + 100]).await.unwrap().len(), 1);
    let e = session.select("No such folder").await.unwrap_err();
    assert!(matches!(e, ImapError::Refused { command: "SELECT", .. }) && !e.is_transient(), "{e:?}");
    // A refusal leaves the session usable, and the mailbox is as it was.
    assert_eq!(session.select("INBOX").await.unwrap(), selected);
    session.logout().await.unwrap();
}

/// Servers without MOVE: COPY, `\Deleted`, then UID EXPUNGE (UIDPLUS), which removes only the
/// messages moved, or plain EXPUNGE, which also removes what another client had marked
/// `\Deleted` (as that client asked).
#[tokio::test]
async fn without_move_a_move_is_copy_then_expunge() {
    let stack = MailStack::get();
    for (host, uidplus) in [(&stack.imap_without_move, true), (&stack.imap_without_move_or_uidplus, false)] {
        let user = stack.new_user("imap-copy");
        // A message the subscriber's own client marked deleted and has not expunged.
        stack.maildir_drop(&user, b"From: d@example.org\r\nSubject: marked\r\n\r\nx\r\n");
        let mut options = options(stack, Security::Plain);
        options.host = host.clone();
        let mut session = Session::connect(&options, AuthMethod::Auto, &user.email, &user.password).await.unwrap();
        let caps = *session.capabilities();
        assert!(!caps.moves && caps.uidplus == uidplus, "{host}: {caps:?}");
        session.select("INBOX").await.unwrap();
        let marked = session.list().await.unwrap()[0].uid;
        {
            use futures::TryStreamExt;
            let mut other = stack.other_imap_client(&user).await;
            let stored: Vec<_> =
                other.uid_store(marked.to_string(), "+FLAGS (\\Deleted)").await.unwrap().try_collect().await.unwrap();
            assert_eq!(stored.len(), 1);
            other.logout().await.unwrap();
        }
        hold_two(&mut session, stack, &user).await;
        session.select("INBOX").await.unwrap();
        let left: Vec<u32> = session.list().await.unwrap().iter().map(|l| l.uid).collect();
        assert_eq!(left.contains(&marked), uidplus, "{host}: {left:?}");
        assert_eq!(left.len(), 1 + usize::from(uidplus), "{host}: {left:?}");
        session.logout().await.unwrap();
    }
}

/// IDLE: a message delivered while idling ends the wait with news; a wait with nothing new
/// ends empty; the session goes on afterwards.
#[tokio::test]
async fn idle_announces_new_mail_and_ends_after_its_wait() {
    let stack = MailStack::get();
    let user = stack.new_user("imap-idle");
    let mut session = open(stack, &user).await;
    session.select("INBOX").await.unwrap();
    let (session, news) = session.idle(std::time::Duration::from_millis(300)).await.unwrap();
    assert!(!news, "nothing arrived");
    let dropper = {
        let user = user.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            MailStack::get().maildir_drop(&user, &messages()[0]);
        })
    };
    // Long enough that only the announcement can end it within the test's time.
    let (mut session, news) = session.idle(std::time::Duration::from_secs(600)).await.unwrap();
    dropper.await.unwrap();
    assert!(news, "the new message was announced");
    assert_eq!(session.list().await.unwrap().len(), 1, "the session goes on");
    session.logout().await.unwrap();
}

/// A server that refuses a UID FETCH (tagged NO) is not an empty mailbox: async-imap's
/// FETCH stream ends at the tagged line without reading it, so the session reads it itself.
/// A scripted server, since Dovecot does not refuse a listing.
#[tokio::test]
async fn a_refused_fetch_is_an_error_not_an_empty_mailbox() {
    let (port, _server) = quorum_tests::scripted_imap(|tag, command| {
        match command.split(' ').next().unwrap_or_default() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n"),
            "SELECT" => format!("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n"),
            "UID" => format!("{tag} NO [SERVERBUG] cannot list now\r\n"),
            _ => format!("{tag} OK done\r\n"),
        }
        .into_bytes()
    })
    .await;
    let mut endpoint = MailStack::get().endpoint(port, Security::Plain);
    endpoint.timeout = std::time::Duration::from_secs(5);
    let mut session = Session::connect(&endpoint, AuthMethod::Auto, "u", "p").await.unwrap();
    assert_eq!(session.select("INBOX").await.unwrap().exists, 3);
    let e = session.list().await.unwrap_err();
    assert!(matches!(&e, ImapError::Refused { command: "UID FETCH", text } if text.contains("cannot list")), "{e:?}");
    let e = session.fetch(&[1, 2]).await.unwrap_err();
    assert!(matches!(e, ImapError::Refused { .. }), "{e:?}");
}

/// A server's answer to one command as Dovecot would give it, then mutated by `rng`: bytes
/// changed, inserted, cut off, lines repeated.
fn hostile_answer(rng: &mut quorum_tests::Rng, tag: &str, command: &str) -> Vec<u8> {
    let mut answer: Vec<u8> = match command.split(' ').next().unwrap_or_default() {
        "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\r\n{tag} OK done\r\n"),
        "SELECT" => {
            format!("* 2 EXISTS\r\n* OK [UIDVALIDITY 9] v\r\n* OK [UIDNEXT 4] n\r\n{tag} OK [READ-WRITE] s\r\n")
        }
        "LIST" => format!("* LIST (\\HasNoChildren) \".\" \"Quorum.Held\"\r\n{tag} OK l\r\n"),
        "UID" => format!(
            "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS (\\Seen $QuorumReleased) BODY[] {{5}}\r\nab\0\r\n)\r\n\
             * 2 FETCH (UID 3 RFC822.SIZE 2 FLAGS () BODY[] {{2}}\r\n\r\n)\r\n* 3 EXISTS\r\n{tag} OK f\r\n"
        ),
        _ => format!("{tag} OK done\r\n"),
    }
    .into_bytes();
    for _ in 0..rng.below(4) {
        let at = rng.below(answer.len() + 1);
        match rng.below(5) {
            0 if at < answer.len() => answer[at] = rng.next_u64() as u8,
            1 => answer.splice(at..at, (0..rng.below(12)).map(|_| rng.next_u64() as u8)).for_each(drop),
            2 => answer.truncate(at),
            3 => answer.splice(at..at, *b"{4294967295}\r\n").for_each(drop),
            _ => {
                let line = answer[..at].to_vec();
                answer.extend_from_slice(&line);
            }
        }
    }
    answer
}

/// A hostile or broken server never panics a session: every call on it ends, with an answer
/// or an error, within its timeout. Runs for `QUORUM_FUZZ_SECS` (3 s unless set, as the
/// corpus fuzz targets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_answers_never_panic_a_session() {
    let secs: u64 = std::env::var("QUORUM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut rng = quorum_tests::Rng(0x1ab5_c0de);
    let mut servers = 0u64;
    while std::time::Instant::now() < until {
        let seed = rng.next_u64();
        let (port, server) = quorum_tests::scripted_imap(move |tag, command| {
            let mut rng = quorum_tests::Rng(seed ^ command.len() as u64);
            hostile_answer(&mut rng, tag, command)
        })
        .await;
        let mut endpoint = MailStack::get().endpoint(port, Security::Plain);
        endpoint.timeout = std::time::Duration::from_millis(500);
        if let Ok(mut s) = Session::connect(&endpoint, AuthMethod::Auto, "u", "p").await {
            let _ = s.folder(&["Quorum", "Held"]).await;
            let _ = s.select("INBOX").await;
            let _ = s.list().await;
            let _ = s.fetch(&[1, 2, 3]).await;
            let _ = s.move_to(&[1], "Quorum.Held").await;
            let _ = s.add_keyword(&[1], "$QuorumReleased").await;
            let _ = s.logout().await;
        }
        server.abort();
        servers += 1;
    }
    eprintln!("{servers} hostile servers, seed 0x1ab5c0de");
    assert!(servers > 0);
}
