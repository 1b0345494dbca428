//! Polling at scale (the IMAP issue's scale figure): one `quorum worker` process polls
//! 10,000 POP3 mailboxes of the local Dovecot every 3 minutes through a proxy that adds
//! 50 ms of round trip (25 ms each way; the kernel here has no netem). Their due times are
//! spread over the interval, as in a service that grew over time; one mailbox in a hundred
//! receives a message per interval. Measured over the cycles after the first: the worker's
//! CPU share (user + system time over wall time, from /proc), its peak and final resident
//! memory, and the poll lag (when a poll started after its mailbox fell due) p50, p99 and
//! the worst; beside them the physical limit in the same run: a bare POP3 session (login,
//! UIDL, QUIT, pipelined where it can be) through the same proxy, one after another, and
//! how many of them must run at once to poll every mailbox in time.
//!
//! Run: `tests/setup.sh && cargo build --release -p quorum && cargo bench -p quorum-tests
//! --bench scale`. Options: `-- --mailboxes N --interval SECS --cycles C --rtt-ms MS
//! --concurrency K` (K defaults to the product's `[worker] concurrency`).

use std::{
    collections::HashMap,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use quorum_config::Settings;
use quorum_domain::{Keys, Timestamp};
use quorum_storage::{Database, Sqlite};
use quorum_tests::{
    MailStack, bench_arg,
    dns::{TestDns, Zones},
    dovecot_subscriber_at, fresh_sqlite, quorum,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// A TCP proxy to `target` that delays every byte by `one_way` in each direction without
/// limiting throughput: each direction reads as bytes come and writes them `one_way` after
/// they were read.
async fn latency_proxy(target: u16, one_way: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(delayed(cr, sw, one_way), delayed(sr, cw, one_way));
            });
        }
    });
    port
}

async fn delayed(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, one_way: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send((tokio::time::Instant::now() + one_way, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// A bare POP3 session: the greeting, USER and PASS pipelined, UIDL, QUIT: four round
/// trips, the least an empty poll needs.
async fn bare_session(port: u16, user: &str, password: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut line = String::new();
    let mut answer = async |read: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>, multi: bool| {
        use tokio::io::AsyncBufReadExt;
        line.clear();
        read.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("+OK"), "{line}");
        if multi {
            while line != ".\r\n" {
                line.clear();
                read.read_line(&mut line).await.unwrap();
            }
        }
    };
    answer(&mut read, false).await;
    // USER and PASS together (Dovecot advertises PIPELINING), then UIDL, then QUIT.
    let steps: [(String, &[bool]); 3] = [
        (format!("USER {user}\r\nPASS {password}\r\n"), &[false, false]),
        ("UIDL\r\n".into(), &[true]),
        ("QUIT\r\n".into(), &[false]),
    ];
    for (commands, answers) in steps {
        write.write_all(commands.as_bytes()).await.unwrap();
        for &multi in answers {
            answer(&mut read, multi).await;
        }
    }
}

/// CPU seconds (user + system) and resident memory now and at its peak (KiB) of `pid`.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    (ticks / hz, kib("VmRSS:"), kib("VmHWM:"))
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of benchmarks; there is one.
    }
    let mailboxes = bench_arg("--mailboxes", 10_000);
    let interval = bench_arg("--interval", 180) as i64;
    let cycles = bench_arg("--cycles", 3) as i64;
    let rtt = Duration::from_millis(bench_arg("--rtt-ms", 50) as u64);
    let defaults = Settings::load(None).expect("the product's settings (defaults and QUORUM_* variables)");
    let concurrency = bench_arg("--concurrency", defaults.worker.concurrency);
    let stack = MailStack::get();
    let proxy = latency_proxy(stack.pop3_port, rtt / 2).await;

    let started = Instant::now();
    let users = stack.new_users("scale", mailboxes);
    let master = Keys::generate_master();
    let keys = Keys::from_master_text(&master).unwrap();
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let now = Timestamp::now();
    for user in &users {
        db.add_subscriber(&dovecot_subscriber_at(user, &keys, "127.0.0.1", proxy), now).await.unwrap();
    }
    // Due times spread over the interval, from a minute from now (the worker's start).
    let first = now.0 + 60;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE mailboxes SET next_poll_at = $1 + (id % $2)")
        .bind(first)
        .bind(interval)
        .execute(&pool)
        .await
        .unwrap();
    println!(
        "{mailboxes} POP3 mailboxes through a proxy adding {} ms of round trip, set up in {:.0} s",
        rtt.as_millis(),
        started.elapsed().as_secs_f64()
    );

    // The physical limit: bare sessions through the same proxy, one at a time.
    let probes = 20;
    let t = Instant::now();
    for user in users.iter().take(probes) {
        bare_session(proxy, &user.email, &user.password).await;
    }
    let bare = t.elapsed() / probes as u32;
    println!(
        "bare POP3 session (USER+PASS pipelined, UIDL, QUIT) through the proxy: {:.0} ms; {mailboxes} of them every {interval} s need \
         {:.1} sessions at once, the worker runs up to {concurrency}",
        bare.as_secs_f64() * 1000.0,
        mailboxes as f64 * bare.as_secs_f64() / interval as f64
    );

    let dns = TestDns::start(Zones::new()).await;
    let mut cmd = quorum(&url, &master);
    cmd.env("QUORUM_WORKER__NAME", "scale")
        .env("QUORUM_WORKER__POLL_INTERVAL_SECS", interval.to_string())
        .env("QUORUM_WORKER__CONCURRENCY", concurrency.to_string())
        .env("QUORUM_DNS__NAMESERVERS", dns.addr.to_string())
        .arg("worker")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let worker = Worker(cmd.spawn().expect("starting quorum worker"));
    let pid = worker.0.id();
    while Timestamp::now().0 < first {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every poll's lag: when a mailbox's last poll changes, that poll started `lag` seconds
    // after the due time the sampler saw before it.
    let end = first + interval * cycles;
    let measured_from = first + interval;
    let mut due: HashMap<i64, (i64, Option<i64>)> = HashMap::new();
    let (mut lags, mut lags_all, mut polls) = (Vec::new(), Vec::new(), 0usize);
    let mut mark: Option<(Instant, f64)> = None;
    let mut peak = 0u64;
    let mut delivered_cycle = -1;
    loop {
        let t = Timestamp::now().0;
        if t >= end {
            break;
        }
        let cycle = (t - first) / interval;
        if cycle != delivered_cycle {
            // One mailbox in a hundred gets a message this interval.
            delivered_cycle = cycle;
            for (i, user) in users.iter().enumerate().filter(|(i, _)| i % 100 == cycle as usize % 100) {
                let raw = format!("From: x{i}@spam.example\r\nSubject: scale {cycle}\r\n\r\nhello {i}\r\n");
                stack.maildir_drop(user, raw.as_bytes());
            }
        }
        if mark.is_none() && t >= measured_from {
            mark = Some((Instant::now(), usage(pid).0));
        }
        let rows: Vec<(i64, i64, Option<i64>)> =
            sqlx::query_as("SELECT id, next_poll_at, last_poll_at FROM mailboxes").fetch_all(&pool).await.unwrap();
        for (id, next, last) in rows {
            if let Some((was_due, was_last)) = due.insert(id, (next, last))
                && last.is_some()
                && last != was_last
            {
                polls += 1;
                let lag = (last.unwrap() - was_due).max(0);
                lags_all.push(lag);
                if mark.is_some() {
                    lags.push(lag);
                }
            }
        }
        peak = peak.max(usage(pid).2);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (at, cpu_then) = mark.expect("measured at least one cycle");
    let (cpu_now, rss, hwm) = usage(pid);
    let wall = at.elapsed().as_secs_f64();
    drop(worker);
    dns.stop().await;
    lags.sort_unstable();
    assert!(!lags.is_empty(), "no poll was seen after the first cycle");
    let statuses = db.list_subscribers().await.unwrap();
    let failed = statuses.iter().filter(|s| s.last_error.is_some()).count();
    println!(
        "worker, concurrency {concurrency}: {polls} polls seen ({} after the first cycle); CPU {:.1}% of one core over \
         {wall:.0} s; memory {:.0} MiB resident at the end, {:.0} MiB at most; poll lag after the first cycle: p50 {} s, \
         p99 {} s, worst {} s (first cycle: worst {} s); mailboxes whose last poll failed: {failed}",
        lags.len(),
        100.0 * (cpu_now - cpu_then) / wall,
        rss as f64 / 1024.0,
        hwm.max(peak) as f64 / 1024.0,
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
        lags.last().unwrap(),
        lags_all.iter().max().unwrap(),
    );
}
