//! IDLE latency (the IMAP issue): one worker watches 1,000 IMAP mailboxes of the local
//! Dovecot with IDLE and polls them only every hour; a message is delivered into one
//! mailbox at a time (into its Maildir, as Dovecot's LMTP would) and timed until it lies in
//! that mailbox's `Quorum/Held`. Prints p50, p99 and the slowest, and how long setting up
//! the watchers took.
//!
//! Run: `tests/setup.sh && cargo bench -p quorum-tests --bench idle`. Options:
//! `-- --mailboxes N --messages M`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use quorum_config::WorkerSettings;
use quorum_domain::{Keys, Protocol, Timestamp};
use quorum_forgery::Checker;
use quorum_storage::{Database, Sqlite};
use quorum_tests::{
    MailStack, TestUser, bench_arg,
    dns::{TestDns, Zones, dns_settings},
    dovecot_subscriber, fresh_sqlite,
};
use quorum_worker::Worker;

/// Files in the user's `Quorum/Held` (Dovecot's Maildir++ folder `.Quorum.Held`).
fn held(stack: &MailStack, user: &TestUser) -> usize {
    let dir = stack.mail_dir.join(&user.email).join(".Quorum.Held");
    ["new", "cur"].iter().filter_map(|d| std::fs::read_dir(dir.join(d)).ok()).map(Iterator::count).sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of benchmarks; there is one.
    }
    let mailboxes = bench_arg("--mailboxes", 1000);
    let messages = bench_arg("--messages", 200).min(mailboxes);
    let stack = MailStack::get();
    let users = stack.new_users("idle-bench", mailboxes);
    let keys = Arc::new(Keys::from_master_text(&Keys::generate_master()).unwrap());
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    for user in &users {
        let mut new = dovecot_subscriber(user, &keys);
        (new.mailbox.protocol, new.mailbox.port) = (Protocol::Imap, stack.imap_port);
        db.add_subscriber(&new, Timestamp::now()).await.unwrap();
    }
    let settings = WorkerSettings {
        poll_interval_secs: 3600,
        retry_busy_secs: 60,
        retry_error_secs: 300,
        concurrency: 32,
        pop3_timeout_secs: 60,
        idle_connections: mailboxes,
        idle_renew_secs: 1500,
        max_message_size: 100 * 1024 * 1024,
        lease_secs: 3600,
        tls_ca_files: vec![],
        name: Some("idle-bench".into()),
    };
    let dns = TestDns::start(Zones::new()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let worker = Worker::new(db.clone(), keys, settings, checker).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(async move { worker.run(shutdown).await });

    // Every mailbox polled once (each then gets its watcher), and a moment for the last
    // watchers to log in and start IDLE.
    loop {
        let statuses = db.list_subscribers().await.unwrap();
        if statuses.iter().all(|s| s.polls >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let polled = started.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!("{mailboxes} IMAP mailboxes polled once in {:.1} s; watchers given 10 s more", polled.as_secs_f64());

    let step = mailboxes / messages;
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let user = &users[i * step];
        let raw = format!("From: x{i}@spam.example\r\nSubject: idle {i}\r\n\r\nhello\r\n");
        let delivered = Instant::now();
        stack.maildir_drop(user, raw.as_bytes());
        while held(stack, user) == 0 {
            assert!(delivered.elapsed() < Duration::from_secs(120), "message {i} not held within 2 minutes");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(delivered.elapsed());
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    latencies.sort();
    println!(
        "delivery into Dovecot -> in Quorum/Held, {messages} messages over {mailboxes} idle mailboxes: \
         p50 {:.0} ms, p99 {:.0} ms, slowest {:.0} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
}
