//! Campaign fingerprints over the team kit's corpus: personalised copies of every spam
//! message match their original, and the false-match rate over all ham × ham pairs.

use std::collections::HashMap;

use quorum_fingerprint::Fingerprint;
use quorum_simulate::personalise;
use quorum_tests::{Rng, corpus_message, corpus_or_skip, corpus_paths};

#[test]
fn personalised_copies_of_every_spam_message_match() {
    let Some(dir) = corpus_or_skip("personalised_copies_of_every_spam_message_match") else { return };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut checked, mut matched, mut similarity) = (0, 0, 0.0);
    let (mut long_checked, mut long_matched) = (0, 0);
    for path in corpus_paths(&dir).iter().filter(|p| p.parent().unwrap().ends_with("spam")) {
        let raw = corpus_message(path);
        let original = Fingerprint::of(&raw);
        // At least 40 words of visible text (images-only spam has no signature), and
        // a body the variations can be applied to as a campaign would, before encoding
        // (the simulator's personalisation says which: none for the others).
        if original.words < 40 {
            continue;
        }
        for _ in 0..3 {
            let Some(copy) = personalise(&raw, false, || rng.next_u64()) else { break };
            let copy = Fingerprint::of(&copy);
            checked += 1;
            similarity += copy.similarity(&original);
            matched += usize::from(copy.same_campaign(&original));
            if original.words >= 150 {
                long_checked += 1;
                long_matched += usize::from(copy.same_campaign(&original));
            }
        }
    }
    println!(
        "{matched} of {checked} personalised copies matched (mean similarity {:.3}); \
         {long_matched} of {long_checked} for messages of 150 words or more",
        similarity / checked as f64
    );
    assert!(checked > 600 && long_checked > 300, "{checked} {long_checked}");
    // Eight changed words weigh more in a short text: short spam matches less often.
    assert!(matched as f64 >= 0.85 * checked as f64, "only {matched} of {checked} copies matched");
    assert!(
        long_matched as f64 >= 0.98 * long_checked as f64,
        "only {long_matched} of {long_checked} long copies matched"
    );
}

#[test]
fn false_matches_over_all_ham_pairs() {
    let Some(dir) = corpus_or_skip("false_matches_over_all_ham_pairs") else { return };
    let ham: Vec<(Fingerprint, Vec<u8>)> = corpus_paths(&dir)
        .iter()
        .filter(|p| !p.parent().unwrap().ends_with("spam"))
        .map(|p| {
            let raw = corpus_message(p);
            (Fingerprint::of(&raw), raw)
        })
        .collect();
    // Candidate pairs through the band index, then the signature decides.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (f, _)) in ham.iter().enumerate() {
        for key in f.band_keys() {
            index.entry(key).or_default().push(i);
        }
    }
    let mut candidates: Vec<(usize, usize)> = index
        .values()
        .flat_map(|list| list.iter().enumerate().flat_map(move |(a, &i)| list[a + 1..].iter().map(move |&j| (i, j))))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let matches: Vec<(usize, usize)> =
        candidates.into_iter().filter(|&(i, j)| ham[i].0.same_campaign(&ham[j].0)).collect();
    // Identical bodies (the same post received twice) are the same content, not a false match.
    let body = |raw: &[u8]| raw.windows(2).position(|w| w == b"\n\n").map(|p| raw[p..].to_vec()).unwrap_or_default();
    let false_matches: Vec<(usize, usize)> =
        matches.iter().copied().filter(|&(i, j)| body(&ham[i].1) != body(&ham[j].1)).collect();
    let pairs = ham.len() * (ham.len() - 1) / 2;
    let rate = false_matches.len() as f64 / pairs as f64;
    // What campaigns use: only messages with enough text join one (MIN_WORDS).
    let ready = |i: usize| ham[i].0.campaign_ready();
    let ready_count = (0..ham.len()).filter(|&i| ready(i)).count();
    let ready_false = false_matches.iter().filter(|&&(i, j)| ready(i) && ready(j)).count();
    let ready_rate = ready_false as f64 / (ready_count * (ready_count - 1) / 2) as f64;
    println!(
        "{} ham messages, {pairs} pairs: {} matched, {} with different text: false-match rate {rate:.2e}; \
         among the {ready_count} with enough text for a campaign: {ready_false} false matches, rate {ready_rate:.2e}",
        ham.len(),
        matches.len(),
        false_matches.len()
    );
    assert_eq!(ham.len(), 2750);
    // Measured 1.1e-4: mostly list replies quoting the message they answer.
    assert!(rate < 2e-4, "false-match rate {rate:.2e}");
    assert!(ready_rate <= rate * 1.5, "campaign false-match rate {ready_rate:.2e}");
}
