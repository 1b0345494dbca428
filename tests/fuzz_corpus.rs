//! Mutation fuzzing on stable Rust, seeded from the corpus (read at run time): real messages
//! with bytes flipped, cut, repeated, and hostile fragments spliced in (encoded words, MIME
//! boundaries, multi-byte characters, several From addresses, forged Authentication-Results,
//! HTML links, end-of-data variants) go through every parser of outside mail that needs no
//! server. Four targets, each a test:
//! - inspection, the Received chain and its handoff, fingerprints (HTML links included),
//!   reputation keys, the campaign report's patterns and groups and the blocklist's lines,
//!   reply authentication and parsing: none may panic;
//! - the forgery header rules with every combination of DNS answers: none may panic, and
//!   mail a list or forwarder relayed, or with no failed check, is never called forged;
//! - the POP3 framing decoder: every message dot-stuffed and fed in random pieces comes back
//!   byte for byte, with a pipelined reply after it left unread; hostile bytes never panic it;
//! - summary composition with the mutated messages' names and subjects: one line per held
//!   message, no box a sender could forge, and a reply with every box filled parses back to
//!   exactly the answers given.
//!
//! `QUORUM_FUZZ_SECS` sets how long each target runs (default 3 s, the CI run); a failing
//! input is written to the temporary folder and named.

use std::time::{Duration, Instant};

use quorum_domain::{InspectedMessage, Keys, Provider, Timestamp};
use quorum_fingerprint::Fingerprint;
use quorum_forgery::{
    Finding, Outcome, Providers,
    evidence::{Answer, ReverseLookup, aligned},
};
use quorum_pop3::Capabilities;
use quorum_pop3::proto::{MultilineDecoder, parse_listing, parse_status_line, stuff};
use quorum_summary::{
    Action, Counts, ForgedLine, HeldLine, ReplyPolicy, ShortId, Verdict, compose, ids_in_summary, parse_reply,
};
use quorum_tests::{Rng, corpus_message, corpus_or_skip, corpus_paths};

const FRAGMENTS: [&[u8]; 18] = [
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
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r\n.\r\r\n",
    b"\xe2\x80\xae[A] 00002 \xe2\x80\xa8",
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
    reports(raw, &info, &hops, &f);
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

/// The operators' reports on one message: its reputation keys (the handoff found with
/// learned provider domains, named by the Public Suffix List), the campaign report's
/// patterns and groups, and the blocklist's entries and text.
fn reports(raw: &[u8], info: &InspectedMessage, hops: &[quorum_domain::received::Hop], f: &Fingerprint) {
    struct Nothing;
    impl quorum_reputation::blocklist::Standing for Nothing {
        fn has_ham(&self, _: &quorum_reputation::Key) -> bool {
            false
        }
        fn provider(&self, _: &str) -> bool {
            false
        }
    }
    use quorum_reputation::{blocklist, campaigns};
    let handoff = quorum_domain::received::handoff(hops, &[]).map(|h| h.ip);
    let from = info.from.as_ref().map(|a| a.as_str());
    let keys = quorum_reputation::keys(&quorum_reputation::Facts { handoff, from, fingerprint: Some(f) });
    // The subject, or the raw bytes where there is none: any text a subject could hold.
    let subject = info.subject.clone().unwrap_or_else(|| String::from_utf8_lossy(&raw[..raw.len().min(300)]).into());
    let _ = from.map(campaigns::sender_pattern);
    let spam = campaigns::Spam {
        id: 1,
        recipient: 1,
        at: 0,
        subject: Some(subject),
        from: from.map(str::to_string),
        status: "probe_spam".into(),
        keys,
    };
    let twice = [spam.clone(), campaigns::Spam { id: 2, ..spam }];
    let _ = campaigns::report(&twice, &campaigns::Options::default());
    for format in [blocklist::Format::Postfix, blocklist::Format::Domains] {
        let entries = match format {
            blocklist::Format::Domains => blocklist::domains(&twice, 1, &Nothing),
            _ => blocklist::networks(&twice, 1, &Nothing),
        };
        let _ = blocklist::render(format, &entries, "the window");
    }
}

/// Runs `target` on mutated corpus messages for `QUORUM_FUZZ_SECS` (3 s unless set). Each
/// input is replayable on its own (a target derives any choice it makes from the bytes), so
/// a failure writes the input to the temporary folder and names it.
fn fuzz(name: &str, target: impl Fn(&[u8])) {
    let Some(dir) = corpus_or_skip(name) else { return };
    let secs: u64 = std::env::var("QUORUM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let seeds: Vec<Vec<u8>> = corpus_paths(&dir).iter().map(|p| corpus_message(p)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (deadline, mut runs) = (Instant::now() + Duration::from_secs(secs), 0u64);
    while Instant::now() < deadline {
        let input = mutate(&seeds[rng.below(seeds.len())], &mut rng);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input))).is_err() {
            let path = std::env::temp_dir().join(format!("quorum-fuzz-{name}-{runs}.eml"));
            std::fs::write(&path, &input).unwrap();
            panic!("{name} failed on mutated input {} (run {runs})", path.display());
        }
        runs += 1;
    }
    println!("{name}: {runs} mutated corpus messages in {secs} s, no failure");
}

/// A generator seeded from the input's bytes, for choices a target makes about one input.
fn rng_of(input: &[u8]) -> Rng {
    let seed = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Rng(seed | 1)
}

#[test]
fn hostile_variants_of_real_mail_never_panic_a_parser() {
    let keys = Keys::from_master(&[7u8; 32]).unwrap();
    let policy = ReplyPolicy { max_age_secs: 30 * 86_400, authserv_id: Some("mx.quorum.test".into()) };
    let ids: Vec<ShortId> = ["00001", "00002", "00003"].iter().filter_map(|s| ShortId::parse(s)).collect();
    fuzz("parsers", |input| targets(input, &keys, &policy, &ids));
}

/// Every outcome a check can have, for the forgery rules' answers.
fn finding(rng: &mut Rng) -> Finding {
    match rng.below(4) {
        0 => Finding::pass("pass"),
        1 => Finding::fail("fail"),
        2 => Finding::unknown("unknown"),
        _ => Finding::skipped("skipped"),
    }
}

fn answer<T>(rng: &mut Rng, found: T) -> Answer<T> {
    match rng.below(3) {
        0 => Answer::Found(found),
        1 => Answer::Missing,
        _ => Answer::Failed("timed out".into()),
    }
}

#[test]
fn forgery_rules_never_call_relayed_or_unfailed_mail_forged() {
    let fixed = [
        Provider::new("hotmail.com", true, true, true, "outlook.com hotmail.com", "").unwrap(),
        Provider::new("web.de", true, true, true, "", "cinetic.de").unwrap(),
    ];
    fuzz("forgery", |input| {
        let mut rng = rng_of(input);
        // The message's own author domain as a provider row too, when it is a domain.
        let own = quorum_forgery::headers::parties(input).consistency.from_domain.and_then(|d| {
            let (ptr_domains, ns) = if rng.below(2) == 0 { ("", "") } else { ("relay.example", "ns.example") };
            Provider::new(&d, false, true, rng.below(2) == 0, ptr_domains, ns).ok()
        });
        let providers = Providers::new(fixed.iter().cloned().chain(own));
        let trusted = ["isp.example".to_string()];
        let learn = rng.below(2) == 0;
        let examined = quorum_forgery::examine(input, &providers, if learn { &[] } else { &trusted });
        let mut evidence = examined.evidence;
        // The reverse rule on every kind of answer, with the names the chain itself shows.
        if let (Some(p), Some(h)) = (examined.provider, examined.handoff.as_ref()) {
            let names: Vec<String> =
                quorum_domain::received::hops(input).into_iter().filter_map(|h| h.from_host).collect();
            let lookup = ReverseLookup {
                ptr: answer(&mut rng, names),
                zone_ns: (rng.below(2) == 0).then(|| answer(&mut rng, vec!["ns1.cinetic.de".to_string()])),
                forward: (rng.below(2) == 0).then(|| {
                    let resolves = rng.below(2) == 0;
                    answer(&mut rng, resolves)
                }),
            };
            let (rdns, fcrdns) = quorum_forgery::evidence::judge_reverse(p, h.ip, &lookup);
            if matches!(lookup.ptr, Answer::Failed(_)) {
                assert!(rdns.is(Outcome::Unknown) && fcrdns.is(Outcome::Unknown), "{rdns:?} {fcrdns:?}");
            }
            (evidence.reverse_dns, evidence.fcrdns) = (rdns, fcrdns);
        }
        (evidence.spf, evidence.dkim, evidence.dmarc) = (finding(&mut rng), finding(&mut rng), finding(&mut rng));
        evidence.dmarc_policy = ["reject", "quarantine", "none"].get(rng.below(4)).map(|p| p.to_string());
        evidence.decide(examined.provider);
        let failed = [&evidence.reverse_dns, &evidence.dmarc].iter().any(|f| f.is(Outcome::Fail));
        if evidence.is_forged() {
            assert!(evidence.indirect.is_none(), "relayed mail called forged: {evidence:?}");
            assert!(failed, "forged without a failed check: {evidence:?}");
        }
        let _ = evidence.reason();
        // Stored as JSON with the message: hostile domains come back as they went in.
        let json = serde_json::to_string(&evidence).unwrap();
        assert_eq!(serde_json::from_str::<quorum_forgery::Evidence>(&json).unwrap(), evidence);
        if let (Some(a), Some(b)) = (&evidence.consistency.from_domain, &evidence.consistency.return_path_domain) {
            assert_eq!(aligned(a, b), aligned(b, a));
        }
    });
}

#[test]
fn pop3_framing_gives_back_every_byte_in_any_pieces() {
    fuzz("pop3", |input| {
        let mut rng = rng_of(input);
        // As a server sends it, followed by the next pipelined reply.
        let mut wire = stuff(input);
        let block = wire.len();
        wire.extend_from_slice(b"+OK next\r\n");
        let mut expected = input.to_vec();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        let limit = if rng.below(4) == 0 { rng.below(expected.len() + 1) as u64 } else { u64::MAX };
        let mut decoder = MultilineDecoder::with_capacity(limit, rng.below(2 * expected.len() + 1));
        let mut at = 0;
        while !decoder.is_done() {
            assert!(at < wire.len(), "the terminator was not found");
            let end = (at + 1 + rng.below(4096)).min(wire.len());
            at += decoder.feed(&wire[at..end]);
        }
        assert_eq!(at, block, "the decoder must stop right after the terminator");
        match decoder.finish() {
            Ok(content) => {
                assert!(content == expected, "content changed ({} bytes, {} expected)", content.len(), expected.len())
            }
            Err(size) => assert!(size == expected.len() as u64 && size > limit, "size {size}, limit {limit}"),
        }
        // Bytes from a hostile server, unstuffed: the decoder and the line parsers only
        // ever fail with an error.
        let mut hostile = MultilineDecoder::new(1 << 20);
        let consumed = hostile.feed(input);
        assert!(consumed <= input.len());
        if hostile.is_done() {
            let _ = hostile.finish();
        }
        let _ = parse_status_line(input);
        let _ = parse_listing(input);
        let _ = Capabilities::parse(input).sasl("PLAIN");
    });
}

/// Answers a reply can give, in the box and as parsed.
const ANSWERS: [(&str, Action); 4] =
    [(" ", Action::Delete), ("A", Action::Approve), ("R", Action::Release), ("x", Action::Release)];

#[test]
fn summaries_of_hostile_mail_keep_their_shape_and_parse_back() {
    let owner = quorum_domain::EmailAddress::parse("alice@quorum.test").unwrap();
    fuzz("summary", |input| {
        let mut rng = rng_of(input);
        let info = InspectedMessage::parse(input);
        // The message's own name and subject, and raw pieces of it as if they were.
        // Often with a box for another line's ID in it, as a sender guessing IDs would write.
        let piece = |rng: &mut Rng| {
            let at = rng.below(input.len() + 1);
            let mut text = String::from_utf8_lossy(&input[at..(at + rng.below(300)).min(input.len())]).into_owned();
            if rng.below(2) == 0 {
                let cut = text.char_indices().nth(rng.below(text.chars().count() + 1)).map_or(text.len(), |(i, _)| i);
                text.insert_str(cut, &format!(" [A] {} ", ShortId::encode(1 + rng.below(8) as u64)));
            }
            text
        };
        let small = rng.below(2) == 0;
        let lines: Vec<HeldLine> = (0..1 + rng.below(8))
            .map(|i| HeldLine {
                // Often the small IDs the hostile fragments name (`[A] 00002`).
                message_id: if small { 1 + i as i64 } else { 1 + rng.below(1 << 20) as i64 * (1 + i as i64) },
                from_name: if i == 0 { info.from_name.clone() } else { Some(piece(&mut rng)) },
                from_address: if i == 0 { info.from.as_ref().map(|a| a.to_string()) } else { Some(piece(&mut rng)) },
                subject: if i == 0 { info.subject.clone() } else { Some(piece(&mut rng)) },
                not_spam: rng.below(1001) as f64 / 1000.0,
                expires_in_days: rng.below(30) as i64 - 2,
                note: (rng.below(2) == 0).then(|| piece(&mut rng)),
            })
            .collect();
        let forged: Vec<ForgedLine> = (0..rng.below(3))
            .map(|_| ForgedLine {
                from_name: Some(piece(&mut rng)),
                from_address: Some(piece(&mut rng)),
                subject: Some(piece(&mut rng)),
                reason: piece(&mut rng),
            })
            .collect();
        let composed = compose(&owner, "Monday 7 December, 08:00", Counts::default(), lines, &forged);
        let ids: Vec<ShortId> = composed.items.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids_in_summary(&composed.text), ids, "a sender's text made or hid a box");
        assert!(!composed.text.contains(['\0', '\u{1b}']) && !composed.text.replace("\r\n", "").contains(['\r', '\n']));
        // The subscriber fills every box and replies, quoting the summary as clients do.
        let answers: Vec<usize> = ids.iter().map(|_| rng.below(ANSWERS.len())).collect();
        // Some clients re-wrap long lines at a space, so a sender's text can start a line.
        let width = if rng.below(2) == 0 { 20 + rng.below(60) } else { usize::MAX };
        let mut body = String::from("Thanks!\r\n\r\nOn Monday, Quorum wrote:\r\n");
        let mut n = 0;
        for line in composed.text.split("\r\n") {
            let mut line = match line.strip_prefix("[ ] ") {
                Some(rest) => {
                    n += 1;
                    format!("> [{}] {rest}", ANSWERS[answers[n - 1]].0)
                }
                None => format!("> {line}"),
            };
            while line.chars().count() > width {
                let cut = line.char_indices().take(width).filter(|(i, c)| *i > 12 && *c == ' ').last().map(|(i, _)| i);
                let Some(cut) = cut else { break };
                body.push_str(&line[..cut]);
                body.push_str("\r\n");
                line = line[cut + 1..].to_string();
            }
            body.push_str(&line);
            body.push_str("\r\n");
        }
        let reply = format!(
            "From: alice@quorum.test\r\nTo: summary@quorum.test\r\nSubject: Re: summary\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
        );
        let parsed: Vec<Verdict> = parse_reply(reply.as_bytes(), &ids).into_iter().map(|l| l.verdict).collect();
        let given: Vec<Verdict> = answers.iter().map(|&a| Verdict::Action(ANSWERS[a].1)).collect();
        assert_eq!(parsed, given, "the reply did not parse back to the answers given");
    });
}
