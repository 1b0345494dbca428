//! The trusted-hop rule over every message of the corpus (real Received chains of 2002, in
//! many formats, fetched by fetchmail and passed through lists): no panic, and every
//! handoff found is a public address taken from a header inside the chain.

use quorum_domain::received::{handoff, hops};
use quorum_tests::{corpus_message, corpus_or_skip};

#[test]
fn every_corpus_message_has_its_received_chain_read() {
    let Some(dir) = corpus_or_skip("every_corpus_message_has_its_received_chain_read") else { return };
    let (mut total, mut found) = (0, 0);
    for group in ["spam", "ham", "hard-ham"] {
        for entry in std::fs::read_dir(dir.join(group)).unwrap() {
            let raw = corpus_message(&entry.unwrap().path());
            let chain = hops(&raw);
            total += 1;
            if let Some(h) = handoff(&chain, &[]) {
                found += 1;
                assert!(h.index < chain.len());
                assert_eq!(chain[h.index].ip, Some(h.ip));
                assert!(!(h.ip.is_loopback() || h.ip.is_unspecified()), "{h:?}");
            }
        }
    }
    println!("handoff found for {found} of {total} corpus messages");
    assert_eq!(total, 3250);
}
