//! `quorum simulate` on the team kit's corpus with the statistics issue's defaults: the
//! real binary, the JSON report it prints.

use std::process::Command;

use quorum_tests::{corpus_dir, quorum_bin};

fn simulate(args: &[&str]) -> serde_json::Value {
    let corpus = corpus_dir().expect("the team kit's corpus must be beside the repository (../shared/corpus)");
    let out = Command::new(quorum_bin()).env_clear().arg("simulate").arg(&corpus).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON report on standard output")
}

#[test]
fn with_sender_evidence_no_ham_is_deleted_by_the_statistics() {
    let r = simulate(&[]);
    assert_eq!(r["evidence"], "senders");
    assert_eq!((r["spam_total"].as_u64().unwrap() > 5000, r["ham_total"].as_u64()), (true, Some(8250)), "{r:#}");
    assert_eq!(r["ham_deleted_statistical"], 0, "{r:#}");
    assert_eq!(r["steady_state"]["ham_deleted_statistical"], 0, "{r:#}");
    assert!(r["spam_deleted_before_summary"].as_u64().unwrap() > 0, "{r:#}");
    // Same seed, same report.
    assert_eq!(simulate(&[]), r);
}

#[test]
fn with_a_hundred_sybils_still_no_ham_is_deleted_by_the_statistics() {
    let r = simulate(&["--sybils", "100"]);
    assert_eq!((r["sybils"].as_u64(), r["ham_deleted_statistical"].as_u64()), (Some(100), Some(0)), "{r:#}");
    // The trust rules exclude most of them, and no honest user with enough votes.
    assert!(r["sybils_excluded"].as_u64().unwrap() > 50, "{r:#}");
    assert_eq!(r["honest_excluded"], 0, "{r:#}");
}

#[test]
fn trust_excludes_most_sybils_and_no_honest_user_even_when_users_err_often() {
    let r = simulate(&["--sybils", "100", "--error-rate", "0.05"]);
    assert!(r["sybils_excluded"].as_u64().unwrap() > 50, "{r:#}");
    assert_eq!(r["honest_excluded"], 0, "{r:#}");
    assert_eq!(r["ham_deleted_statistical"], 0, "{r:#}");
}

#[test]
fn the_seeds_per_vote_evidence_is_reported_with_its_cost() {
    let votes = simulate(&["--evidence", "votes"]);
    let senders = simulate(&["--evidence", "senders"]);
    // Counting every vote deletes more spam, and ham with it: what the seed's unit costs.
    assert!(votes["spam_deleted_before_summary"].as_u64() > senders["spam_deleted_before_summary"].as_u64());
    assert!(votes["ham_deleted_statistical"].as_u64().unwrap() > 0, "{votes:#}");
}

/// Steady-state share of spam deleted before the summary.
fn steady_share(r: &serde_json::Value) -> f64 {
    r["steady_state_spam_deleted_before_summary_share"].as_f64().unwrap()
}

#[test]
fn campaign_fingerprints_delete_far_more_spam_and_no_ham() {
    let without = simulate(&[]);
    let with = simulate(&["--fingerprints"]);
    assert_eq!((with["fingerprints"].as_bool(), with["ham_total"].as_u64()), (Some(true), Some(8250)), "{with:#}");
    assert_eq!(with["ham_deleted_statistical"], 0, "{with:#}");
    assert_eq!(with["steady_state"]["ham_deleted_statistical"], 0, "{with:#}");
    // Measured: 15% without, 69% with (seed 1); the copies of one message are one campaign.
    assert!(steady_share(&with) > 3.0 * steady_share(&without), "{with:#}\n{without:#}");
    assert!(with["campaigns"].as_u64().unwrap() > 1000, "{with:#}");
    let by = &with["spam_deleted_by"];
    assert!(by["fingerprint"].as_u64() > by["domain"].as_u64(), "{with:#}");
    assert_eq!(without["spam_deleted_by"]["fingerprint"], 0, "{without:#}");

    // Thirty probes voting on arrival: more still, and still no ham.
    let probes = simulate(&["--fingerprints", "--probes", "30"]);
    assert_eq!(probes["ham_deleted_statistical"], 0, "{probes:#}");
    assert!(steady_share(&probes) > steady_share(&with), "{probes:#}");
}

#[test]
fn campaign_fingerprints_with_a_hundred_sybils_delete_no_ham() {
    let r = simulate(&["--fingerprints", "--sybils", "100"]);
    assert_eq!((r["sybils"].as_u64(), r["ham_deleted_statistical"].as_u64()), (Some(100), Some(0)), "{r:#}");
    assert_eq!(r["steady_state"]["ham_deleted_statistical"], 0, "{r:#}");
}
