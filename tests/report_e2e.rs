//! The operators' campaign report end to end (the reputation issue), with the real `quorum`
//! binary, Dovecot and the in-process DNS server: corpus spam, re-addressed as coming from
//! three /24s (each copy handed over by a botnet host the test writes into its Received
//! chain, one network's copies with one Reply-To), reaches two spam probes and two
//! subscribers; after the polls and the subscribers' empty boxes, `quorum report campaigns`
//! groups it by network and by Reply-To with the right counts, and the reputation tables
//! rate the networks.

use quorum_domain::{EmailAddress, Keys, Timestamp};
use quorum_storage::{Database, Sqlite, Vote};
use quorum_tests::{
    MailStack, TestUser, corpus_message, corpus_or_skip, corpus_paths,
    dns::{TestDns, Zones},
    fresh_sqlite, quorum_service, run,
};

/// The botnets: per network, its hosts and the Reply-To its copies carry (if any).
const BOTNETS: [(&str, &[&str], Option<&str>); 3] = [
    ("103.176.192.0/24", &["103.176.192.9", "103.176.192.10"], None),
    ("192.93.19.0/24", &["192.93.19.27"], Some("jflore1942@gmail.com")),
    ("161.71.34.0/24", &["161.71.34.73", "161.71.34.74", "161.71.34.75"], Some("claims@payout-desk.example")),
];

/// Corpus spam messages per network.
const PER_NETWORK: usize = 3;

/// `raw` as handed over by `ip` to the subscriber's provider, with this Reply-To (any of
/// its own removed).
fn readdressed(raw: &[u8], ip: &str, reply_to: Option<&str>) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let split = text.find("\n\n").map(|i| i + 1).unwrap_or(text.len());
    let (head, body) = text.split_at(split);
    let mut out = format!(
        "Received: from bot.example (unknown [{ip}]) by mx.quorum.test (Postfix) with ESMTP id 4Q; \
         Mon, 7 Dec 2026 10:00:00 +0000\n"
    );
    let mut skipping = false;
    for line in head.lines() {
        let continuation = line.starts_with([' ', '\t']);
        skipping = if continuation { skipping } else { line.to_ascii_lowercase().starts_with("reply-to:") };
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if let Some(r) = reply_to {
        out.push_str(&format!("Reply-To: {r}\n"));
    }
    out.push_str(body);
    out.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_groups_corpus_spam_by_network_and_reply_to() {
    let Some(corpus) = corpus_or_skip("the_report_groups_corpus_spam_by_network_and_reply_to") else { return };
    let stack = MailStack::get();
    let (_dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let dns = TestDns::start(Zones::new().zone("quorum.test")).await;
    let quorum = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = quorum_service(&url, &key, None);
        cmd.env("QUORUM_DNS__NAMESERVERS", dns.addr.to_string())
            .env("QUORUM_CONFIRMATIONS__ENABLED", "false")
            .envs(env.iter().copied())
            .args(args);
        let (ok, out) = run(cmd);
        assert!(ok, "quorum {args:?}: {out}");
        out
    };
    let subscribe = |tag: &str| -> TestUser {
        let user = stack.new_user(tag);
        let port = stack.pop3_port.to_string();
        quorum(
            &[
                "subscriber",
                "add",
                &user.email,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--security",
                "plain",
                "--user",
                &user.email,
            ],
            &[("QUORUM_POP3_PASSWORD", &user.password)],
        );
        user
    };
    let probes = [subscribe("probe0"), subscribe("probe1")];
    for p in &probes {
        quorum(&["subscriber", "probe", &p.email, "on"], &[]);
    }
    let subscribers = [subscribe("alice"), subscribe("bob")];

    // Corpus spam that no mailing list relayed (a list's handoff is its own server).
    let spam: Vec<Vec<u8>> = corpus_paths(&corpus)
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("spam")))
        .map(|p| corpus_message(p))
        .filter(|raw| {
            let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
            let head = &text[..text.find("\n\n").unwrap_or(text.len())];
            head.contains("\nfrom:") && !head.contains("\nlist-")
        })
        .take(BOTNETS.len() * PER_NETWORK)
        .collect();
    assert_eq!(spam.len(), BOTNETS.len() * PER_NETWORK);
    for (i, raw) in spam.iter().enumerate() {
        let (_, hosts, reply_to) = BOTNETS[i / PER_NETWORK];
        let copy = readdressed(raw, hosts[i % hosts.len()], reply_to);
        for user in probes.iter().chain(&subscribers) {
            stack.maildir_drop(user, &copy);
        }
    }
    // The probes first, then the subscribers, who leave what was held blank.
    for user in probes.iter().chain(&subscribers) {
        quorum(&["poll", &user.email], &[]);
    }
    let db = Sqlite::connect(&url).await.unwrap();
    for user in &subscribers {
        let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
        let messages = db.quarantined(s.mailbox_id).await.unwrap();
        assert_eq!(messages.len(), spam.len(), "every copy stored");
        for m in messages.into_iter().filter(|m| m.status == "held") {
            let from = m.from_address.as_deref().map(|f| EmailAddress::parse(f).unwrap());
            let now = Timestamp::now();
            assert!(
                db.reject_message(s.subscriber_id, s.mailbox_id, m.id, from.as_ref(), "deleted_spam", now)
                    .await
                    .unwrap()
            );
            if let Some(from) = &from {
                db.record_vote(s.subscriber_id, m.id, from, Vote::Spam, now).await.unwrap();
            }
        }
    }

    // Every network's copies are one group: three messages, four recipients each.
    let report: serde_json::Value =
        serde_json::from_str(&quorum(&["report", "campaigns", "--since", "1h", "--json"], &[])).unwrap();
    assert_eq!(report["messages"], 4 * spam.len(), "{report:#}");
    let groups = report["groups"].as_array().unwrap();
    let group = |by: &str, key: &str| {
        groups.iter().find(|g| g["by"] == by && g["key"] == key).unwrap_or_else(|| panic!("{by} {key}: {report:#}"))
    };
    for (network, _, reply_to) in BOTNETS {
        let g = group("network", network);
        assert_eq!(
            (g["messages"].as_u64(), g["recipients"].as_u64()),
            (Some(4 * PER_NETWORK as u64), Some(4)),
            "{g:#}"
        );
        // What decided each copy: the probes (a forgery the checks prove is deleted as
        // forged first), the statistics or the empty boxes.
        let verdicts = g["verdicts"].as_object().unwrap();
        assert_eq!(verdicts.values().filter_map(|v| v.as_u64()).sum::<u64>(), 4 * PER_NETWORK as u64, "{g:#}");
        assert!(verdicts.get("probe_spam").and_then(|v| v.as_u64()).is_some_and(|n| n > 0), "{g:#}");
        if let Some(r) = reply_to {
            let g = group("reply_to", r);
            assert_eq!((g["messages"].as_u64(), g["recipients"].as_u64()), (Some(4 * PER_NETWORK as u64), Some(4)));
        }
    }
    assert!(groups.iter().all(|g| g["by"] != "network" || BOTNETS.iter().any(|(n, ..)| g["key"] == *n)), "{report:#}");
    // The text report, as seed 000 reads.
    let text = quorum(&["report", "campaigns", "--since", "1h"], &[]);
    assert!(
        text.contains(&format!("network 103.176.192.0/24 -> {} messages to 4 recipients", 4 * PER_NETWORK)),
        "{text}"
    );
    // The networks' reputation: every message reported (by a probe or an empty box).
    let table = quorum(&["stats", "reputation", "--kind", "network"], &[]);
    for (network, ..) in BOTNETS {
        let line = table.lines().find(|l| l.starts_with(network)).unwrap_or_else(|| panic!("{network}: {table}"));
        assert!(line.split_whitespace().nth(1) == Some("blocked"), "{table}");
    }
}
