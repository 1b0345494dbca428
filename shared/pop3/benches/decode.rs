//! Throughput of the multi-line decoder (dot-unstuffing) by message size: constant bytes per
//! second across sizes shows the cost is linear in the message size.
//!
//! `cargo bench -p quorum-pop3 --bench decode`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quorum_pop3::proto::{MultilineDecoder, stuff};

/// A mail-like body: 76-column lines, every tenth starting with a dot to exercise stuffing.
fn message(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 80);
    let mut i = 0;
    while out.len() < size {
        if i % 10 == 0 {
            out.push(b'.');
        }
        out.extend_from_slice(&[b'a' + (i % 26) as u8; 75]);
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("retr_decode");
    for size in [64 * 1024, 1024 * 1024, 16 * 1024 * 1024] {
        let wire = stuff(&message(size));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.sample_size(20);
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            b.iter(|| {
                let mut d = MultilineDecoder::with_capacity(u64::MAX, wire.len());
                // Feed in 64 KiB pieces, as reads from a socket arrive.
                for chunk in wire.chunks(64 * 1024) {
                    d.feed(chunk);
                }
                d.finish().unwrap().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
