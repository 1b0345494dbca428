//! Mutation fuzzing on stable Rust, seeded from the corpus (read at run time): real messages
//! with bytes flipped, cut, repeated, and hostile fragments spliced in (encoded words, MIME
//! boundaries, multi-byte characters, several From addresses, forged Authentication-Results,
//! HTML links) go through every parser of outside mail that needs no server: inspection,
//! the Received chain and its handoff, fingerprints (HTML links included), reply
//! authentication and parsing. None may panic. `QUORUM_FUZZ_SECS` sets how long (default
//! 3 s, the CI run); a failing input is written to the temporary folder and named.

use std::time::{Duration, Instant};

use quorum_domain::{InspectedMessage, Keys, Timestamp};
use quorum_fingerprint::Fingerprint;
use quorum_summary::{ReplyPolicy, ShortId};
use quorum_tests::{Rng, corpus_message, corpus_or_skip, corpus_paths};

const FRAGMENTS: [&[u8]; 14] = [
    b"\r\nFrom: alice@quorum.test, mallory@evil.example\r\n",
    b"\r\nFrom: Friends: a@b.example, c@d.example;\r\n",
    b"\r\nAuthentication-Results: mx.quorum.test; dmarc=",
    b"\r\nTo: summary+1.20833.AAAAAAAAAAAAAAAA@quorum.test\r\n",
    b"<a href=\"http://",
    b"<img src=https://\xc3\xa9\xe2\x82\xac.",
    b"=?utf-8?b?w6k=?=",
    b"\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n",
    b"\r\nContent-Type: text/html\r\n\r\n",
    b"\r\nReceived: from x (x [10.0.0.\xe2\x82\xac]) by mx.\xc3\xa9.example;",
    b"\r\n\r\n",
    b"\xf0\x9f\x92\xa9",
    b"> [A] 00001\r\n",
    b"\0\r.\r\n",
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(m.len() + 1);
        match rng.below(5) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 => m.splice(at..at, FRAGMENTS[rng.below(FRAGMENTS.len())].iter().copied()).for_each(drop),
            2 => m.truncate(at),
            3 => {
                let end = (at + rng.below(200)).min(m.len());
                let piece = m[at..end].to_vec();
                m.splice(at..at, piece.iter().copied().cycle().take(piece.len() * rng.below(20))).for_each(drop);
            }
            _ => m.insert(at.min(m.len()), rng.next_u64() as u8),
        }
    }
    m
}

/// Every target on one input.
fn targets(raw: &[u8], keys: &Keys, policy: &ReplyPolicy, ids: &[ShortId]) {
    let info = InspectedMessage::parse(raw);
    let hops = quorum_domain::received::hops(raw);
    let _ = quorum_domain::received::handoff(&hops, &["isp.example".to_string()]);
    let _ = quorum_statistics::keys::network(raw, &[]);
    let f = Fingerprint::of(raw);
    let _ = (f.band_keys(), info.from.is_some());
    let now = Timestamp(1_800_000_000);
    let refusal = quorum_summary::verified_summary(raw, keys, policy, now).err();
    let _ = quorum_summary::sole_sender(raw);
    let _ = quorum_summary::dmarc_result(raw, "mx.quorum.test");
    if let (Some(e), Ok(owner)) = (refusal, quorum_domain::EmailAddress::parse("alice@quorum.test")) {
        let _ = quorum_summary::check_sender(raw, &owner, policy);
        let _ = quorum_summary::notice_address(raw, &e, policy);
    }
    let _ = quorum_summary::parse_reply(raw, ids);
}

#[test]
fn hostile_variants_of_real_mail_never_panic_a_parser() {
    let Some(dir) = corpus_or_skip("hostile_variants_of_real_mail_never_panic_a_parser") else { return };
    let secs: u64 = std::env::var("QUORUM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let seeds: Vec<Vec<u8>> = corpus_paths(&dir).iter().map(|p| corpus_message(p)).collect();
    let keys = Keys::from_master(&[7u8; 32]).unwrap();
    let policy = ReplyPolicy { max_age_secs: 30 * 86_400, authserv_id: Some("mx.quorum.test".into()) };
    let ids: Vec<ShortId> = ["00001", "00002", "00003"].iter().filter_map(|s| ShortId::parse(s)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (deadline, mut runs) = (Instant::now() + Duration::from_secs(secs), 0u64);
    while Instant::now() < deadline {
        let input = mutate(&seeds[rng.below(seeds.len())], &mut rng);
        let outcome = std::panic::catch_unwind(|| targets(&input, &keys, &policy, &ids));
        if outcome.is_err() {
            let path = std::env::temp_dir().join(format!("quorum-fuzz-crash-{runs}.eml"));
            std::fs::write(&path, &input).unwrap();
            panic!("a parser panicked on mutated input {} (run {runs})", path.display());
        }
        runs += 1;
    }
    println!("{runs} mutated corpus messages through every target in {secs} s, no panic");
}
