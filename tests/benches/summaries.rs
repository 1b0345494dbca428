//! Summary benchmark: compose and hand to Postfix 1,000 summaries of 10 held messages each
//! (sender names and subjects from the corpus), one SMTP transaction per summary, as the
//! scheduler does.
//!
//! Run: `tests/setup.sh && cargo bench -p quorum-tests --bench summaries` (needs the team
//! kit's corpus beside the repository). Options: `-- --subscribers N --held M`.

use std::time::Instant;

use quorum_config::{Settings, SmtpSettings};
use quorum_domain::{InspectedMessage, Keys, Security, Timestamp};
use quorum_forgery::Checker;
use quorum_mailer::Mailer;
use quorum_scheduler::SummarySender;
use quorum_statistics::Statistics;
use quorum_storage::{Database, PollItem, Sqlite};
use quorum_tests::{
    MailStack, TestUser, bench_arg, corpus_dir, corpus_message, dns::dns_settings, dovecot_subscriber, fresh_sqlite,
};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (subscribers, held) = (bench_arg("--subscribers", 1000), bench_arg("--held", 10));
    let stack = MailStack::get();
    let dir = corpus_dir().expect("the corpus is not beside the repository (../shared/corpus)");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("spam")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().take(held * 5).map(|p| corpus_message(p)).collect();

    let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
    let (_dir, url) = fresh_sqlite();
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let now = Timestamp::now();
    let setup = Instant::now();
    for i in 0..subscribers {
        // Unknown to Dovecot: Postfix accepts the summary (what is measured) and its
        // delivery bounces afterwards.
        let user = TestUser { email: format!("bench-summary-{i}@{}", stack.domain), password: "unused".into() };
        let new = dovecot_subscriber(&user, &keys);
        let ids = db.add_subscriber(&new, now).await.unwrap();
        let infos: Vec<(String, &Vec<u8>, InspectedMessage)> = (0..held)
            .map(|k| {
                let raw = &corpus[(i + k) % corpus.len()];
                (format!("u{k}"), raw, InspectedMessage::parse(raw))
            })
            .collect();
        let items: Vec<PollItem> = infos
            .iter()
            .map(|(uidl, raw, info)| PollItem::Quarantine {
                uidl,
                status: "held",
                raw,
                hash: info.hash,
                from: info.from.as_ref(),
                from_name: info.from_name.as_deref(),
                subject: info.subject.as_deref(),
                checked: None,
                campaign: None,
                stat_keys: None,
                confirm_to: None,
                reputation: &[],
                imap_folder: None,
            })
            .collect();
        db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, now).await.unwrap();
    }
    println!(
        "set up {subscribers} subscribers with {held} held messages each in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let mut settings = Settings::load(None).unwrap().summary;
    settings.reply_domain = stack.domain.clone();
    let smtp = SmtpSettings {
        host: "127.0.0.1".into(),
        port: stack.smtp_port,
        security: Security::Plain,
        username: None,
        password: None,
        envelope_from: format!("quorum-bench@{}", stack.domain),
        timeout_secs: 30,
        tls_ca_files: vec![],
    };
    // No held message has incomplete checks here; the checker is never asked.
    let checker = Checker::new(&dns_settings("127.0.0.1:9".parse().unwrap(), 200, 200)).unwrap();
    // The statistics judge every held message again before each summary: part of the cost.
    let statistics = std::sync::Arc::new(Statistics::new(&Settings::load(None).unwrap().statistics));
    let sender =
        SummarySender::new(db.clone(), keys.clone(), Mailer::new(&smtp).unwrap(), settings, checker, statistics);
    let all = db.list_subscribers().await.unwrap();
    let start = Instant::now();
    let mut sent = 0;
    for s in &all {
        if sender.send(s, now).await.unwrap().is_some() {
            sent += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(sent, subscribers);
    println!(
        "{sent} summaries of {held} lines composed, recorded and accepted by Postfix in {elapsed:.2} s = {:.0} summaries/s ({:.2} ms each)",
        sent as f64 / elapsed,
        elapsed * 1000.0 / sent as f64
    );
}
