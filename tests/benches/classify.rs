//! Classification of one message, as the worker does it after retrieval: the campaign
//! fingerprint, the forgery checks (warm DNS cache, in-process DNS server) and the
//! statistics' judgement (an engine fed with votes on the corpus's senders). Median and p99
//! per message over the whole corpus, after a warm-up pass.
//!
//! Run: `cargo bench -p quorum-tests --bench classify` (needs ../shared/corpus beside the
//! repository). Options: `-- --rounds R` (default 3).

use std::time::Instant;

use quorum_config::Settings;
use quorum_domain::{InspectedMessage, Timestamp};
use quorum_fingerprint::Fingerprint;
use quorum_forgery::{Checker, Providers};
use quorum_statistics::Statistics;
use quorum_storage::{Database, PollItem, Sqlite, Vote};
use quorum_tests::{
    bench_arg, corpus_message, corpus_paths,
    dns::{TestDns, Zones, dns_settings},
    fresh_sqlite,
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What the worker does with one retrieved message; returns (words, forged, deleted).
async fn classify(
    raw: &[u8],
    info: &InspectedMessage,
    checker: &Checker,
    providers: &Providers,
    statistics: &Statistics,
    subscriber: i64,
) -> (u32, bool, bool) {
    let fingerprint = Fingerprint::of(raw);
    let evidence = checker.check(raw, providers, &[]).await;
    let deleted = match &info.from {
        Some(f) => {
            statistics.judge(subscriber, f, providers.get(f.domain()).is_some_and(|p| p.major_isp), None).await.delete()
        }
        None => false,
    };
    (fingerprint.words, evidence.is_forged(), deleted)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = bench_arg("--rounds", 3);
    let paths = corpus_paths();
    let corpus: Vec<Vec<u8>> = paths.iter().map(|p| corpus_message(p)).collect();
    let dns = TestDns::start(Zones::new()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();

    // A database with one subscriber whose votes cover the corpus: spam blank, ham approved.
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = quorum_domain::Keys::from_master_text(&quorum_domain::Keys::generate_master()).unwrap();
    let user = quorum_tests::TestUser { email: "bench@quorum.test".into(), password: "x".into() };
    let ids = db.add_subscriber(&quorum_tests::dovecot_subscriber(&user, &keys), Timestamp::now()).await.unwrap();
    let infos: Vec<InspectedMessage> = corpus.iter().map(|raw| InspectedMessage::parse(raw)).collect();
    let uidls: Vec<String> = (0..corpus.len()).map(|i| format!("u{i}")).collect();
    let items: Vec<PollItem> = corpus
        .iter()
        .zip(&infos)
        .zip(&uidls)
        .map(|((raw, info), uidl)| PollItem::Quarantine {
            uidl,
            status: "held",
            raw,
            hash: info.hash,
            from: info.from.as_ref(),
            from_name: None,
            subject: None,
            checked: None,
            campaign: None,
        })
        .collect();
    let stored = db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, Timestamp::now()).await.unwrap();
    for ((id, info), path) in stored.iter().zip(&infos).zip(&paths) {
        if let (Some(id), Some(from)) = (id, info.from.as_ref()) {
            let vote = if path.parent().unwrap().ends_with("spam") { Vote::Spam } else { Vote::Approve };
            db.record_vote(ids.subscriber_id, *id, from, vote, Timestamp::now()).await.unwrap();
        }
    }
    let statistics = Statistics::new(&Settings::load(None).unwrap().statistics);
    statistics.sync(&db, Timestamp::now()).await.unwrap();
    let providers = Providers::new(db.providers().await.unwrap());
    let subscriber = ids.subscriber_id + 1_000; // another subscriber: their own votes do not decide

    for (raw, info) in corpus.iter().zip(&infos) {
        classify(raw, info, &checker, &providers, &statistics, subscriber).await;
    }
    for round in 1..=rounds {
        let mut times = Vec::with_capacity(corpus.len());
        let (mut forged, mut deleted) = (0, 0);
        for (raw, info) in corpus.iter().zip(&infos) {
            let start = Instant::now();
            let (_, f, d) = classify(raw, info, &checker, &providers, &statistics, subscriber).await;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            forged += usize::from(f);
            deleted += usize::from(d);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "round {round}: {} messages, per message median {:.3} ms, p99 {:.3} ms (fingerprint + forgery checks + statistics; {forged} forged, {deleted} statistically certain)",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
}
