//! End-to-end polling benchmark: one worker drains 2,000 corpus messages from a local
//! Dovecot mailbox into SQLite, forgery checks included, over POP3 and over IMAP, each
//! compared in the same round with the physical limit of the same Dovecot: a bare client
//! that only fetches the same messages, pipelined (POP3: all RETRs in flight, 64 at a time;
//! IMAP: one UID FETCH of every body), and for POP3 also one RETR at a time.
//!
//! Run: `tests/setup.sh && cargo bench -p quorum-tests --bench drain` (needs the team kit's
//! corpus in ../shared/corpus beside the repository). Options: `-- --messages N --rounds R`.

use std::{sync::Arc, time::Instant};

use quorum_config::WorkerSettings;
use quorum_domain::{AuthMethod, Keys, Protocol, Security, Timestamp};
use quorum_forgery::Checker;
use quorum_imap::Session;
use quorum_storage::{Database, Sqlite};
use quorum_tests::{
    MailStack, TestUser, bench_arg, corpus_message, corpus_paths,
    dns::{TestDns, Zones, dns_settings},
    dovecot_subscriber, fresh_sqlite,
};
use quorum_worker::Worker;

fn load_corpus(n: usize) -> Vec<Vec<u8>> {
    let mut files =
        corpus_paths(&quorum_tests::corpus_dir().expect("the corpus must be beside the repository (../shared/corpus)"));
    // Interleave groups deterministically so spam and ham are mixed as in a real inbox.
    files.sort_by_key(|p| p.file_name().map(|f| f.to_os_string()));
    files.iter().take(n).map(|p| corpus_message(p)).collect()
}

/// Every message by pipelined RETR (the client's own batching, as the worker uses it).
async fn pipelined_retr(stack: &MailStack, user: &TestUser) -> u64 {
    let mut client = stack.login(user).await;
    let list = client.list().await.unwrap();
    let got = client.retr_many(&list).await;
    assert!(got.broken.is_none());
    let bytes = got.messages.iter().map(|m| m.as_ref().unwrap().len() as u64).sum();
    client.quit().await.unwrap();
    bytes
}

/// Every message of the Inbox in one UID FETCH of the bodies: how many.
async fn imap_fetch(stack: &MailStack, user: &TestUser) -> usize {
    let endpoint = stack.endpoint(stack.imap_port, Security::Plain);
    let mut session = Session::connect(&endpoint, AuthMethod::Auto, &user.email, &user.password).await.unwrap();
    session.select("INBOX").await.unwrap();
    let uids: Vec<u32> = session.list().await.unwrap().iter().map(|l| l.uid).collect();
    // Dovecot sends the corpus's bare LF line ends as CRLF, so the bytes are counted, not
    // compared.
    let fetched = session.fetch(&uids).await.unwrap();
    assert!(fetched.iter().all(|f| !f.bytes.is_empty()));
    session.logout().await.unwrap();
    fetched.len()
}

async fn plain_retr(stack: &MailStack, user: &TestUser) -> (usize, u64) {
    let mut client = stack.login(user).await;
    let list = client.uidl().await.unwrap();
    let mut bytes = 0u64;
    for (n, _) in &list {
        // One command, one answer: what a plain client without pipelining does.
        bytes += client.retr(*n).await.unwrap().len() as u64;
    }
    client.quit().await.unwrap();
    (list.len(), bytes)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of benchmarks; there is one.
    }
    let messages = bench_arg("--messages", 2000);
    let rounds = bench_arg("--rounds", 3);
    let stack = MailStack::get();
    let corpus = load_corpus(messages);
    let total_bytes: usize = corpus.iter().map(Vec::len).sum();
    println!("corpus: {} messages, {:.1} MiB", corpus.len(), total_bytes as f64 / 1048576.0);

    let keys = Arc::new(Keys::from_master_text(&Keys::generate_master()).unwrap());
    let settings = WorkerSettings {
        poll_interval_secs: 180,
        retry_busy_secs: 60,
        retry_error_secs: 300,
        concurrency: 1,
        pop3_timeout_secs: 60,
        idle_connections: 0,
        idle_renew_secs: 1500,
        max_message_size: 100 * 1024 * 1024,
        lease_secs: 3600,
        tls_ca_files: vec![],
        name: Some("bench".into()),
    };
    // The forgery checks ask an in-process DNS server that knows no records (every
    // answer NXDOMAIN, as for most spam sources); its cache warms over the rounds.
    let dns = TestDns::start(Zones::new()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    for round in 1..=rounds {
        for protocol in [Protocol::Pop3, Protocol::Imap] {
            let user = stack.new_user("bench");
            for m in &corpus {
                stack.maildir_drop(&user, m);
            }
            let start = Instant::now();
            let (limit, plain) = match protocol {
                Protocol::Pop3 => {
                    let (_, bytes) = plain_retr(stack, &user).await;
                    let plain = start.elapsed();
                    let start = Instant::now();
                    assert_eq!(pipelined_retr(stack, &user).await, bytes);
                    (start.elapsed(), Some(plain))
                }
                Protocol::Imap => {
                    assert_eq!(imap_fetch(stack, &user).await, corpus.len());
                    (start.elapsed(), None)
                }
            };

            let (_dir, url) = fresh_sqlite();
            let db = Sqlite::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            let mut new = dovecot_subscriber(&user, &keys);
            if protocol == Protocol::Imap {
                (new.mailbox.protocol, new.mailbox.port) = (Protocol::Imap, stack.imap_port);
            }
            let ids = db.add_subscriber(&new, Timestamp::now()).await.unwrap();
            let worker = Worker::new(db.clone(), keys.clone(), settings.clone(), checker.clone()).unwrap();
            let now = Timestamp::now();
            let leased =
                db.lease_mailbox(ids.mailbox_id, "bench", now, Timestamp(now.0 + 3600), false).await.unwrap().unwrap();

            let start = Instant::now();
            let outcome = worker.poll(leased).await;
            let drain = start.elapsed();

            assert_eq!(outcome.quarantined as usize, corpus.len(), "{:?}", outcome.error);
            assert!(stack.retr_all(&user).await.is_empty(), "Inbox emptied");
            let plain = plain.map_or(String::new(), |p| format!(", one RETR at a time {:.2} s", p.as_secs_f64()));
            println!(
                "round {round} {protocol}: bare client, pipelined: {:.2} s = {:.0} msg/s{plain} | worker drain into SQLite with forgery checks: {:.2} s = {:.0} msg/s = {:.0}% of the bare client's rate",
                limit.as_secs_f64(),
                corpus.len() as f64 / limit.as_secs_f64(),
                drain.as_secs_f64(),
                outcome.quarantined as f64 / drain.as_secs_f64(),
                100.0 * limit.as_secs_f64() / drain.as_secs_f64(),
            );
        }
    }
}
