//! Forgery-check benchmark over the whole corpus against the in-process DNS server:
//! - cold: every message checked by a fresh checker (empty cache), one at a time; the
//!   time of one check, median and p99;
//! - warm: one checker whose cache has seen every name, all messages checked with the
//!   configured concurrency; checks per second.
//!
//! The server holds the seed's web.de zones, SPF and DMARC records for the corpus's most
//! frequent envelope domains, and answers NXDOMAIN for everything else (so every PTR but
//! web.de's is missing: a worst case for the PTR rule, whose verdicts are printed per
//! corpus group). The provider table is the migration's seed plus web.de as in seed 002.
//!
//! Run: `cargo bench -p quorum-tests --bench forgery` (needs ../shared/corpus beside the
//! repository). Options: `-- --rounds R` (warm passes, default 5).

use std::{collections::HashMap, time::Instant};

use quorum_domain::Provider;
use quorum_forgery::{Checker, Providers, Verdict};
use quorum_storage::{Database, Sqlite};
use quorum_tests::{
    bench_arg, corpus_message, corpus_paths,
    dns::{TestDns, Zones, dns_settings},
    fresh_sqlite,
};

/// SPF and DMARC records for the 50 most frequent envelope domains, so the checks also
/// parse and evaluate real policies, not only negative answers.
fn zones(corpus: &[Vec<u8>]) -> Zones {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for raw in corpus {
        if let Some(d) = quorum_forgery::headers::parties(raw).consistency.return_path_domain {
            *counts.entry(d).or_default() += 1;
        }
    }
    let mut domains: Vec<(String, usize)> = counts.into_iter().collect();
    domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut zones = Zones::new()
        .zone("192.72.217.in-addr.arpa")
        .ns("192.72.217.in-addr.arpa", "nsx1.cinetic.de")
        .ptr("217.72.192.221", "fmmailgate01.web.de")
        .zone("web.de")
        .addr("fmmailgate01.web.de", "217.72.192.221");
    for (d, _) in domains.iter().take(50).filter(|(d, _)| d.contains('.') && !d.ends_with("web.de")) {
        zones = zones
            .zone(d)
            .txt(d, "v=spf1 ip4:66.187.233.0/24 ip4:216.136.0.0/16 include:_spf.example.net ~all")
            .txt(&format!("_dmarc.{d}"), "v=DMARC1; p=none; rua=mailto:dmarc@example.net");
    }
    zones
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of benchmarks; there is one.
    }
    let rounds = bench_arg("--rounds", 5);
    let paths =
        corpus_paths(&quorum_tests::corpus_dir().expect("the corpus must be beside the repository (../shared/corpus)"));
    let corpus: Vec<Vec<u8>> = paths.iter().map(|p| corpus_message(p)).collect();
    let dns = TestDns::start(zones(&corpus)).await;
    let settings = dns_settings(dns.addr, 2000, 5000);
    // The provider table as a new installation has it, plus the seed's web.de row.
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.upsert_provider(&Provider::new("web.de", true, true, true, "", "cinetic.de").unwrap()).await.unwrap();
    let providers = Providers::new(db.providers().await.unwrap());
    println!("corpus: {} messages; DNS server on {}", corpus.len(), dns.addr);

    let mut cold = Vec::with_capacity(corpus.len());
    let mut verdicts: HashMap<String, usize> = HashMap::new();
    for (raw, path) in corpus.iter().zip(&paths) {
        let checker = Checker::new(&settings).unwrap();
        let start = Instant::now();
        let e = checker.check(raw, &providers, &[]).await;
        cold.push(start.elapsed().as_secs_f64() * 1000.0);
        let kind = match e.verdict {
            Verdict::Forged(_) => "forged",
            Verdict::Incomplete(_) => "incomplete",
            Verdict::Checked => "checked",
        };
        let group = path.parent().and_then(|g| g.file_name()).unwrap_or_default().to_string_lossy();
        *verdicts.entry(format!("{group} {kind}")).or_default() += 1;
    }
    cold.sort_by(f64::total_cmp);
    println!(
        "cold cache, one check at a time: median {:.2} ms, p99 {:.2} ms, max {:.2} ms; verdicts {verdicts:?}",
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
        cold.last().unwrap()
    );

    let checker = Checker::new(&settings).unwrap();
    for raw in &corpus {
        checker.check(raw, &providers, &[]).await;
    }
    for round in 1..=rounds {
        let start = Instant::now();
        let checks = corpus.iter().map(|raw| checker.check(raw, &providers, &[]));
        let done = futures::future::join_all(checks).await.len();
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "warm cache, round {round}: {done} checks in {:.3} s = {:.0} checks/s (concurrency {})",
            elapsed,
            done as f64 / elapsed,
            settings.concurrency
        );
    }
}
