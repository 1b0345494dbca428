//! Classification of one message, as the worker does it after retrieval: the campaign
//! fingerprint and its lookup in the campaign index (one query; the worker makes one per
//! batch), the forgery checks (warm DNS cache, in-process DNS server) and the statistics'
//! judgement of domain and campaign (an engine fed with votes on the corpus).
//!
//! Criterion measures the time per message cycling through the whole corpus, and the
//! campaign lookup alone (the index holds the corpus's campaigns); then three
//! passes over the corpus give the median and p99 per message, which criterion does not
//! report.
//!
//! Run: `cargo bench -p quorum-tests --bench classify` (needs ../shared/corpus beside the
//! repository); criterion's options after `--`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use quorum_config::Settings;
use quorum_domain::{InspectedMessage, Timestamp};
use quorum_fingerprint::Fingerprint;
use quorum_forgery::{Checker, Providers};
use quorum_statistics::{Statistics, campaigns};
use quorum_storage::{Database, PollItem, Sqlite, Vote};
use quorum_tests::{
    corpus_message, corpus_paths,
    dns::{TestDns, Zones, dns_settings},
    fresh_sqlite,
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Everything classification reads.
struct Classifier {
    db: Sqlite,
    checker: Checker,
    providers: Providers,
    statistics: Statistics,
    /// Judged for a subscriber with no votes of their own: the others' votes decide.
    subscriber: i64,
}

impl Classifier {
    /// What the worker does with one retrieved message; returns (forged, deleted).
    async fn classify(&self, raw: &[u8], info: &InspectedMessage) -> (bool, bool) {
        let fingerprint = Fingerprint::of(raw);
        let evidence = self.checker.check(raw, &self.providers, &[]).await;
        if evidence.is_forged() {
            return (true, false);
        }
        let campaign = campaigns::find(&self.db, &fingerprint).await.unwrap();
        let deleted = match &info.from {
            Some(f) => {
                let network = quorum_statistics::keys::network(raw, &[]);
                let keys = self.statistics.evidence(&quorum_statistics::keys::Facts {
                    from: f.as_str(),
                    own_address: false,
                    major_isp: self.providers.get(f.domain()).is_some_and(|p| p.major_isp),
                    fingerprint: Some(&fingerprint),
                    campaign,
                    network: network.as_deref(),
                });
                self.statistics.judge(self.subscriber, &keys).await.delete()
            }
            None => false,
        };
        (false, deleted)
    }
}

/// A database with one subscriber whose votes cover the corpus (spam blank, ham approved),
/// every message in its campaign, and the statistics read from it.
async fn setup(corpus: &[Vec<u8>], infos: &[InspectedMessage], spam: &[bool], dns: &TestDns) -> Classifier {
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let (dir, url) = fresh_sqlite();
    std::mem::forget(dir); // kept for the process's life
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = quorum_domain::Keys::from_master_text(&quorum_domain::Keys::generate_master()).unwrap();
    let user = quorum_tests::TestUser { email: "bench@quorum.test".into(), password: "x".into() };
    let ids = db.add_subscriber(&quorum_tests::dovecot_subscriber(&user, &keys), Timestamp::now()).await.unwrap();
    let fingerprints: Vec<Fingerprint> = corpus.iter().map(|raw| Fingerprint::of(raw)).collect();
    let refs: Vec<Option<&Fingerprint>> = fingerprints.iter().map(Some).collect();
    let in_campaign = campaigns::assign(&db, &refs, Timestamp::now()).await.unwrap();
    let uidls: Vec<String> = (0..corpus.len()).map(|i| format!("u{i}")).collect();
    let items: Vec<PollItem> = corpus
        .iter()
        .zip(infos)
        .zip(&uidls)
        .zip(&in_campaign)
        .map(|(((raw, info), uidl), campaign)| PollItem::Quarantine {
            uidl,
            status: "held",
            raw,
            hash: info.hash,
            from: info.from.as_ref(),
            from_name: None,
            subject: None,
            checked: None,
            campaign: *campaign,
            stat_keys: None,
            confirm_to: None,
            reputation: &[],
            imap_folder: None,
        })
        .collect();
    let stored = db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, Timestamp::now()).await.unwrap();
    for ((id, info), spam) in stored.iter().zip(infos).zip(spam) {
        if let (Some(id), Some(from)) = (id, info.from.as_ref()) {
            let vote = if *spam { Vote::Spam } else { Vote::Approve };
            db.record_vote(ids.subscriber_id, *id, from, vote, Timestamp::now()).await.unwrap();
        }
    }
    let statistics = Statistics::new(&Settings::load(None).unwrap().statistics);
    statistics.sync(&db, Timestamp::now()).await.unwrap();
    let providers = Providers::new(db.providers().await.unwrap());
    Classifier { db, checker, providers, statistics, subscriber: ids.subscriber_id + 1_000 }
}

/// A criterion benchmark of `f` on each of `items` in turn (one item per iteration).
fn cycle<'a, T, F, Fut>(criterion: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, items: &'a [T], f: F)
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future,
{
    let mut next = 0usize;
    criterion.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(f(&items[next % items.len()]).await);
                    next += 1;
                }
                start.elapsed()
            })
        })
    });
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let paths =
        corpus_paths(&quorum_tests::corpus_dir().expect("the corpus must be beside the repository (../shared/corpus)"));
    let corpus: Vec<Vec<u8>> = paths.iter().map(|p| corpus_message(p)).collect();
    let spam: Vec<bool> = paths.iter().map(|p| p.parent().unwrap().ends_with("spam")).collect();
    let infos: Vec<InspectedMessage> = corpus.iter().map(|raw| InspectedMessage::parse(raw)).collect();
    let dns = rt.block_on(TestDns::start(Zones::new()));
    let classifier = rt.block_on(setup(&corpus, &infos, &spam, &dns));
    // Warm the DNS cache and the statistics.
    rt.block_on(async {
        for (raw, info) in corpus.iter().zip(&infos) {
            classifier.classify(raw, info).await;
        }
    });

    let mut criterion = Criterion::default().configure_from_args();
    let messages: Vec<(&[u8], &InspectedMessage)> = corpus.iter().map(Vec::as_slice).zip(&infos).collect();
    cycle(&mut criterion, &rt, "classify one corpus message (warm cache)", &messages, |&(raw, info)| {
        classifier.classify(raw, info)
    });
    // The campaign index alone: one lookup by band keys, signatures compared.
    let fingerprints: Vec<Fingerprint> = corpus.iter().map(|raw| Fingerprint::of(raw)).collect();
    cycle(&mut criterion, &rt, "campaign lookup of one fingerprint", &fingerprints, |f| async {
        campaigns::find(&classifier.db, f).await.unwrap()
    });
    criterion.final_summary();

    for round in 1..=3 {
        let mut times = Vec::with_capacity(corpus.len());
        let (mut forged, mut deleted) = (0, 0);
        let mut total = Duration::ZERO;
        rt.block_on(async {
            for (raw, info) in corpus.iter().zip(&infos) {
                let start = Instant::now();
                let (f, d) = classifier.classify(raw, info).await;
                let took = start.elapsed();
                total += took;
                times.push(took.as_secs_f64() * 1e3);
                forged += usize::from(f);
                deleted += usize::from(d);
            }
        });
        times.sort_by(f64::total_cmp);
        println!(
            "round {round}: {} messages, per message median {:.3} ms, p99 {:.3} ms, mean {:.3} ms \
             (fingerprint and campaign lookup + forgery checks + statistics; {forged} forged, {deleted} certain)",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            total.as_secs_f64() * 1e3 / times.len() as f64
        );
    }
}
