//! The collaborative statistics in the running service: a spam probe's mail becomes spam
//! votes on arrival, the votes condemn a domain for another subscriber (deleted on arrival,
//! or before their summary), approved correspondents are untouched, and `quorum stats`
//! shows the tables. Campaign fingerprints: votes on some copies delete the others, while
//! a newsletter its readers approved is kept for everyone.

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

    fn ok(&self, args: &[&str]) -> String {
        let mut cmd = quorum_service(&self.url, &self.key, None);
        cmd.args(args).env("QUORUM_CONFIRMATIONS__ENABLED", "false");
        let (ok, out) = run(cmd);
        assert!(ok, "quorum {args:?}: {out}");
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
async fn probe_votes_condemn_a_domain_for_everyone_else() {
    let stack = MailStack::get();
    let env = Env::new();
    let probe = env.subscriber("probe");
    let alice = env.subscriber("alice");
    env.ok(&["subscriber", "probe", &probe.email, "on"]);
    // Alice's message from the campaign's domain arrives before anyone voted: held.
    stack.maildir_drop(&alice, &mail("early@bulk-pharma.example", "early copy"));
    env.ok(&["poll", &alice.email]);
    // The probe receives the campaign from 15 sender addresses: 15 spam votes on arrival.
    for i in 0..15 {
        stack.maildir_drop(&probe, &mail(&format!("seller{i}@bulk-pharma.example"), "cheap pills"));
    }
    assert!(env.ok(&["poll", &probe.email]).contains("15 quarantined"));
    assert!(env.messages(&probe).await.iter().all(|m| m.status == "probe_spam"));

    // A new copy for alice is deleted on arrival; a correspondent's is not.
    stack.maildir_drop(&alice, &mail("seller99@bulk-pharma.example", "cheap pills"));
    stack.maildir_drop(&alice, &mail("friend@friends.example", "lunch"));
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    let by_subject = |s: &str| messages.iter().filter(|m| m.subject.as_deref() == Some(s)).collect::<Vec<_>>();
    let condemned = by_subject("cheap pills");
    assert_eq!(condemned.len(), 1);
    assert_eq!(condemned[0].status, "deleted_statistical");
    assert!(
        condemned[0].reason.as_deref().unwrap().starts_with("statistics (domain): bulk-pharma.example is a spammer"),
        "{condemned:?}"
    );
    assert_eq!(by_subject("lunch")[0].status, "held");
    // The copy held before the votes is judged again before alice's summary.
    assert_eq!(by_subject("early copy")[0].status, "held");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("1 held messages"), "{out}");
    let messages = env.messages(&alice).await;
    let early = messages.iter().find(|m| m.subject.as_deref() == Some("early copy")).unwrap();
    assert_eq!(early.status, "deleted_statistical");

    // The operator's tables.
    let domains = env.ok(&["stats", "domains"]);
    let line = domains.lines().find(|l| l.starts_with("bulk-pharma.example")).expect("the domain is listed");
    assert!(line.contains("0.99999"), "{domains}");
    let trust = env.ok(&["stats", "trust"]);
    assert!(trust.lines().any(|l| l.starts_with(&probe.email) && l.contains("probe")), "{trust}");
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
async fn campaign_votes_reach_every_copy_and_spare_an_approved_newsletter() {
    let stack = MailStack::get();
    let env = Env::new();
    let probes: Vec<TestUser> = (0..5).map(|i| env.subscriber(&format!("probe{i}"))).collect();
    let readers: Vec<TestUser> = (0..6).map(|i| env.subscriber(&format!("reader{i}"))).collect();
    let blankers: Vec<TestUser> = (0..5).map(|i| env.subscriber(&format!("blanker{i}"))).collect();
    let alice = env.subscriber("alice");
    for p in &probes {
        env.ok(&["subscriber", "probe", &p.email, "on"]);
    }
    let db = Sqlite::connect(&env.url).await.unwrap();
    let status = |u: &TestUser| {
        let db = &db;
        let email = EmailAddress::parse(&u.email).unwrap();
        async move { db.subscriber_by_email(&email).await.unwrap().unwrap() }
    };
    // Readers and blankers have voted before (their votes count); most of alice's mail is
    // spam (prior 0.91: each spam witness is worth logit 3.4, five of them 16.8, more than
    // logit(1 − 1e-6) = 13.8).
    for u in readers.iter().chain(&blankers) {
        history(&db, &status(u).await, 4, 2).await;
    }
    history(&db, &status(&alice).await, 9, 0).await;
    // Alice's first copy of the campaign arrives before anyone voted on it: held.
    stack.maildir_drop(&alice, &copy("promo@first-shop.example", "Early offer", CAMPAIGN, "alice"));
    env.ok(&["poll", &alice.email]);
    let held = env.messages(&alice).await;
    assert_eq!(held.iter().find(|m| m.subject.as_deref() == Some("Early offer")).unwrap().status, "held");

    // A campaign from a new sender at a new domain for each copy: five probes receive it.
    for (i, p) in probes.iter().enumerate() {
        stack.maildir_drop(p, &copy(&format!("promo{i}@shop{i}.example"), "Half price", CAMPAIGN, &format!("p{i}")));
        env.ok(&["poll", &p.email]);
    }
    // The gardening club's newsletter: six readers approved it (their copies stay in the
    // Inbox, approving its fingerprint); five other recipients leave it blank. An unwanted
    // mailing is left blank by the same five and approved by nobody.
    let news = EmailAddress::parse("news@garden-club.example").unwrap();
    for (i, r) in readers.iter().enumerate() {
        db.approve_sender(status(r).await.subscriber_id, &news, Timestamp::now()).await.unwrap();
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

    // Alice's copies: the campaign from yet another new sender, the newsletter, the mailing.
    let campaign_copy = copy("promo99@shop99.example", "Half price", CAMPAIGN, "alice");
    stack.maildir_drop(&alice, &campaign_copy);
    stack.maildir_drop(&alice, &copy(news.as_str(), "Club news", NEWSLETTER, "alice"));
    stack.maildir_drop(&alice, &copy("offers@fund-mailer.example", "Opportunity", MAILING, "alice"));
    env.ok(&["poll", &alice.email]);
    let messages = env.messages(&alice).await;
    let by_subject = |s: &str| messages.iter().find(|m| m.subject.as_deref() == Some(s)).unwrap();
    let pills = by_subject("Half price");
    assert_eq!(pills.status, "deleted_statistical", "{messages:#?}");
    let reason = pills.reason.as_deref().unwrap();
    assert!(reason.starts_with("statistics (fingerprint): campaign #"), "{reason}");
    assert!(reason.contains("(5 recipients said spam, 0 not)"), "{reason}");
    assert_eq!(by_subject("Opportunity").status, "deleted_statistical", "{messages:#?}");
    assert_eq!(by_subject("Club news").status, "held", "the approved newsletter stays: {messages:#?}");
    // The copy held before the votes goes when the campaign is judged again before her
    // summary, which lists the newsletter and her nine history messages.
    assert_eq!(by_subject("Early offer").status, "held");
    let out = env.ok(&["summary", "send", &alice.email]);
    assert!(out.contains("10 held messages"), "{out}");
    let messages = env.messages(&alice).await;
    let early = messages.iter().find(|m| m.subject.as_deref() == Some("Early offer")).unwrap();
    assert_eq!(early.status, "deleted_statistical");
    assert!(early.reason.as_deref().unwrap().starts_with("statistics (fingerprint)"), "{early:?}");

    // The operator asks why: the campaign's evidence and the verdict, without side effects.
    let file = env.dir.path().join("pills.eml");
    std::fs::write(&file, &campaign_copy).unwrap();
    let out = env.ok(&["explain", "--json", "--subscriber", &alice.email, file.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["verdict"], "deleted_statistical", "{report:#}");
    assert_eq!(report["statistics"]["deleted_by"], "fingerprint", "{report:#}");
    assert_eq!(report["statistics"]["campaign"]["spam_witnesses"], 5, "{report:#}");
    assert_eq!(report["statistics"]["domain"]["spam_witnesses"], 0, "{report:#}");
    assert!(report["fingerprint"]["campaign"].as_i64().is_some(), "{report:#}");
    assert_eq!(env.messages(&alice).await.len(), messages.len(), "explain stored nothing");
}
