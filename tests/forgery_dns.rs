//! The forgery checks against an authoritative DNS server running in this process
//! (hickory-server) with zones written here: the seed's web.de examples, DMARC policies,
//! DKIM signatures, a DNS server that stops or never answers, and real list mail from the
//! corpus whose free-mail From must not be judged by the provider's PTR rule.

use std::time::{Duration, Instant};

use base64::Engine;
use mail_auth::{
    common::{crypto::Ed25519Key, headers::HeaderWriter},
    dkim::DkimSigner,
};
use quorum_domain::Provider;
use quorum_forgery::{Checker, Outcome, Providers, Verdict};
use quorum_tests::{
    corpus_message, corpus_or_skip,
    dns::{TestDns, Zones, dns_settings, silent_dns},
    seed::{SEED_FORGED, SEED_GENUINE, seed_zones},
};

fn web_de() -> Provider {
    // The seed's row: insert into dns values ('web.de','1','1','1','cinetic.de');
    Provider::new("web.de", true, true, true, "", "cinetic.de").unwrap()
}

#[tokio::test]
async fn the_seed_web_de_examples() {
    let dns = TestDns::start(seed_zones()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let providers = Providers::new([web_de()]);

    let forged = checker.check(SEED_FORGED.as_bytes(), &providers, &[]).await;
    assert_eq!(forged.verdict, Verdict::Forged("PTR of 211.191.62.186 missing, claims web.de".into()));
    assert_eq!(forged.reason().unwrap(), "forged: PTR of 211.191.62.186 missing, claims web.de");
    // LiSB evidence: the envelope sender is not in the author's organisation.
    assert_eq!(forged.consistency.return_path_aligned, Some(false));

    let genuine = checker.check(SEED_GENUINE.as_bytes(), &providers, &[]).await;
    assert_eq!(genuine.verdict, Verdict::Checked, "{genuine:#?}");
    assert!(
        genuine.reverse_dns.is(Outcome::Pass) && genuine.reverse_dns.detail.contains("nsx1.cinetic.de"),
        "{genuine:#?}"
    );
    assert!(genuine.fcrdns.is(Outcome::Pass));
    assert_eq!(genuine.consistency.return_path_aligned, Some(true));
    assert_eq!(genuine.reason(), None);
}

#[tokio::test]
async fn a_ptr_named_after_the_provider_in_a_spammers_reverse_zone_is_forged() {
    let zones = seed_zones()
        .zone("62.191.211.in-addr.arpa")
        .ns("62.191.211.in-addr.arpa", "ns1.bulk-hosting.example")
        .ptr("211.191.62.186", "mailout.web.de");
    let dns = TestDns::start(zones).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let e = checker.check(SEED_FORGED.as_bytes(), &Providers::new([web_de()]), &[]).await;
    assert!(e.is_forged(), "{e:#?}");
    assert!(e.reason().unwrap().contains("served by ns1.bulk-hosting.example, not cinetic.de"), "{e:#?}");
    // mailout.web.de has no address in web.de's (real) zone: not forward-confirmed either.
    assert!(e.fcrdns.is(Outcome::Fail), "{e:#?}");
}

/// A direct message from `from` through `ip`, as the subscriber's provider recorded it.
fn direct(from: &str, ip: &str, return_path: &str, extra: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{return_path}>\r\nReceived: from sender.example (sender.example [{ip}])\r\n\tby mx1.quorum.test (Postfix) with ESMTP id 4A1B2C; Tue, 24 Nov 2026 10:00:00 +0000\r\n\
{extra}From: Someone <{from}>\r\nTo: me@quorum.test\r\nSubject: hello\r\nDate: Tue, 24 Nov 2026 09:59:58 +0000\r\nMessage-ID: <x1@test>\r\n\r\nHello there.\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn dmarc_reject_forged_none_held_with_evidence() {
    let zones = Zones::new()
        .zone("in-addr.arpa")
        .zone("rejecting.example")
        .txt("rejecting.example", "v=spf1 ip4:81.169.146.0/24 -all")
        .txt("_dmarc.rejecting.example", "v=DMARC1; p=reject")
        .zone("relaxed.example")
        .txt("relaxed.example", "v=spf1 ip4:81.169.146.0/24 -all")
        .txt("_dmarc.relaxed.example", "v=DMARC1; p=none");
    let dns = TestDns::start(zones).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let none = Providers::default();

    let spoofed = direct("ceo@rejecting.example", "203.113.5.9", "ceo@rejecting.example", "");
    let e = checker.check(&spoofed, &none, &[]).await;
    assert!(e.spf.is(Outcome::Fail), "{e:#?}");
    assert_eq!(e.dmarc_policy.as_deref(), Some("reject"));
    assert_eq!(
        e.reason().unwrap(),
        "forged: DMARC fails and rejecting.example publishes p=reject (spf=fail for rejecting.example; no DKIM signature)"
    );

    let genuine = direct("ceo@rejecting.example", "81.169.146.7", "ceo@rejecting.example", "");
    let e = checker.check(&genuine, &none, &[]).await;
    assert!(e.dmarc.is(Outcome::Pass) && e.authenticated && e.verdict == Verdict::Checked, "{e:#?}");

    let relaxed = direct("news@relaxed.example", "203.113.5.9", "news@relaxed.example", "");
    let e = checker.check(&relaxed, &none, &[]).await;
    assert_eq!(e.verdict, Verdict::Checked, "{e:#?}");
    assert!(e.fails_dmarc() && !e.authenticated);
    assert_eq!(e.reason().unwrap(), "DMARC fails (p=none)");

    // Forwarded by another host from the domain's own server (a .forward): SPF fails at
    // the forwarder, which is no proof of forgery.
    let forwarded = "Return-Path: <ceo@rejecting.example>\r\n\
Received: from relay.forwarder.example (relay.forwarder.example [203.113.5.9])\r\n\tby mx1.quorum.test (Postfix); Tue, 24 Nov 2026 10:00:02 +0000\r\n\
Received: from out1.rejecting.example (out1.rejecting.example [81.169.146.7])\r\n\tby relay.forwarder.example (Postfix); Tue, 24 Nov 2026 10:00:01 +0000\r\n\
From: ceo@rejecting.example\r\nTo: old@forwarder.example\r\nSubject: fwd\r\n\r\nHello.\r\n";
    let e = checker.check(forwarded.as_bytes(), &none, &[]).await;
    assert_eq!(e.indirect.as_deref(), Some("forwarded from rejecting.example's own servers"), "{e:#?}");
    assert!(e.fails_dmarc() && !e.is_forged(), "{e:#?}");

    // Through a mailing list, a p=reject failure is evidence only (lists break SPF).
    let listed = direct(
        "ceo@rejecting.example",
        "203.113.5.9",
        "list-bounces@lists.example",
        "List-Id: <team.lists.example>\r\n",
    );
    let e = checker.check(&listed, &none, &[]).await;
    assert!(e.fails_dmarc() && e.verdict == Verdict::Checked, "{e:#?}");
}

#[tokio::test]
async fn an_aligned_dkim_signature_authenticates_and_outranks_the_path() {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    let zones = seed_zones()
        .txt("sel._domainkey.web.de", &format!("v=DKIM1; k=ed25519; p={public}"))
        .txt("_dmarc.web.de", "v=DMARC1; p=reject");
    let dns = TestDns::start(zones).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    // A web.de user's message relayed by some other server (the PTR rule alone would call
    // it forged), signed by web.de.
    let unsigned = direct("someone@web.de", "211.191.62.186", "someone@web.de", "");
    let signer = DkimSigner::from_key(key).domain("web.de").selector("sel").headers(["From", "To", "Subject", "Date"]);
    let signature = signer.sign(&unsigned).unwrap().to_header();
    let signed = [signature.as_bytes(), &unsigned].concat();
    let e = checker.check(&signed, &Providers::new([web_de()]), &[]).await;
    assert!(e.dkim.is(Outcome::Pass) && e.authenticated, "{e:#?}");
    assert!(e.reverse_dns.is(Outcome::Fail) && e.dmarc.is(Outcome::Pass), "{e:#?}");
    assert_eq!(e.verdict, Verdict::Checked);
    // The same bytes with the signed body changed: the signature fails, DMARC fails, and
    // both rules condemn it.
    let tampered = String::from_utf8(signed).unwrap().replace("Hello there.", "Buy now.");
    let e = checker.check(tampered.as_bytes(), &Providers::new([web_de()]), &[]).await;
    assert!(e.dkim.is(Outcome::Fail) && e.is_forged(), "{e:#?}");
}

#[tokio::test]
async fn a_dns_server_that_stops_or_never_answers_deletes_nothing() {
    let providers = Providers::new([web_de()]);
    // Never answers: every lookup runs into its timeout; the check ends within its budget.
    let (silent, task) = silent_dns().await;
    let checker = Checker::new(&dns_settings(silent, 300, 1000)).unwrap();
    let started = Instant::now();
    let e = checker.check(SEED_FORGED.as_bytes(), &providers, &[]).await;
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(matches!(e.verdict, Verdict::Incomplete(_)), "{e:#?}");
    assert!(e.reverse_dns.is(Outcome::Unknown));
    task.abort();

    // Stopped: the port is closed.
    let dns = TestDns::start(seed_zones()).await;
    let addr = dns.addr;
    dns.stop().await;
    let checker = Checker::new(&dns_settings(addr, 300, 1000)).unwrap();
    for raw in [SEED_FORGED, SEED_GENUINE] {
        let e = checker.check(raw.as_bytes(), &providers, &[]).await;
        assert!(matches!(e.verdict, Verdict::Incomplete(_)), "{e:#?}");
        assert!(e.reason().unwrap().starts_with("checks incomplete:"));
    }
}

#[tokio::test]
async fn a_refused_query_is_a_failure_not_an_answer() {
    // The server knows web.de but refuses the reverse zone: no conclusion, held.
    let dns = TestDns::start(Zones::new().zone("web.de").refuse_others()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let e = checker.check(SEED_FORGED.as_bytes(), &Providers::new([web_de()]), &[]).await;
    assert!(e.reverse_dns.is(Outcome::Unknown) && e.reverse_dns.detail.contains("Refused"), "{e:#?}");
    assert!(matches!(e.verdict, Verdict::Incomplete(_)), "{e:#?}");
}

/// Ham from the corpus with a yahoo.com or hotmail.com From that reached the recipient
/// through mailing lists (Yahoo Groups, FoRK, ILUG): the connecting host is the list's.
const LIST_HAM: &[&str] = &[
    "00041.002af69a10eb9b6683a7cff5f3ac14b4.txt",
    "00082.b40e4eedafc60aef72a0a0cbb63c2406.txt",
    "00083.d6bec4788401bc0df20b740557680768.txt",
    "00114.240461056916c0cdd555ba9d2bc9e63e.txt",
    "00184.4534b61b19d6102fe241eecf0a436a35.txt",
    "00187.f2e1e617b73fa1c5137d78383372886f.txt",
    "00191.41a15d7d511bc977b0fcb93cd9492bd1.txt",
    "00199.05aa582ea00818b07c867878ced559fb.txt",
    "00225.13c1eaece69dd93afacadb48189e65fc.txt",
    "00255.11be25bd4a3d55702ed4a1f13e7d2a3d.txt",
    "00271.b67b5b37ce874d5ccea3391922f14506.txt",
    "00293.d74734bf5cf13ea138e4ee4df7555008.txt",
];

/// Removes every field named in `names` (with its continuation lines) from the header
/// section, and prepends `prefix`.
fn rewrite_headers(raw: &[u8], names: &[&str], prefix: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\n\n").unwrap();
    let mut out = String::from(prefix);
    let mut dropping = false;
    for line in head.lines() {
        if !line.starts_with([' ', '\t']) {
            let field = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
            dropping = names.contains(&field.as_str());
        }
        if !dropping {
            out.push_str(line);
            out.push('\n');
        }
    }
    format!("{out}\n{body}").into_bytes()
}

#[tokio::test]
async fn list_mail_with_a_free_mail_from_is_not_forged_but_the_same_sent_directly_is() {
    let Some(dir) = corpus_or_skip("list_mail_with_a_free_mail_from_is_not_forged_but_the_same_sent_directly_is")
    else {
        return;
    };
    // Every PTR is NXDOMAIN: judged by the PTR rule, every one of these would be forged.
    let dns = TestDns::start(Zones::new().zone("in-addr.arpa")).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let providers = Providers::new([
        Provider::new("yahoo.com", true, true, true, "yahoo.com", "").unwrap(),
        Provider::new("hotmail.com", true, true, true, "hotmail.com,msn.com,outlook.com", "").unwrap(),
    ]);
    for file in LIST_HAM {
        let raw = corpus_message(&dir.join("ham").join(file));
        let e = checker.check(&raw, &providers, &[]).await;
        assert!(matches!(e.from_domain.as_deref(), Some("yahoo.com" | "hotmail.com")), "{file}: {e:#?}");
        assert!(e.handoff.is_some(), "{file}: no trusted hop found");
        assert!(e.indirect.is_some() && !e.is_forged(), "{file}: {e:#?}");

        let direct = rewrite_headers(
            &raw,
            &[
                "received",
                "list-id",
                "list-post",
                "list-unsubscribe",
                "list-help",
                "list-subscribe",
                "list-archive",
                "mailing-list",
                "x-beenthere",
                "x-mailman-version",
                "precedence",
                "sender",
                "errors-to",
                "delivered-to",
            ],
            "Received: from pc-77.dialup.example (unknown [81.169.146.7])\n\tby mx1.quorum.test (Postfix) with ESMTP id 9F8E7D\n\tfor <me@quorum.test>; Tue, 24 Nov 2026 10:00:00 +0000\n",
        );
        let e = checker.check(&direct, &providers, &[]).await;
        assert!(e.is_forged(), "{file} sent directly: {e:#?}");
        assert_eq!(
            e.reason().unwrap(),
            format!("forged: PTR of 81.169.146.7 missing, claims {}", e.from_domain.as_deref().unwrap())
        );
    }
}

#[tokio::test]
async fn mail_forwarded_from_the_providers_own_servers_is_not_judged_by_the_path() {
    let dns = TestDns::start(seed_zones()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    // A .forward at another host: the chain shows web.de's relay handing it to the
    // forwarder, which then connected to the subscriber's provider.
    let forwarded = "Return-Path: <shelby_moore@web.de>\r\n\
Received: from relay.forwarder.example (relay.forwarder.example [81.169.146.7])\r\n\tby mx1.quorum.test (Postfix) with ESMTP id 1; Tue, 24 Nov 2026 10:00:02 +0000\r\n\
Received: from fmmailgate01.web.de (fmmailgate01.web.de [217.72.192.221])\r\n\tby relay.forwarder.example (Postfix) with ESMTP id 2; Tue, 24 Nov 2026 10:00:01 +0000\r\n\
Received: by fmmailgate01.web.de (8.12.6/8.12.6/webde Linux 0.7) with SMTP id 3; Tue, 24 Nov 2026 10:00:00 +0000\r\n\
From: \"Shelby Moore\" <shelby_moore@web.de>\r\nTo: old-address@forwarder.example\r\nSubject: hi\r\n\r\nTest\r\n";
    let e = checker.check(forwarded.as_bytes(), &Providers::new([web_de()]), &[]).await;
    assert_eq!(e.indirect.as_deref(), Some("forwarded from web.de's own servers"), "{e:#?}");
    assert!(!e.is_forged());
    assert!(e.reverse_dns.is(Outcome::Fail), "evidence is still recorded: {e:#?}");
}

#[tokio::test]
async fn no_corpus_ham_is_forged_with_the_seeded_providers_even_when_every_ptr_is_missing() {
    let Some(dir) = corpus_or_skip("no_corpus_ham_is_forged_with_the_seeded_providers_even_when_every_ptr_is_missing")
    else {
        return;
    };
    // The provider table a new installation has, and DNS at its worst for the PTR rule:
    // no address has a PTR. Direct mail from a provider whose PTR is required would be
    // condemned; the corpus ham (list mail, ISP relays, direct mail) must not be.
    let (_dir, url) = quorum_tests::fresh_sqlite();
    let db = quorum_storage::Sqlite::connect(&url).await.unwrap();
    quorum_storage::Database::migrate(&db).await.unwrap();
    let providers = Providers::new(quorum_storage::Database::providers(&db).await.unwrap());
    let dns = TestDns::start(Zones::new()).await;
    let checker = Checker::new(&dns_settings(dns.addr, 2000, 5000)).unwrap();
    let (mut ham, mut spam_forged) = (0, 0);
    for path in quorum_tests::corpus_paths(&dir) {
        let e = checker.check(&corpus_message(&path), &providers, &[]).await;
        if path.parent().unwrap().ends_with("spam") {
            spam_forged += usize::from(e.is_forged());
        } else {
            ham += 1;
            assert!(!e.is_forged(), "{}: {e:#?}", path.display());
        }
    }
    assert_eq!(ham, 2750);
    println!("spam judged forged by the seeded rules alone: {spam_forged} of 500");
    assert!(spam_forged > 0, "the seeded rows catch the corpus's forged yahoo.com spam");
}
