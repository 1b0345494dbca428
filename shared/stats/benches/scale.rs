//! Scale of the statistics: trust and domain probabilities for a synthetic population.
//!
//! Each user votes on about 200 domains drawn from a Zipf distribution (a few domains are
//! everyone's, most are rare), a tenth of them their correspondents (approved, 4 sender
//! addresses per domain), the rest spam (64 sender addresses per domain); 10 spam probes vote spam on 2,000 domains each. Measured: recording the votes, the
//! first refresh (every user dirty: statuses and bounded correlations), every domain's
//! probability, then 1,000 new votes and the incremental refresh; and the peak resident
//! memory of the process (VmHWM).
//!
//! Run: `cargo bench -p quorum-stats --bench scale -- --users 10000` (and `--users 100000`).

use std::time::Instant;

use quorum_stats::{Engine, Evidence, KeyKind, Settings, Vote};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Domain ids 0..n with P(k) ∝ 1/(k+1): sampled by binary search in the cumulative sums.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut acc = 0.0;
        Zipf(
            (0..n)
                .map(|k| {
                    acc += 1.0 / (k as f64 + 1.0);
                    acc
                })
                .collect(),
        )
    }
    fn sample(&self, rng: &mut StdRng) -> u32 {
        let x = rng.r#gen::<f64>() * self.0.last().unwrap();
        self.0.partition_point(|c| *c < x) as u32
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// A vote on sender `s` at domain `d`: its sender and domain keys.
fn record(engine: &mut Engine, user: u32, d: u32, s: u32, vote: Vote) {
    let (domain, sender) = (format!("d{d}"), format!("s{s}@d{d}"));
    let keys = [Evidence::new(KeyKind::Sender, &*sender, &*sender), Evidence::new(KeyKind::Domain, &*domain, &*sender)];
    engine.record(user, &domain, &keys, vote, 0.0);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let users = arg("--users", 10_000);
    let per_user = arg("--domains-per-user", 200);
    let domains = arg("--domains", 200_000);
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(domains);
    // A domain is a correspondent (legitimate) domain if its id is divisible by 10.
    let legitimate = |d: u32| d.is_multiple_of(10);
    let sender = |d: u32, rng: &mut StdRng| d * 64 + rng.gen_range(0..if legitimate(d) { 4 } else { 64 });
    let mut engine = Engine::new(Settings::default());
    let start = Instant::now();
    let mut votes = 0u64;
    for _ in 0..10 {
        let p = engine.add_user(true);
        for _ in 0..2_000 {
            let d = zipf.sample(&mut rng);
            if !legitimate(d) {
                let s = sender(d, &mut rng);
                record(&mut engine, p, d, s, Vote::Spam);
                votes += 1;
            }
        }
    }
    for _ in 0..users {
        let u = engine.add_user(false);
        for _ in 0..per_user {
            let d = zipf.sample(&mut rng);
            let vote = if legitimate(d) { Vote::Ham } else { Vote::Spam };
            let s = sender(d, &mut rng);
            record(&mut engine, u, d, s, vote);
            votes += 1;
        }
    }
    let recorded = start.elapsed();
    let start = Instant::now();
    let refreshed = engine.refresh();
    let first = start.elapsed();
    let start = Instant::now();
    let all: Vec<String> = engine.keys(KeyKind::Domain).map(str::to_string).collect();
    let bound = quorum_stats::logit(1.0 - 1e-6);
    let condemned =
        all.iter().filter(|d| engine.global_term(KeyKind::Domain, d).is_some_and(|t| t.logit > bound)).count();
    let scored = start.elapsed();
    let start = Instant::now();
    for _ in 0..1_000 {
        let u = 10 + rng.gen_range(0..users as u32);
        let d = zipf.sample(&mut rng);
        let s = sender(d, &mut rng);
        record(&mut engine, u, d, s, if legitimate(d) { Vote::Ham } else { Vote::Spam });
    }
    let incremental = engine.refresh();
    let update = start.elapsed();
    println!(
        "{users} users + 10 probes, {votes} votes on {} domains: recorded in {:.2} s; first refresh {:.2} s \
         ({} users, {} correlations); all {} domain probabilities {:.2} s ({condemned} above 1 - 1e-6); \
         1,000 new votes + refresh {:.3} s ({} users, {} correlations); peak memory {:.0} MiB",
        all.len(),
        recorded.as_secs_f64(),
        first.as_secs_f64(),
        refreshed.users,
        refreshed.correlations,
        all.len(),
        scored.as_secs_f64(),
        update.as_secs_f64(),
        incremental.users,
        incremental.correlations,
        peak_rss_mib()
    );
}
