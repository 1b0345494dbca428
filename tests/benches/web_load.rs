//! Web load: requests per second and latency of the operator dashboard, the public
//! statistics and the correlation table over loopback HTTP, with 10,000 subscribers and
//! 1,000,000 quarantined messages (and their trust and correlation rows) in SQLite. The real
//! server (`quorum_web::serve`) on a real socket; keep-alive clients from the same process.
//!
//! Run: `cargo bench -p quorum-tests --bench web_load` (needs tests/setup.sh for nothing:
//! no mail servers). Options after `--`: `--subscribers N --messages M --connections C
//! --seconds S` (defaults 10000, 1000000, 32, 10).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use quorum_domain::{EmailAddress, Keys, MessageHash, Timestamp};
use quorum_storage::{CorrelationRow, Database, PollItem, Principal, Sqlite, StatisticsUpdate, TrustRow};
use quorum_tests::{TestUser, bench_arg, fresh_sqlite};

const STATUSES: [&str; 6] = ["held", "released", "deleted_spam", "deleted_forged", "deleted_statistical", "held"];

async fn seed(db: &Sqlite, subscribers: usize, messages: usize) -> Vec<i64> {
    let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
    let now = Timestamp::now();
    let per = messages / subscribers;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(subscribers);
    for s in 0..subscribers {
        let user = TestUser { email: format!("user{s}@load.example"), password: "x".into() };
        let new = quorum_tests::dovecot_subscriber_at(&user, &keys, "127.0.0.1", 110);
        let added = db.add_subscriber(&new, now).await.unwrap();
        ids.push(added.subscriber_id);
        let raws: Vec<Vec<u8>> = (0..per)
            .map(|m| {
                format!("From: sender{m}@bulk{}.example\r\nSubject: offer {s}-{m}\r\n\r\nbody {s} {m}\r\n", m % 97)
                    .into_bytes()
            })
            .collect();
        let froms: Vec<EmailAddress> =
            (0..per).map(|m| EmailAddress::parse(&format!("sender{m}@bulk{}.example", m % 97)).unwrap()).collect();
        let uidls: Vec<String> = (0..per).map(|m| format!("u{m}")).collect();
        let subjects: Vec<String> = (0..per).map(|m| format!("offer {s}-{m}")).collect();
        let items: Vec<PollItem> = (0..per)
            .map(|m| PollItem::Quarantine {
                uidl: &uidls[m],
                status: STATUSES[(s + m) % STATUSES.len()],
                raw: &raws[m],
                hash: MessageHash::of(&raws[m]),
                from: Some(&froms[m]),
                from_name: None,
                subject: Some(&subjects[m]),
                checked: None,
                campaign: None,
                stat_keys: None,
                confirm_to: None,
                reputation: &[],
                imap_folder: None,
            })
            .collect();
        db.commit_poll(added.mailbox_id, added.subscriber_id, &items, now).await.unwrap();
        if (s + 1) % 1000 == 0 {
            eprintln!(
                "seeded {} subscribers, {} messages ({:.0} s)",
                s + 1,
                (s + 1) * per,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Every user's trust row and ten correlations each, as a statistics refresh writes them.
    let trust = ids
        .iter()
        .map(|&id| TrustRow {
            subscriber_id: id,
            email: String::new(),
            status: "trusted".into(),
            reason: "votes like the probes".into(),
            approvals: 10,
            spam: 90,
            computed_at: now.0,
        })
        .collect();
    let correlations = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let rows = (1..=10)
                .map(|k| CorrelationRow {
                    user_id: id,
                    cuser_id: ids[(i + k * 37) % ids.len()],
                    rms_error: (i % 100) as f64 / 1000.0,
                    confidence: 0.01,
                    max_rms_error: (i % 100) as f64 / 1000.0 + 0.01,
                    domains: 12,
                    computed_at: now.0,
                })
                .collect();
            (id, rows)
        })
        .collect();
    db.write_statistics(&StatisticsUpdate { trust, correlations, keys: Vec::new() }).await.unwrap();
    ids
}

/// `connections` clients each requesting `path` back to back for `seconds`: (requests per
/// second, p50 ms, p99 ms).
async fn load(port: u16, path: &str, cookie: Option<&str>, connections: usize, seconds: u64) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let url: hyper::Uri = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
        let cookie = cookie.map(str::to_string);
        tasks.spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http::<Empty<Bytes>>();
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let mut request = hyper::Request::get(url.clone());
                if let Some(c) = &cookie {
                    request = request.header("cookie", c);
                }
                let start = Instant::now();
                let response = client.request(request.body(Empty::new()).unwrap()).await.unwrap();
                assert_eq!(response.status(), 200, "{url}");
                response.into_body().collect().await.unwrap();
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times
        });
    }
    let mut times: Vec<f64> = Vec::new();
    while let Some(t) = tasks.join_next().await {
        times.extend(t.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (times.len() as f64 / elapsed, at(0.5), at(0.99))
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let subscribers = bench_arg("--subscribers", 10_000);
    let messages = bench_arg("--messages", 1_000_000);
    let connections = bench_arg("--connections", 32);
    let seconds = bench_arg("--seconds", 10) as u64;
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    seed(&db, subscribers, messages).await;
    let operator =
        db.add_operator(&EmailAddress::parse("ops@load.example").unwrap(), "x", Timestamp::now()).await.unwrap();
    let token = quorum_web::auth::new_token();
    let in_a_day = Timestamp(Timestamp::now().0 + 86_400);
    db.create_session(&quorum_web::auth::token_hash(&token), Principal::Operator(operator), Timestamp::now(), in_a_day)
        .await
        .unwrap();
    let cookie = format!("{}={token}", quorum_web::auth::SESSION_COOKIE);

    let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
    let settings = Arc::new(quorum_config::Settings::load(None).unwrap());
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
    let state = quorum_web::AppState::new(db.clone(), metrics, keys, settings, None);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(quorum_web::serve(state, ([127, 0, 0, 1], port).into(), stopped));
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!(
        "{subscribers} subscribers, {messages} messages, {connections} connections, {seconds} s per page (SQLite, loopback)"
    );
    for (path, cookie) in [
        ("/admin", Some(cookie.as_str())),
        ("/stats", None),
        ("/api/stats", None),
        ("/admin/correlation?threshold=0.05", Some(cookie.as_str())),
        ("/api/admin/correlation?threshold=0.05", Some(cookie.as_str())),
    ] {
        let (rps, p50, p99) = load(port, path, cookie, connections, seconds).await;
        println!("{path:<36} {rps:>9.0} requests/s   p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    }
}
