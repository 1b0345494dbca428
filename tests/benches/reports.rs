//! Operators' reports benchmark (the reputation issue): the campaign report of the last 12
//! hours and the blocklist exports of the last 7 days, on a database holding 1,000,000
//! messages over 30 days from 100,000 handoff IPs (70% of them spam, four reputation keys
//! each), on SQLite and on PostgreSQL, through the same functions `/admin/campaigns`, the
//! CLI and `/admin/blocklist/<format>` call.
//!
//! Run: `tests/setup.sh && cargo bench -p quorum-tests --bench reports`. Options:
//! `-- --messages N --ips M --rounds R`. Filling the databases takes minutes; only the
//! reports are timed.

use std::time::Instant;

use quorum_domain::{Keys, Timestamp};
use quorum_reputation::blocklist::Format;
use quorum_storage::{Database, Postgres, Sqlite};
use quorum_tests::{TestUser, bench_arg, dovecot_subscriber, fresh_postgres, fresh_sqlite};

const DAYS: i64 = 30;
const SUBSCRIBERS: usize = 100;
/// Rows per INSERT statement while filling.
const CHUNK: usize = 500;

/// One generated message: (mailbox index, arrival, status, its four keys).
fn message(i: usize, messages: usize, ips: usize, now: i64) -> (usize, i64, &'static str, [(&'static str, String); 4]) {
    let at = now - (i as i64 * DAYS * 86_400) / messages as i64;
    // A deterministic scramble, so consecutive messages come from unrelated hosts.
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let ip = h as usize % ips;
    let status = match h % 10 {
        0..=2 => "held",
        3..=4 => "probe_spam",
        5..=7 => "deleted_statistical",
        _ => "deleted_spam",
    };
    let (a, b, c) = (ip / 65_536 % 200 + 20, ip / 256 % 256, ip % 256);
    let keys = [
        ("ip", format!("{a}.{b}.{c}.9")),
        ("network", format!("{a}.{b}.{c}.0/24")),
        ("sender_domain", format!("d{}.example", h % 20_000)),
        ("url_domain", format!("u{}.example", h % 5_000)),
    ];
    (i % SUBSCRIBERS, at, status, keys)
}

macro_rules! fill {
    ($db:expr, $mailboxes:expr, $messages:expr, $ips:expr, $now:expr) => {{
        let pool = $db.pool();
        let mut tx = pool.begin().await.unwrap();
        for start in (0..$messages).step_by(CHUNK) {
            let rows: Vec<_> = (start..($messages).min(start + CHUNK)).map(|i| message(i, $messages, $ips, $now)).collect();
            let values: Vec<String> = (0..rows.len())
                .map(|r| {
                    let p = 6 * r;
                    format!("(${}, ${}, ${}, ${}, 8, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6)
                })
                .collect();
            let sql = format!(
                "INSERT INTO messages (mailbox_id, uidl, content_hash, raw, size, status, quarantined_at) VALUES {} RETURNING id",
                values.join(", ")
            );
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for (n, (mailbox, at, status, _)) in rows.iter().enumerate() {
                let i = start + n;
                q = q
                    .bind($mailboxes[*mailbox])
                    .bind(format!("u{i}"))
                    .bind((i as u64).to_be_bytes().to_vec())
                    .bind(b"raw msg!".to_vec())
                    .bind(*status)
                    .bind(*at);
            }
            let ids = q.fetch_all(&mut *tx).await.unwrap();
            let values: Vec<String> =
                (0..rows.len() * 4).map(|r| format!("(${}, ${}, ${})", 3 * r + 1, 3 * r + 2, 3 * r + 3)).collect();
            let sql = format!("INSERT INTO message_reputation (message_id, kind, name) VALUES {}", values.join(", "));
            let mut q = sqlx::query(&sql);
            for (id, (_, _, _, keys)) in ids.iter().zip(&rows) {
                for (kind, name) in keys {
                    q = q.bind(*id).bind(*kind).bind(name.clone());
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        // The tables' rows: every key once, a few with ham (a host, a domain per hundred).
        let mut keys: Vec<(&str, String)> =
            (0..$messages).flat_map(|i| message(i, $messages, $ips, $now).3).collect();
        keys.sort();
        keys.dedup();
        let mass = quorum_reputation::mass($now);
        for chunk in keys.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|r| format!("(${}, ${}, ${}, ${}, ${}, $1, $1)", 4 * r + 2, 4 * r + 3, 4 * r + 4, 4 * r + 4, 4 * r + 5))
                .collect();
            let sql = format!(
                "INSERT INTO reputation (kind, name, messages, recipients, inbox, first_seen, last_seen) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind($now);
            for (n, (kind, name)) in chunk.iter().enumerate() {
                let ham = if n % 100 == 0 { mass } else { 0.0 };
                q = q.bind(*kind).bind(name.clone()).bind(10.0 * mass).bind(ham);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }};
}

async fn measure(name: &str, db: &impl Database, rounds: usize) {
    for round in 1..=rounds {
        let now = Timestamp::now();
        let t = Instant::now();
        let quorum_web::reports::CampaignReport { spam, groups, .. } =
            quorum_web::reports::campaigns(db, now.minus(std::time::Duration::from_secs(12 * 3_600)), 2).await.unwrap();
        let report = t.elapsed();
        let mut exports = Vec::new();
        for format in [Format::Cidr, Format::Domains] {
            let t = Instant::now();
            let text =
                quorum_web::reports::blocklist(db, format, now.minus(std::time::Duration::from_secs(7 * 86_400)), 3)
                    .await
                    .unwrap();
            exports.push(format!(
                "{:?} {:.2} s ({} entries)",
                format,
                t.elapsed().as_secs_f64(),
                text.lines().filter(|l| !l.starts_with('#')).count()
            ));
        }
        println!(
            "{name} round {round}: campaign report (12 h, {} spam messages, {} groups) {:.2} s | export (7 d) {}",
            spam.len(),
            groups.len(),
            report.as_secs_f64(),
            exports.join(", ")
        );
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (messages, ips, rounds) =
        (bench_arg("--messages", 1_000_000), bench_arg("--ips", 100_000), bench_arg("--rounds", 3));
    let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
    let now = Timestamp::now().0;
    println!("{messages} messages over {DAYS} days from {ips} IPs, {SUBSCRIBERS} mailboxes");

    let (_dir, url) = fresh_sqlite();
    let sqlite = Sqlite::connect(&url).await.unwrap();
    let t = Instant::now();
    let boxes = mailboxes(&sqlite, &keys).await;
    fill!(sqlite, boxes, messages, ips, now);
    println!("SQLite: filled in {:.0} s", t.elapsed().as_secs_f64());
    measure("SQLite", &sqlite, rounds).await;

    let pg = Postgres::connect(&fresh_postgres().await).await.unwrap();
    let t = Instant::now();
    let boxes = mailboxes(&pg, &keys).await;
    fill!(pg, boxes, messages, ips, now);
    println!("PostgreSQL: filled in {:.0} s", t.elapsed().as_secs_f64());
    measure("PostgreSQL", &pg, rounds).await;
}

async fn mailboxes(db: &impl Database, keys: &Keys) -> Vec<i64> {
    db.migrate().await.unwrap();
    let mut out = Vec::new();
    for i in 0..SUBSCRIBERS {
        let user = TestUser { email: format!("r{i}@bench.example"), password: "x".into() };
        out.push(db.add_subscriber(&dovecot_subscriber(&user, keys), Timestamp::now()).await.unwrap().mailbox_id);
    }
    out
}
