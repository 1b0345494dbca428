//! Reply-parsing throughput on the client fixtures (replies per second), and on a reply to a
//! summary of 500 held messages.
//!
//! `cargo bench -p quorum-summary --bench parse`

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorum_summary::{ShortId, ids_in_summary, parse_reply, reply_text};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

fn parse(c: &mut Criterion) {
    let ids = ids_in_summary(&reply_text(&fixture("summary.eml")));
    let names = ["thunderbird", "outlook", "gmail", "apple-mail", "mutt", "rewrapped", "lowercase", "partial", "large"];
    let replies: Vec<Vec<u8>> = names.iter().map(|n| fixture(&format!("replies/{n}.eml"))).collect();
    let mut group = c.benchmark_group("reply_parse");
    group.throughput(Throughput::Elements(replies.len() as u64));
    group.bench_function("fixtures", |b| b.iter(|| replies.iter().map(|r| parse_reply(r, &ids).len()).sum::<usize>()));

    let big_ids: Vec<ShortId> = (1..=500).map(ShortId::encode).collect();
    let mut body = String::from("From: a@example.org\r\nContent-Type: text/plain\r\n\r\nOn ... Quorum wrote:\r\n");
    for (i, id) in big_ids.iter().enumerate() {
        let answer = ["A", "R", " "][i % 3];
        body.push_str(&format!(
            "> [{answer}] {id}  Sender {i} <s{i}@example.org>  \"Subject {i}\"  (not spam: 50%)\r\n"
        ));
    }
    let big = body.into_bytes();
    group.throughput(Throughput::Elements(1));
    group.bench_function("500_lines", |b| b.iter(|| parse_reply(&big, &big_ids).len()));
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
