//! Several workers on one PostgreSQL (SPEC 6: workers on many hosts lease mailboxes from
//! it). Three `quorum worker` and two `quorum scheduler` processes share 200 Dovecot
//! mailboxes, a third of them on IMAP, that keep receiving mail; one worker is SIGKILLed
//! twice while it holds leases (mid-poll) and restarted. Afterwards every message is in
//! exactly one place (the mailbox for an approved sender, the quarantine for the others,
//! and for IMAP also once in Quorum/Held), Dovecot's own log shows no POP3 mailbox in two
//! sessions at once and no IMAP mailbox in more than two (its one IDLE watcher among all
//! workers, and a poll), and every mailbox got its due summary exactly once.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use quorum_domain::{AuthMethod, EmailAddress, Keys, Protocol, Security, Timestamp};
use quorum_imap::Session;
use quorum_storage::{Database, Postgres};
use quorum_tests::{
    MailStack, TestUser,
    dns::{TestDns, Zones},
    dovecot_subscriber, fresh_postgres, quorum, quorum_service, run, unique,
};

const MAILBOXES: usize = 200;
/// Deliveries into every mailbox, one round every [`ROUND`].
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(3);
/// The approved sender of every other mailbox.
const FRIEND: &str = "friend@sender.test";

/// Every third mailbox is on IMAP.
fn imap(i: usize) -> bool {
    i.is_multiple_of(3)
}

/// How a summary's header section starts its subject.
const SUMMARY: &str = "\nSubject: Quorum summary: ";

fn message(from: &str, token: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: someone@quorum.test\r\nSubject: {token}\r\nMessage-ID: <{token}@sender.test>\r\n\r\n\
         Hello,\r\n.a dot line\r\n{token}\r\n"
    )
    .into_bytes()
}

/// One service process of the cluster, killed if the test fails before stopping it.
struct Service {
    name: String,
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    url: String,
    key: String,
    dns: String,
}

impl Cluster {
    fn start(&self, what: &str, name: &str) -> Service {
        let mut cmd: Command = quorum_service(&self.url, &self.key, None);
        cmd.env("QUORUM_WORKER__NAME", name)
            .env("QUORUM_WORKER__POLL_INTERVAL_SECS", "2")
            .env("QUORUM_WORKER__POP3_TIMEOUT_SECS", "5")
            .env("QUORUM_WORKER__LEASE_SECS", "8")
            .env("QUORUM_WORKER__RETRY_BUSY_SECS", "2")
            // IDLE watch claims last two renewals: a killed worker's run out within the test.
            .env("QUORUM_WORKER__IDLE_RENEW_SECS", "4")
            .env("QUORUM_DNS__NAMESERVERS", &self.dns)
            .env("QUORUM_LOG", "warn")
            .arg(what)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Service { name: name.to_string(), child: cmd.spawn().expect("starting quorum") }
    }
}

/// Mailboxes a worker holds a live lease on: it is polling them now.
async fn leases(pool: &sqlx::PgPool, owner: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM mailboxes WHERE lease_owner = $1 AND lease_until > $2")
        .bind(owner)
        .bind(Timestamp::now().0)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What Dovecot's log says about the `protocol` (pop3, imap) sessions of users whose
/// address starts with `tag`: sessions, sessions that ended without a logout, sessions
/// whose end the log does not show, every time one user had two sessions at once (a login
/// before the end of the user's previous session, or a session refused Dovecot's own lock,
/// `pop3_lock_session`), and the most sessions one user had at once.
#[derive(Debug, Default)]
struct Sessions {
    logins: usize,
    cut: usize,
    unended: usize,
    overlaps: Vec<String>,
    most_at_once: usize,
}

fn sessions(log: &str, protocol: &str, tag: &str) -> Sessions {
    let (login_marker, session_marker) = (format!("{protocol}-login: Info: Login: "), format!("{protocol}("));
    let field = |line: &str, start: &str, end: char| {
        line.split_once(start).and_then(|(_, rest)| rest.split_once(end)).map(|(v, _)| v.to_string())
    };
    // Session id -> (user, line of its login, line of its end). The login process and the
    // session's own process log through different pipes, so a short session's end can be
    // written before its login: each is looked up by id, not by order.
    let mut seen: HashMap<String, (String, Option<usize>, Option<usize>)> = HashMap::new();
    let mut s = Sessions::default();
    for (n, line) in log.lines().enumerate() {
        if line.contains(&login_marker) {
            let (Some(user), Some(id)) = (field(line, "user=<", '>'), field(line, "session=<", '>')) else { continue };
            if user.starts_with(tag) {
                seen.entry(id).or_insert((user, None, None)).1 = Some(n);
            }
        } else if let Some(user) =
            field(line, &session_marker, ')').filter(|u| u.starts_with(tag) && line.contains("Disconnected"))
        {
            let Some(id) = field(line, "><", '>') else { continue };
            seen.entry(id).or_insert((user.clone(), None, None)).2 = Some(n);
            if line.contains("Couldn't lock") {
                s.overlaps.push(format!("refused the lock: {line}"));
            } else if !line.contains("Logged out") {
                s.cut += 1;
            }
        }
    }
    // User -> their sessions as (login line, end line, id).
    type Session<'a> = (usize, Option<usize>, &'a str);
    let mut by_user: HashMap<&str, Vec<Session>> = HashMap::new();
    for (id, (user, login, end)) in &seen {
        if let Some(login) = login {
            by_user.entry(user).or_default().push((*login, *end, id));
        }
    }
    for (user, mut list) in by_user {
        list.sort();
        s.logins += list.len();
        s.unended += list.iter().filter(|(_, end, _)| end.is_none()).count();
        for pair in list.windows(2) {
            let ((_, end, first), (login, _, second)) = (pair[0], pair[1]);
            if end.is_some_and(|end| end > login) {
                s.overlaps.push(format!("{user}: session {second} began before {first} ended"));
            }
        }
        // Sessions open at each login: a sweep over logins and ends in log order. One whose
        // end the log does not show is counted as `unended`, not as open for ever (as for
        // the overlaps above).
        let ended = list.iter().filter_map(|(login, end, _)| end.map(|end| (*login, end)));
        let mut events: Vec<(usize, i32)> = ended.flat_map(|(login, end)| [(login, 1), (end, -1)]).collect();
        events.sort();
        let mut open = 0;
        for (_, step) in events {
            open += step;
            s.most_at_once = s.most_at_once.max(open.max(0) as usize);
        }
    }
    s
}

/// SIGKILLs the oldest worker at a moment it holds leases and starts a new one in its
/// place. It died mid-poll when its leases are still in the database after its death (a
/// poll that ended between the look and the kill would have cleared its lease: then the
/// next worker in line is tried). Returns the killed worker's name and its orphaned leases.
async fn kill_mid_poll(
    pool: &sqlx::PgPool,
    workers: &mut Vec<Service>,
    cluster: &Cluster,
    tag: &str,
    started: &mut usize,
) -> (String, i64) {
    for _ in 0..20 {
        let mut victim = workers.remove(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while leases(pool, &victim.name).await == 0 {
            assert!(Instant::now() < deadline, "{} held no lease for 30 s", victim.name);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        victim.child.kill().unwrap(); // SIGKILL
        victim.child.wait().unwrap();
        let orphaned = leases(pool, &victim.name).await;
        workers.push(cluster.start("worker", &format!("{tag}-w{started}")));
        *started += 1;
        if orphaned > 0 {
            return (victim.name.clone(), orphaned);
        }
    }
    panic!("no worker could be killed while it held a lease in 20 tries");
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, limit: Duration, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_two_schedulers_and_two_kills_lose_and_duplicate_nothing() {
    let stack = MailStack::get();
    let url = fresh_postgres().await;
    let key = Keys::generate_master();
    let keys = Keys::from_master_text(&key).unwrap();
    let (ok, out) = run({
        let mut c = quorum(&url, &key);
        c.arg("migrate");
        c
    });
    assert!(ok, "migrate: {out}");
    let tag = format!("cluster{}", unique().replace('x', ""));
    let users: Vec<TestUser> = stack.new_users(&tag, MAILBOXES);
    let db = Postgres::connect(&url).await.unwrap();
    let now = Timestamp::now();
    let friend = EmailAddress::parse(FRIEND).unwrap();
    for (i, user) in users.iter().enumerate() {
        let mut subscriber = dovecot_subscriber(user, &keys);
        if imap(i) {
            let m = &mut subscriber.mailbox;
            (m.protocol, m.port, m.auth) = (Protocol::Imap, stack.imap_port, AuthMethod::Auto);
        }
        let ids = db.add_subscriber(&subscriber, now).await.unwrap();
        if i % 2 == 0 {
            db.approve_sender(ids.subscriber_id, &friend, now).await.unwrap();
        }
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // Every summary falls due 20 s from now: while the workers are busy and one was killed.
    sqlx::query("UPDATE subscribers SET next_summary_at = $1").bind(now.0 + 20).execute(&pool).await.unwrap();
    let dns = TestDns::start(Zones::new().zone("sender.test")).await;
    let cluster = Cluster { url: url.clone(), key: key.clone(), dns: dns.addr.to_string() };
    let log_start = std::fs::metadata(&stack.dovecot_log).unwrap().len() as usize;

    let mut workers: Vec<Service> = (0..3).map(|i| cluster.start("worker", &format!("{tag}-w{i}"))).collect();
    let mut started = workers.len();
    let schedulers: Vec<Service> = (0..2).map(|i| cluster.start("scheduler", &format!("{tag}-s{i}"))).collect();

    // Mail keeps arriving; after the second and fourth round the first worker is killed
    // while it holds leases, and a new one takes its place.
    let (mut held, mut kept) = (Vec::new(), Vec::new());
    let mut kills = 0;
    for round in 0..ROUNDS {
        for (i, user) in users.iter().enumerate() {
            let token = format!("{tag}-m{round}-{i}-stranger");
            stack.maildir_drop(user, &message(&format!("stranger{round}@sender.test"), &token));
            held.push((i, token));
            if i % 2 == 0 {
                let token = format!("{tag}-m{round}-{i}-friend");
                stack.maildir_drop(user, &message(FRIEND, &token));
                kept.push((i, token));
            }
        }
        if round == 1 || round == 3 {
            kills += 1;
            let (killed, orphaned) = kill_mid_poll(&pool, &mut workers, &cluster, &tag, &mut started).await;
            eprintln!("killed {killed} holding {orphaned} leases");
        }
        tokio::time::sleep(ROUND).await;
    }

    // Every stranger's message quarantined, every summary sent.
    let expected = held.len() as i64;
    wait_until("every stranger's message in the quarantine", Duration::from_secs(120), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(&pool).await.unwrap();
        n >= expected
    })
    .await;
    // Postfix delivers the summaries into the mailboxes, and the workers leave them there.
    // (Read from the Maildirs: a POP3 session of the test's own would compete with the
    // workers' for the mailbox lock.)
    wait_until("a summary in every mailbox", Duration::from_secs(150), || async {
        users.iter().all(|u| stack.in_maildir(u, SUMMARY) > 0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for mut s in workers.into_iter().chain(schedulers) {
        let _ = Command::new("kill").arg("-TERM").arg(s.child.id().to_string()).status();
        s.child.wait().unwrap();
    }
    dns.stop().await;

    // Exactly one place for every message.
    let mut quarantined: HashMap<String, usize> = HashMap::new();
    for user in &users {
        let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
        for m in db.quarantined(s.mailbox_id).await.unwrap() {
            let raw = String::from_utf8_lossy(&db.message_raw(m.id).await.unwrap()).into_owned();
            let token = raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string();
            *quarantined.entry(format!("{}:{token}", user.email)).or_default() += 1;
        }
    }
    let mut in_mailbox: HashMap<String, usize> = HashMap::new();
    let mut summaries = vec![0usize; users.len()];
    for (i, user) in users.iter().enumerate() {
        for (_, raw) in stack.retr_all(user).await {
            let raw = String::from_utf8_lossy(&raw).into_owned();
            if raw.contains(SUMMARY) {
                summaries[i] += 1;
                continue;
            }
            let token = raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string();
            *in_mailbox.entry(format!("{}:{token}", user.email)).or_default() += 1;
        }
    }
    // IMAP: the server's copies in Quorum/Held.
    let mut in_held: HashMap<String, usize> = HashMap::new();
    for user in users.iter().enumerate().filter(|(i, _)| imap(*i)).map(|(_, u)| u) {
        let endpoint = stack.endpoint(stack.imap_port, Security::Plain);
        let mut session = Session::connect(&endpoint, AuthMethod::Auto, &user.email, &user.password).await.unwrap();
        session.select("Quorum.Held").await.unwrap();
        let uids: Vec<u32> = session.list().await.unwrap().iter().map(|l| l.uid).collect();
        for copy in session.fetch(&uids).await.unwrap() {
            let raw = String::from_utf8_lossy(&copy.bytes).into_owned();
            let token = raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string();
            *in_held.entry(format!("{}:{token}", user.email)).or_default() += 1;
        }
        session.logout().await.unwrap();
    }
    let (mut lost, mut duplicated, mut misplaced) = (Vec::new(), Vec::new(), Vec::new());
    for (list, home, away, held_copy) in
        [(&held, &quarantined, &in_mailbox, true), (&kept, &in_mailbox, &quarantined, false)]
    {
        for (i, token) in list {
            let k = format!("{}:{token}", users[*i].email);
            match (home.get(&k).copied().unwrap_or(0), away.get(&k).copied().unwrap_or(0)) {
                (1, 0) => {}
                (0, 0) => lost.push(k.clone()),
                counts => duplicated.push(format!("{k}: {counts:?}")),
            }
            let copies = in_held.get(&k).copied().unwrap_or(0);
            if copies != usize::from(held_copy && imap(*i)) {
                misplaced.push(format!("{k}: {copies} in Quorum/Held"));
            }
        }
    }
    assert!(
        misplaced.is_empty(),
        "{} IMAP copies misplaced: {:?}",
        misplaced.len(),
        &misplaced[..misplaced.len().min(5)]
    );
    let placed = quarantined.values().sum::<usize>() + in_mailbox.values().sum::<usize>();
    assert!(lost.is_empty(), "{} messages lost: {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(
        duplicated.is_empty(),
        "{} messages in two places: {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
    assert_eq!(placed, held.len() + kept.len(), "messages nobody sent");
    assert!(summaries.iter().all(|&n| n == 1), "summaries per mailbox: {:?}", summaries);
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM summaries").fetch_one(&pool).await.unwrap();
    assert_eq!(recorded, MAILBOXES as i64, "summaries recorded");

    // Dovecot's view: never two POP3 sessions of one mailbox at once; for IMAP, at most its
    // one watcher and a poll (with a watcher per worker that polled it, up to four).
    let log = std::fs::read(&stack.dovecot_log).unwrap();
    let log = String::from_utf8_lossy(&log[log_start.min(log.len())..]);
    let seen = sessions(&log, "pop3", &tag);
    assert!(
        seen.overlaps.is_empty(),
        "{} overlapping sessions: {:?}",
        seen.overlaps.len(),
        &seen.overlaps[..seen.overlaps.len().min(5)]
    );
    let imap_seen = sessions(&log, "imap", &tag);
    assert!(imap_seen.logins > 0 && imap_seen.most_at_once <= 2, "IMAP sessions: {imap_seen:?}");
    println!(
        "{MAILBOXES} mailboxes ({} on IMAP), {} messages ({} held, {} left for approved senders), {kills} workers \
         killed mid-poll, {} POP3 sessions ({} cut by the kills, {} with no end in the log, 0 overlapping), {} IMAP \
         sessions (at most {} of one mailbox at once), {} summaries (1 per mailbox); lost 0, duplicated 0",
        (0..MAILBOXES).filter(|&i| imap(i)).count(),
        held.len() + kept.len(),
        held.len(),
        kept.len(),
        seen.logins,
        seen.cut,
        seen.unended,
        imap_seen.logins,
        imap_seen.most_at_once,
        summaries.iter().sum::<usize>()
    );
}

/// The log reader above, on Dovecot's own line formats.
#[test]
fn the_log_reader_finds_overlaps_and_reads_reordered_ends() {
    let login = |user: &str, id: &str| {
        format!(
            "Dec 06 22:09:31 pop3-login: Info: Login: user=<{user}>, method=PLAIN, rip=127.0.0.1, mpid=1, secured, session=<{id}>\n"
        )
    };
    let end = |user: &str, id: &str, how: &str| {
        format!(
            "Dec 06 22:09:31 pop3({user})<23823><{id}>: Info: Disconnected: {how} top=0/0, retr=0/0, del=0/0, size=0\n"
        )
    };
    // A short session whose end is written first, then two sessions one after the other,
    // one cut, and an unrelated user.
    let clean = [
        end("t-a", "s1", "Logged out"),
        login("t-a", "s1"),
        login("t-a", "s2"),
        end("t-a", "s2", "Connection closed"),
        login("t-a", "s3"),
        end("t-a", "s3", "Logged out"),
        login("other", "s4"),
    ]
    .concat();
    let s = sessions(&clean, "pop3", "t-");
    assert_eq!((s.logins, s.cut, s.unended, s.overlaps.len(), s.most_at_once), (3, 1, 0, 0, 1), "{s:?}");
    // The same lines say nothing about IMAP sessions.
    assert_eq!(sessions(&clean, "imap", "t-").logins, 0);
    // Two at once, and one refused the lock.
    let two = [
        login("t-a", "s1"),
        login("t-a", "s2"),
        end("t-a", "s1", "Logged out"),
        end("t-a", "s2", "Couldn't lock POP3 session"),
        login("t-b", "s3"),
    ]
    .concat();
    let s = sessions(&two, "pop3", "t-");
    assert_eq!((s.logins, s.unended, s.overlaps.len(), s.most_at_once), (3, 1, 2, 2), "{s:?}");
    // IMAP: a session whose end the log lost (not counted as open), a watcher's long
    // session with two polls inside it, then a second watcher and a poll: three at once.
    let imap = |line: String| line.replace("pop3", "imap");
    let three = [
        login("t-a", "u1"),
        login("t-a", "w1"),
        login("t-a", "p1"),
        end("t-a", "p1", "Logged out"),
        login("t-a", "p2"),
        end("t-a", "p2", "Logged out"),
        login("t-a", "w2"),
        login("t-a", "p3"),
        end("t-a", "w1", "Connection closed"),
        end("t-a", "p3", "Logged out"),
        end("t-a", "w2", "Logged out"),
    ]
    .map(imap)
    .concat();
    let s = sessions(&three, "imap", "t-");
    assert_eq!((s.logins, s.cut, s.unended, s.most_at_once), (6, 1, 1, 3), "{s:?}");
}
