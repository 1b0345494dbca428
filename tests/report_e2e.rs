//! The operators' campaign report end to end (the reputation issue), with the real `quorum`
//! binary, Dovecot and the in-process DNS server: corpus spam, re-addressed as coming from
//! three /24s (each copy handed over by a botnet host the test writes into its Received
//! chain, one network's copies with one Reply-To), reaches two spam probes and two
//! subscribers; after the polls and the subscribers' empty boxes, `quorum report campaigns`
//! groups it by network and by Reply-To with the right counts, and the reputation tables
//! rate the networks. `quorum blocklist export` lists the botnets' /24s and nothing that
//! relayed a correspondent's approved mail; its Postfix table loads with `postmap`, and a
//! Postfix listener using it in `check_client_access` refuses a listed client and accepts
//! the correspondent's host.

use quorum_domain::{EmailAddress, Keys, Timestamp};
use quorum_storage::{Database, Sqlite, Vote};
use quorum_tests::{
    MailStack, TestUser, corpus_message, corpus_or_skip, corpus_paths,
    dns::{TestDns, Zones},
    fresh_sqlite, quorum_service, run,
};

/// The spam sources: per network, its hosts and the Reply-To its copies carry (if any).
/// The last is a hosting range whose first host also relays a correspondent's mail.
const BOTNETS: [(&str, &[&str], Option<&str>); 4] = [
    ("103.176.192.0/24", &["103.176.192.9", "103.176.192.10", "103.176.192.11"], None),
    ("192.93.19.0/24", &["192.93.19.27", "192.93.19.28", "192.93.19.29"], Some("jflore1942@gmail.com")),
    ("161.71.34.0/24", &["161.71.34.73", "161.71.34.74", "161.71.34.75"], Some("claims@payout-desk.example")),
    ("81.169.146.0/24", &["81.169.146.7", "81.169.146.8", "81.169.146.9"], None),
];

/// The host that relays both spam and the correspondent's mail.
const SHARED_HOST: &str = "81.169.146.7";

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
    // Alice's correspondent writes through the hosting range: approved, left in her Inbox.
    quorum(&["subscriber", "approve", &subscribers[0].email, "friend@garden-club.example"], &[]);
    let letter = b"From: friend@garden-club.example\nTo: alice@quorum.test\nSubject: Sunday\nMessage-ID: <sunday@garden-club.example>\n\nSee you at the allotment.\n";
    stack.maildir_drop(&subscribers[0], &readdressed(letter, SHARED_HOST, None));

    // Corpus spam that no mailing list relayed (a list's handoff is its own server) and
    // that does not claim a provider's domain (whose relays are never exported).
    let providers: Vec<String> = quorum(&["providers", "list"], &[])
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(|d| format!("@{d}")))
        .collect();
    let spam: Vec<Vec<u8>> = corpus_paths(&corpus)
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("spam")))
        .map(|p| corpus_message(p))
        .filter(|raw| {
            let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
            let head = &text[..text.find("\n\n").unwrap_or(text.len())];
            let from = head.lines().find(|l| l.starts_with("from:")).unwrap_or_default();
            !from.is_empty() && !head.contains("\nlist-") && !providers.iter().any(|p| from.contains(p.as_str()))
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

    assert!(stack.in_maildir(&subscribers[0], "See you at the allotment") == 1, "the letter stays in the Inbox");

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

    // The export: the three botnets' /24s; of the hosting range only the hosts that sent
    // nothing but spam, never the one that relayed the correspondent's mail nor its /24.
    let export = quorum(&["blocklist", "export", "--format", "cidr", "--since", "1h"], &[]);
    let mut listed: Vec<&str> = export.lines().filter(|l| !l.starts_with('#')).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        ["103.176.192.0/24", "161.71.34.0/24", "192.93.19.0/24", "81.169.146.8/32", "81.169.146.9/32"],
        "{export}"
    );
    assert!(export.lines().filter(|l| l.starts_with('#')).count() == listed.len() + 1, "a comment per entry: {export}");
    let postfix = quorum(&["blocklist", "export", "--format", "postfix", "--since", "1h"], &[]);
    assert!(postfix.lines().any(|l| l == "103.176.192.0/24\tREJECT spam source (12 reports to Quorum)"), "{postfix}");
    // The Postfix table loads, and a listener using it in check_client_access refuses a
    // listed client and accepts the correspondent's host.
    std::fs::write(&stack.blocklist_map, &postfix).unwrap();
    let postmap = |ip: &str| {
        let map = format!("cidr:{}", stack.blocklist_map.display());
        let conf = stack.postfix_conf.display().to_string();
        let out = std::process::Command::new("postmap").args(["-c", &conf, "-q", ip, &map]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    assert_eq!(postmap("103.176.192.10"), (Some(0), "REJECT spam source (12 reports to Quorum)".into()));
    assert_eq!(postmap(SHARED_HOST), (Some(1), String::new()), "not listed");
    let refused = smtp_as("103.176.192.10", stack.blocklist_port, &subscribers[0].email);
    assert!(refused.starts_with("554 5.7.1") && refused.contains("spam source"), "{refused}");
    let accepted = smtp_as(SHARED_HOST, stack.blocklist_port, &subscribers[0].email);
    assert!(accepted.starts_with("250"), "{accepted}");

    // The correspondent's domain is no candidate: it sent no spam; the spam's own domains
    // are, each with its four copies.
    let domains = quorum(&["blocklist", "export", "--format", "domains", "--since", "1h"], &[]);
    assert!(!domains.contains("garden-club.example"), "{domains}");
    assert!(domains.lines().any(|l| !l.starts_with('#')), "{domains}");
}

/// An SMTP session with the blocklist listener as client `ip` (XCLIENT): its answer to
/// `RCPT TO:<to>`, where Postfix applies the client restrictions.
fn smtp_as(ip: &str, port: u16, to: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // The last line of a (possibly multi-line) reply.
    let mut reply = || loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return line.trim_end().to_string();
        }
    };
    let mut answers = vec![reply()];
    for command in [
        "EHLO test.example".to_string(),
        format!("XCLIENT ADDR={ip}"),
        "EHLO test.example".into(),
        "MAIL FROM:<sender@test.example>".into(),
        format!("RCPT TO:<{to}>"),
        "QUIT".into(),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        answers.push(reply());
    }
    // XCLIENT starts a new session: a fresh greeting.
    assert!(answers[2].starts_with("220"), "XCLIENT refused: {answers:?}");
    answers[5].clone()
}
