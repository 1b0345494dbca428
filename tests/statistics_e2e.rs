//! The collaborative statistics in the running service: a spam probe's mail becomes spam
//! votes on arrival, on every key of the message; the probes' reports of a campaign and of
//! its domain's other senders delete a new copy for another subscriber (on arrival, or
//! before their summary, by the keys stored with it), correspondents are untouched, and
//! `quorum stats` shows the tables. A newsletter its readers approved is kept for everyone,
//! and a mailing a few users left blank is held, ranked below it. A new address at a domain
//! with spam senders and approved ones is held, on arrival and at the re-score.

use quorum_domain::{EmailAddress, Keys, MessageHash, Timestamp};
use quorum_storage::{Database, PollItem, QuarantinedMessage, Sqlite, SubscriberStatus, Vote};
use quorum_tests::{MailStack, TestUser, fresh_sqlite, quorum_service, run, unique};

struct Env {
    url: String,
    key: String,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let (dir, url) = fresh_sqlite();
        Env { url, key: Keys::generate_master(), dir }
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(args).env("QUORUM_CONFIRMATIONS__ENABLED", "false");
        run(cmd)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "quorum {args:?}: {out}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(!ok, "quorum {args:?} succeeded: {out}");
        out
    }

    fn subscriber(&self, tag: &str) -> TestUser {
        let stack = MailStack::get();
        let user = stack.new_user(tag);
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(["subscriber", "add", &user.email, "--host", "127.0.0.1", "--port", &stack.pop3_port.to_string()])
            .args(["--security", "plain", "--user", &user.email])
            .env("QUORUM_POP3_PASSWORD", &user.password);
        let (ok, out) = run(cmd);
        assert!(ok, "{out}");
        user
    }

    /// `n` new subscribers flagged as spam probes.
    fn probes(&self, n: usize) -> Vec<TestUser> {
        let probes: Vec<TestUser> = (0..n).map(|i| self.subscriber(&format!("probe{i}"))).collect();
        for p in &probes {
            self.ok(&["subscriber", "probe", &p.email, "on"]);
        }
        probes
    }

    /// `quorum explain --json` of `raw` for `user`: its report, stored nowhere.
    fn explain(&self, user: &TestUser, name: &str, raw: &[u8]) -> serde_json::Value {
        let file = self.dir.path().join(name);
        std::fs::write(&file, raw).unwrap();
        let out = self.ok(&["explain", "--json", "--subscriber", &user.email, file.to_str().unwrap()]);
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    }

    async fn messages(&self, user: &TestUser) -> Vec<QuarantinedMessage> {
        let db = Sqlite::connect(&self.url).await.unwrap();
        let s = db.subscriber_by_email(&EmailAddress::parse(&user.email).unwrap()).await.unwrap().unwrap();
        db.quarantined(s.mailbox_id).await.unwrap()
    }
}

fn mail(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: someone@quorum.test\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\nHello.\r\n",
        unique()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_of_a_campaign_and_its_domain_delete_a_new_copy_for_everyone_else() {
    let stack = MailStack::get();
    let env = Env::new();
    let probes = env.probes(5);
    let alice = env.subscriber("alice");
    // Alice's copy from the campaign's domain arrives before anyone voted: held.
    stack.maildir_drop(&alice, &copy("early@bulk-pharma.example", "Half price", CAMPAIGN, "alice"));
    env.ok(&["poll", &alice.email]);
    // Five probes receive the campaign from twenty addresses at its domain: spam votes on
    // arrival, on every key of each copy.
    for (i, p) in probes.iter().enumerate() {
        for j in 0..4 {
            let from = format!("seller{}@bulk-pharma.example", 4 * i + j);
            stack.maildir_drop(p, &copy(&from, "Half price", CAMPAIGN, &format!("p{i}")));
        }
        assert!(env.ok(&["poll", &p.email]).contains("4 quarantined"));
        assert!(env.messages(p).await.iter().all(|m| m.status == "probe_spam"));
    }

    // A copy from a new address of the domain is deleted on arrival: five probes reported
    // the campaign (one item, at most 1 − 10⁻⁴ on its own) and twenty other addresses of
    // the domain were spam (the domain as a population of senders). A correspondent's
    // mail is not touched.
    let new_copy = copy("seller99@bulk-pharma.example", "Half price", CAMPAIGN, "alice");
    stack.maildir_drop(&alice, &new_copy);
    stack.maildir_drop(&alice, &mail("friend@friends.example", "lunch"));
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    let by_sender = |s: &str| messages.iter().find(|m| m.from_address.as_deref() == Some(s)).unwrap();
    let condemned = by_sender("seller99@bulk-pharma.example");
    assert_eq!(condemned.status, "deleted_statistical", "{messages:#?}");
    let reason = condemned.reason.as_deref().unwrap();
    assert!(reason.starts_with("statistics (campaign): spam with P = 0.99999"), "{reason}");
    assert!(reason.contains("domain bulk-pharma.example +") && reason.contains("(20 spam, 0 not)"), "{reason}");
    assert_eq!(by_sender("friend@friends.example").status, "held");
    // The copy held before the votes is judged again, by the keys it was stored with,
    // before alice's summary.
    assert_eq!(by_sender("early@bulk-pharma.example").status, "held");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("1 held messages"), "{out}");
    let messages = env.messages(&alice).await;
    let early = messages.iter().find(|m| m.from_address.as_deref() == Some("early@bulk-pharma.example")).unwrap();
    assert_eq!(early.status, "deleted_statistical", "{early:?}");

    // The operator asks why: every key's term and the verdict, without side effects.
    let report = env.explain(&alice, "pills.eml", &new_copy);
    assert_eq!(report["verdict"], "deleted_statistical", "{report:#}");
    let statistics = &report["statistics"];
    assert_eq!(statistics["deleted_by"], "campaign", "{report:#}");
    let term = |kind: &str| statistics["keys"].as_array().unwrap().iter().find(|t| t["kind"] == kind).unwrap().clone();
    assert_eq!(term("campaign")["spam_units"], 5, "{report:#}");
    assert_eq!(term("domain")["spam_units"], 20, "{report:#}");
    assert_eq!(term("sender")["logit"], 0.0, "a new address: nobody voted on it");
    assert!(report["fingerprint"]["campaign"].as_i64().is_some(), "{report:#}");
    // Alice never answered; the statistics deleted two of her messages, and her prior
    // counts them: (2 deleted + 10 pseudo-votes at the population's even share) / 12.
    let prior = statistics["prior_logit"].as_f64().unwrap();
    assert!((prior - (7.0f64 / 5.0).ln()).abs() < 1e-9, "{report:#}");
    assert_eq!(env.messages(&alice).await.len(), messages.len(), "explain stored nothing");

    // The operator's tables.
    let domains = env.ok(&["stats", "domains"]);
    let line = domains.lines().find(|l| l.starts_with("bulk-pharma.example")).expect("the domain is listed");
    assert!(line.contains("0.99") && line.ends_with("    20      0"), "{domains}");
    // Every kind of key has its table: the campaign's link was voted on once per campaign.
    let urls = env.ok(&["stats", "keys", "--kind", "url"]);
    let line = urls.lines().find(|l| l.starts_with("pills-direct.example")).expect("the link is listed");
    assert!(line.ends_with("     1      0"), "{urls}");
    let campaigns = env.ok(&["stats", "keys", "--kind", "campaign"]);
    assert!(campaigns.lines().nth(1).is_some_and(|l| l.ends_with("     5      0")), "{campaigns}");
    assert!(env.fails(&["stats", "keys", "--kind", "colour"]).contains("unknown evidence key kind"));
    let trust = env.ok(&["stats", "trust"]);
    assert!(trust.lines().any(|l| l.starts_with(&probes[0].email) && l.contains("probe")), "{trust}");
    // The reputation tables counted the same mail as it arrived: 22 messages from the
    // domain to six recipients, 20 of them probes' copies (blocked by seed 001's rule);
    // the correspondent's domain has too few messages to rate.
    let table = env.ok(&["stats", "reputation", "--kind", "sender_domain"]);
    let row = |domain: &str| {
        let line = table.lines().find(|l| l.starts_with(domain)).unwrap_or_else(|| panic!("{domain}: {table}"));
        line.split_whitespace().skip(1).take(8).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(row("bulk-pharma.example"), ["blocked", "22.0", "6.0", "0.0", "0.0", "20.0", "0.0", "0.0"], "{table}");
    assert_eq!(row("friends.example")[..3], ["new", "1.0", "1.0"], "{table}");
    let urls = env.ok(&["stats", "reputation", "--kind", "url_domain"]);
    assert!(
        urls.lines().nth(1).is_some_and(|l| l.starts_with("pills-direct.example") && l.contains("blocked")),
        "{urls}"
    );
}

/// Campaigns rotate their sender domains (a fresh throwaway domain per copy), so the sender
/// and its domain say nothing of the next copy; what many campaigns share, their link, does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_rotating_domains_is_deleted_by_the_link_other_campaigns_share() {
    let stack = MailStack::get();
    let env = Env::new();
    let probes = env.probes(5);
    let alice = env.subscriber("alice");
    // Fifteen other campaigns (different texts) link to the same shop, each reported by
    // one probe; this one by all five; every copy from a domain of its own.
    let target = campaign_text(99, "http://cheap-meds.example/buy?id=4");
    for (i, p) in probes.iter().enumerate() {
        for c in (0..15).filter(|c| c % probes.len() == i) {
            let text = campaign_text(c, &format!("http://www.cheap-meds.example/c{c}?r=1"));
            stack.maildir_drop(p, &copy(&format!("offer@r{c}-{i}.example"), "Deal", &text, "p"));
        }
        stack.maildir_drop(p, &copy(&format!("offer@t-{i}.example"), "Deal", &target, "p"));
        env.ok(&["poll", &p.email]);
    }
    // Alice's copy from yet another domain: the campaign (at most 1 − 10⁻⁴ alone) and its
    // link, which fifteen other campaigns were reported with.
    stack.maildir_drop(&alice, &copy("offer@fresh-1.example", "Deal", &target, "alice"));
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    assert_eq!(messages[0].status, "deleted_statistical", "{messages:#?}");
    let reason = messages[0].reason.as_deref().unwrap();
    assert!(reason.contains("url cheap-meds.example +") && reason.contains("(15 spam, 0 not)"), "{reason}");
    assert!(reason.contains("campaign ") && !reason.contains("domain fresh-1.example"), "{reason}");
    // The same campaign linking to a shop nobody reported: the campaign alone, held.
    let elsewhere = copy("offer@fresh-2.example", "Deal", &target.replace("cheap-meds", "unknown-shop"), "alice");
    let report = env.explain(&alice, "elsewhere.eml", &elsewhere);
    assert_eq!(report["verdict"], "held", "{report:#}");
    let keys = report["statistics"]["keys"].as_array().unwrap();
    assert!(keys.iter().any(|t| t["kind"] == "campaign" && t["spam_units"] == 5), "{report:#}");
}

/// A campaign's text: thirty words of a small vocabulary chosen by `seed` (different seeds
/// share no run of four words), then its link.
fn campaign_text(seed: usize, link: &str) -> String {
    const WORDS: [&str; 40] = [
        "amazing",
        "offer",
        "today",
        "only",
        "discount",
        "pharmacy",
        "quality",
        "delivery",
        "secure",
        "order",
        "limited",
        "stock",
        "genuine",
        "brand",
        "savings",
        "worldwide",
        "express",
        "private",
        "trusted",
        "service",
        "customers",
        "choose",
        "best",
        "prices",
        "online",
        "support",
        "members",
        "exclusive",
        "package",
        "bonus",
        "free",
        "shipping",
        "guaranteed",
        "results",
        "natural",
        "formula",
        "doctors",
        "approved",
        "fast",
        "easy",
    ];
    let mut state = seed as u64 * 2_654_435_761 + 12_345;
    let words: Vec<&str> = (0..30)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            WORDS[(state >> 33) as usize % WORDS.len()]
        })
        .collect();
    format!("{} {link}", words.join(" "))
}

/// Gives a subscriber a history of votes on senders nobody else hears from (so their trust
/// status counts, and their share of spam sets their prior).
async fn history(db: &Sqlite, subscriber: &SubscriberStatus, spam: usize, approvals: usize) {
    let now = Timestamp::now();
    let raws: Vec<Vec<u8>> = (0..spam + approvals).map(|i| format!("history {i} {}", unique()).into_bytes()).collect();
    let senders: Vec<EmailAddress> =
        (0..raws.len()).map(|i| EmailAddress::parse(&format!("h{i}@history-{}.example", unique())).unwrap()).collect();
    let uidls: Vec<String> = (0..raws.len()).map(|_| unique()).collect();
    let items: Vec<PollItem> = raws
        .iter()
        .zip(&senders)
        .zip(&uidls)
        .map(|((raw, from), uidl)| PollItem::Quarantine {
            uidl,
            status: "held",
            raw,
            hash: MessageHash::of(raw),
            from: Some(from),
            from_name: None,
            subject: None,
            checked: None,
            campaign: None,
            stat_keys: None,
            confirm_to: None,
            reputation: &[],
            imap_folder: None,
        })
        .collect();
    let ids = db.commit_poll(subscriber.mailbox_id, subscriber.subscriber_id, &items, now).await.unwrap();
    for (i, (id, from)) in ids.into_iter().zip(&senders).enumerate() {
        let vote = if i < spam { Vote::Spam } else { Vote::Approve };
        db.record_vote(subscriber.subscriber_id, id.unwrap(), from, vote, now).await.unwrap();
    }
}

/// One copy of a bulk message: the same text with the recipient's name and a tracking
/// token, as campaigns personalise them.
fn copy(from: &str, subject: &str, text: &str, name: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {name}@quorum.test\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\n\
         Dear {name},\r\n{text}\r\nYour reference: {}\r\n",
        unique(),
        unique()
    )
    .into_bytes()
}

const CAMPAIGN: &str = "Our online pharmacy ships discreetly to your door with no prescription needed. This \
    week only every order of the popular medicines is half price and delivery is free worldwide. Visit \
    http://pills-direct.example/order?src=mail to see the full catalogue before the stock runs out.";
const NEWSLETTER: &str = "This month in the gardening club newsletter: planting bulbs before the first frost, \
    the results of the autumn vegetable show, a recipe for pumpkin soup from our members, and the dates of \
    the winter lectures in the village hall. Read more at http://garden-club.example/news";
const MAILING: &str = "Exclusive investment opportunity for a limited number of members: our fund returned \
    forty percent last year and the next round closes on Friday. Reply today to reserve your allocation \
    and receive the brochure by return mail with all the details of the offer.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_newsletter_is_spared_and_a_blanked_mailing_ranks_below_it() {
    let stack = MailStack::get();
    let env = Env::new();
    let readers: Vec<TestUser> = (0..6).map(|i| env.subscriber(&format!("reader{i}"))).collect();
    let blankers: Vec<TestUser> = (0..5).map(|i| env.subscriber(&format!("blanker{i}"))).collect();
    let alice = env.subscriber("alice");
    let db = Sqlite::connect(&env.url).await.unwrap();
    let status = |u: &TestUser| {
        let db = &db;
        let email = EmailAddress::parse(&u.email).unwrap();
        async move { db.subscriber_by_email(&email).await.unwrap().unwrap() }
    };
    // Readers and blankers have voted before (their votes count).
    for u in readers.iter().chain(&blankers) {
        history(&db, &status(u).await, 4, 2).await;
    }
    // The gardening club's newsletter: six readers approved its first issue (an `A`: a vote
    // and the sender approved), so the next issue stays in their Inbox, approving its
    // campaign; five other recipients leave it blank. An unwanted mailing is left blank by
    // the same five and approved by nobody.
    let news = EmailAddress::parse("news@garden-club.example").unwrap();
    for (i, r) in readers.iter().enumerate() {
        let s = status(r).await;
        stack.maildir_drop(r, &copy(news.as_str(), "Club news", NEWSLETTER, &format!("r{i}")));
        env.ok(&["poll", &r.email]);
        let messages = env.messages(r).await;
        let first = messages.iter().find(|m| m.subject.as_deref() == Some("Club news")).expect("the first issue");
        assert_eq!(first.status, "held");
        db.record_vote(s.subscriber_id, first.id, &news, Vote::Approve, Timestamp::now()).await.unwrap();
        db.approve_sender(s.subscriber_id, &news, Timestamp::now()).await.unwrap();
        stack.maildir_drop(r, &copy(news.as_str(), "Club news", NEWSLETTER, &format!("r{i}")));
        let out = env.ok(&["poll", &r.email]);
        assert!(out.contains("1 left in the Inbox"), "{out}");
    }
    for (i, b) in blankers.iter().enumerate() {
        stack.maildir_drop(b, &copy(news.as_str(), "Club news", NEWSLETTER, &format!("b{i}")));
        stack.maildir_drop(b, &copy("offers@fund-mailer.example", "Opportunity", MAILING, &format!("b{i}")));
        env.ok(&["poll", &b.email]);
        let s = status(b).await;
        for m in env.messages(b).await.into_iter().filter(|m| m.status == "held") {
            let from = EmailAddress::parse(m.from_address.as_deref().unwrap()).unwrap();
            db.record_vote(s.subscriber_id, m.id, &from, Vote::Spam, Timestamp::now()).await.unwrap();
        }
    }

    // Alice's copies. Five users' blanks are one judgement of one mailing, not certainty:
    // both are held, and the summary's ranking puts the mailing below the newsletter.
    let mailing = copy("offers@fund-mailer.example", "Opportunity", MAILING, "alice");
    let newsletter = copy(news.as_str(), "Club news", NEWSLETTER, "alice");
    stack.maildir_drop(&alice, &newsletter);
    stack.maildir_drop(&alice, &mailing);
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    assert!(messages.iter().all(|m| m.status == "held"), "{messages:#?}");
    let judge = |name: &str, raw: &[u8]| env.explain(&alice, name, raw)["statistics"].clone();
    let (news, offer) = (judge("news.eml", &newsletter), judge("offer.eml", &mailing));
    let campaign =
        |s: &serde_json::Value| s["keys"].as_array().unwrap().iter().find(|t| t["kind"] == "campaign").cloned();
    let offer_campaign = campaign(&offer).expect("the mailing's campaign is a key");
    assert_eq!(offer_campaign["spam_units"], 5, "{offer:#}");
    let news_campaign = campaign(&news).expect("the newsletter's campaign is a key");
    assert!(news_campaign["logit"].as_f64().unwrap() < 0.0, "approved more than blanked: {news:#}");
    let (p_news, p_offer) = (news["not_spam"].as_f64().unwrap(), offer["not_spam"].as_f64().unwrap());
    assert!(p_news > 0.5 && p_offer < 0.1, "not spam: newsletter {p_news}, mailing {p_offer}: {news:#} {offer:#}");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("2 held messages"), "{out}");
}

/// A password reset: short by nature, the same text (its token masked) for everyone who
/// asks one, and left blank by some who did not ask.
fn reset(name: &str) -> Vec<u8> {
    format!(
        "From: noreply@accounts.service.example\r\nTo: {name}@quorum.test\r\nSubject: Reset your password\r\n\
         Message-ID: <{}@service.example>\r\n\r\nReset your password here: https://accounts.service.example/reset?t={}\r\n",
        unique(),
        unique()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_notice_many_receive_is_not_deleted_by_its_hash() {
    let stack = MailStack::get();
    let env = Env::new();
    let probes = env.probes(5);
    let users: Vec<TestUser> = (0..6).map(|i| env.subscriber(&format!("user{i}"))).collect();
    let alice = env.subscriber("alice");
    let db = Sqlite::connect(&env.url).await.unwrap();
    // Short spam the probes report: its own short-text key, link and domain.
    for (i, p) in probes.iter().enumerate() {
        let spam = format!(
            "From: deal{i}@pills{i}.example\r\nSubject: meds\r\nMessage-ID: <{}@x>\r\n\r\n\
             Cheap meds tonight only at http://pills-direct.example/?r={}\r\n",
            unique(),
            unique()
        );
        stack.maildir_drop(p, spam.as_bytes());
        env.ok(&["poll", &p.email]);
    }
    // Six users got a reset: four did not ask for it and left it blank, two approved it.
    for (i, u) in users.iter().enumerate() {
        let s = db.subscriber_by_email(&EmailAddress::parse(&u.email).unwrap()).await.unwrap().unwrap();
        history(&db, &s, 4, 2).await;
        stack.maildir_drop(u, &reset(&format!("u{i}")));
        env.ok(&["poll", &u.email]);
        let messages = env.messages(u).await;
        let m = messages.iter().find(|m| m.subject.as_deref() == Some("Reset your password")).unwrap();
        assert_eq!(m.status, "held");
        let from = EmailAddress::parse(m.from_address.as_deref().unwrap()).unwrap();
        let vote = if i < 4 { Vote::Spam } else { Vote::Approve };
        db.record_vote(s.subscriber_id, m.id, &from, vote, Timestamp::now()).await.unwrap();
    }
    // Alice's reset shares its hash with the four blanks: held, not deleted, on arrival
    // and before her summary. Its hash is not the spam's (the link's domain is in it).
    let raw = reset("alice");
    stack.maildir_drop(&alice, &raw);
    env.ok(&["poll", &alice.email]);
    env.ok(&["summary", "send", &alice.email]);
    let messages = env.messages(&alice).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status, "held", "{messages:#?}");
    let report = env.explain(&alice, "reset.eml", &raw);
    let keys = report["statistics"]["keys"].as_array().unwrap().clone();
    let short = keys.iter().find(|t| t["kind"] == "short_text").expect("a short linked text has a hash key");
    assert_eq!((short["spam_units"].as_u64(), short["ham_units"].as_u64()), (Some(4), Some(2)), "{report:#}");
    assert_eq!(report["statistics"]["delete"], false, "{report:#}");
}

/// A domain where spammers and correspondents both have addresses (a small ISP, a
/// free-mail host not in the provider table): the senders seen so far say little about the
/// next one, so mail from a new address there is held, on arrival and at the re-score
/// before the summary, however sure the votes are about the senders they judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_address_at_a_mixed_domain_is_held_on_arrival_and_at_the_rescore() {
    let stack = MailStack::get();
    let env = Env::new();
    let probes = env.probes(5);
    let friends: Vec<TestUser> = (0..3).map(|i| env.subscriber(&format!("friend{i}"))).collect();
    let alice = env.subscriber("alice");
    let db = Sqlite::connect(&env.url).await.unwrap();
    // Ten spam senders at the domain, two per probe, each with a text of its own (no shared
    // campaign, link or short text: only the domain links them).
    for (i, p) in probes.iter().enumerate() {
        for j in 0..2 {
            let k = 2 * i + j;
            stack.maildir_drop(p, &copy(&format!("seller{k}@mixed-isp.example"), "Offer", &campaign_text(k, ""), "p"));
        }
        assert!(env.ok(&["poll", &p.email]).contains("2 quarantined"));
    }
    // Three correspondents there, each approved (an `A`) by a user whose votes count.
    for (i, f) in friends.iter().enumerate() {
        let s = db.subscriber_by_email(&EmailAddress::parse(&f.email).unwrap()).await.unwrap().unwrap();
        history(&db, &s, 4, 2).await;
        let pal = EmailAddress::parse(&format!("pal{i}@mixed-isp.example")).unwrap();
        stack.maildir_drop(f, &copy(pal.as_str(), "Hiking on Sunday", &campaign_text(100 + i, ""), "f"));
        env.ok(&["poll", &f.email]);
        let messages = env.messages(f).await;
        let m = messages.iter().find(|m| m.subject.as_deref() == Some("Hiking on Sunday")).unwrap();
        assert_eq!(m.status, "held");
        db.record_vote(s.subscriber_id, m.id, &pal, Vote::Approve, Timestamp::now()).await.unwrap();
        db.approve_sender(s.subscriber_id, &pal, Timestamp::now()).await.unwrap();
    }
    // A new address at the domain writes to alice: held on arrival, and still held after
    // the re-score before her summary.
    let raw = copy("newcomer@mixed-isp.example", "Hello", &campaign_text(200, ""), "alice");
    stack.maildir_drop(&alice, &raw);
    env.ok(&["poll", &alice.email]);
    assert_eq!(env.messages(&alice).await[0].status, "held");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("1 held messages"), "{out}");
    let messages = env.messages(&alice).await;
    assert_eq!((messages.len(), messages[0].status.as_str()), (1, "held"), "{messages:#?}");
    // The domain's term counts ten spam senders and three approved ones: it leans to spam,
    // far from certainty about the next sender.
    let report = env.explain(&alice, "newcomer.eml", &raw);
    let statistics = &report["statistics"];
    let keys = statistics["keys"].as_array().unwrap();
    let domain = keys.iter().find(|t| t["kind"] == "domain").expect("the domain is a key");
    assert_eq!((domain["spam_units"].as_u64(), domain["ham_units"].as_u64()), (Some(10), Some(3)), "{report:#}");
    let logit = domain["logit"].as_f64().unwrap();
    assert!(logit > 0.0 && logit < 5.0, "{report:#}");
    assert_eq!(statistics["delete"], false, "{report:#}");
    assert_eq!(report["verdict"], "held", "{report:#}");
}
