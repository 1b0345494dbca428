//! The storage layer against both real databases: every behaviour is checked on SQLite and
//! on PostgreSQL, each test on a fresh database.

use std::time::Duration;

use quorum_domain::{
    AuthMethod, EmailAddress, MessageHash, Protocol, Provider, Security, Timestamp, schedule::SummarySchedule,
};
use quorum_storage::{
    CheckRecord, CorrelationRow, Database, KeyRow, MailboxSettings, NewCampaign, NewSubscriber, PollItem, PollOutcome,
    PollStatus, Principal, ReleaseSelection, Sqlite, StatisticsUpdate, StorageError, TrustRow, UidlDisposition, Vote,
    WorkerTotals,
};
use quorum_tests::fresh_sqlite;

fn new_subscriber(email: &str) -> NewSubscriber {
    NewSubscriber {
        email: EmailAddress::parse(email).unwrap(),
        approved_days: 90,
        schedule: SummarySchedule::parse("07:00,19:00", "Europe/Berlin").unwrap(),
        mailbox: MailboxSettings {
            protocol: quorum_domain::Protocol::Pop3,
            host: "pop.example.org".into(),
            port: 995,
            security: Security::Tls,
            auth: AuthMethod::Auto,
            username: email.into(),
            password_enc: vec![1, 2, 3],
            trusted_domains: vec!["isp.example".into()],
        },
    }
}

fn outcome(now: Timestamp, next: Timestamp) -> PollOutcome {
    PollOutcome { status: PollStatus::Ok, error: None, polled_at: now, next_poll_at: next, quarantined: 2, kept: 1 }
}

/// A held message with this UIDL, bytes and sender, as the worker commits it.
fn held<'a>(uidl: &'a str, raw: &'a [u8], from: Option<&'a EmailAddress>) -> PollItem<'a> {
    PollItem::Quarantine {
        uidl,
        status: "held",
        raw,
        hash: MessageHash::of(raw),
        from,
        from_name: None,
        subject: None,
        checked: None,
        campaign: None,
        stat_keys: None,
        confirm_to: None,
        reputation: &[],
        imap_folder: None,
    }
}

/// `item` with this status, counted under these reputation keys.
fn counted<'a>(mut item: PollItem<'a>, status: &'a str, keys: &'a [quorum_reputation::Key]) -> PollItem<'a> {
    if let PollItem::Quarantine { status: s, reputation, .. } = &mut item {
        (*s, *reputation) = (status, keys);
    }
    item
}

const T0: Timestamp = Timestamp(1_700_000_000);

async fn subscribers_and_leases(db: impl Database) {
    db.migrate().await.unwrap();
    db.migrate().await.expect("migrations are idempotent");
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    assert!(matches!(db.add_subscriber(&new_subscriber("A@example.org"), T0).await, Err(StorageError::Duplicate(_))));
    let listed: Vec<String> = db.list_subscribers().await.unwrap().into_iter().map(|s| s.email).collect();
    assert_eq!(listed, ["a@example.org", "b@example.org"]);

    // Both are due; one worker leases both, another gets nothing while the leases live.
    let until = T0.plus(Duration::from_secs(600));
    let leased = db.lease_due_mailboxes("w1", T0, until, 10).await.unwrap();
    assert_eq!(leased.len(), 2);
    assert_eq!(leased[0].settings.security, Security::Tls);
    assert_eq!(leased[0].settings.password_enc, vec![1, 2, 3]);
    assert!(db.lease_due_mailboxes("w2", T0, until, 10).await.unwrap().is_empty());
    assert!(db.lease_mailbox(a.mailbox_id, "w2", T0, until, false).await.unwrap().is_none());
    let taken = db.lease_mailbox(a.mailbox_id, "w2", T0, until, true).await.unwrap().expect("take-over");
    assert_eq!(taken.email.as_str(), "a@example.org");
    db.finish_poll(a.mailbox_id, "w2", &outcome(T0, T0)).await.unwrap();
    assert!(db.lease_mailbox(a.mailbox_id, "w1", T0, until, false).await.unwrap().is_some());
    // Not even the holder gets them twice; restarted, it releases them first.
    assert!(db.lease_due_mailboxes("w1", T0, until, 10).await.unwrap().is_empty());
    assert_eq!(db.release_leases("w1").await.unwrap(), 2);
    assert_eq!(db.lease_due_mailboxes("w1", T0, until, 10).await.unwrap().len(), 2);

    // Finishing a poll releases the lease and schedules the next one.
    assert!(db.finish_poll(a.mailbox_id, "w1", &outcome(T0, T0.plus(Duration::from_secs(180)))).await.unwrap());
    assert!(db.lease_due_mailboxes("w2", T0, until, 10).await.unwrap().is_empty(), "a is not due yet, b leased");
    let later = T0.plus(Duration::from_secs(181));
    let leased = db.lease_due_mailboxes("w2", later, later.plus(Duration::from_secs(600)), 10).await.unwrap();
    assert_eq!(leased.iter().map(|m| m.mailbox_id).collect::<Vec<_>>(), [a.mailbox_id]);
    // An expired lease can be taken over.
    let expired = until.plus(Duration::from_secs(1));
    let taken = db.lease_due_mailboxes("w3", expired, expired.plus(Duration::from_secs(600)), 10).await.unwrap();
    assert!(taken.iter().any(|m| m.mailbox_id == b.mailbox_id));
    // A stale worker cannot overwrite the new owner's state.
    assert!(!db.finish_poll(b.mailbox_id, "w1", &outcome(T0, T0)).await.unwrap());
    let status = db.subscriber_by_email(&EmailAddress::parse("b@example.org").unwrap()).await.unwrap().unwrap();
    assert_eq!(status.polls, 0);

    let status = db.subscriber_by_email(&EmailAddress::parse("a@example.org").unwrap()).await.unwrap().unwrap();
    assert_eq!((status.polls, status.quarantined_count, status.kept_count), (2, 4, 2));
    assert_eq!(status.last_status.as_deref(), Some("ok"));
    assert_eq!(status.last_success_at, Some(T0.0));

    // Disabled subscribers are not polled.
    db.set_subscriber_enabled(b.subscriber_id, false).await.unwrap();
    let far = T0.plus(Duration::from_secs(100_000));
    let leased = db.lease_due_mailboxes("w4", far, far.plus(Duration::from_secs(60)), 10).await.unwrap();
    assert_eq!(leased.iter().map(|m| m.mailbox_id).collect::<Vec<_>>(), [a.mailbox_id]);
    assert!(matches!(db.set_subscriber_enabled(999, false).await, Err(StorageError::NotFound(_))));
    assert!(db.lease_mailbox(b.mailbox_id, "w5", far, far, true).await.unwrap().is_none(), "disabled");

    // An error outcome keeps the time of the last success.
    let error = PollOutcome { status: PollStatus::Error, error: Some("login failed".into()), ..outcome(far, far) };
    db.lease_mailbox(a.mailbox_id, "w6", far, far, true).await.unwrap().unwrap();
    db.finish_poll(a.mailbox_id, "w6", &error).await.unwrap();
    let status = db.subscriber_by_email(&EmailAddress::parse("a@example.org").unwrap()).await.unwrap().unwrap();
    assert_eq!((status.last_status.as_deref(), status.last_success_at), (Some("error"), Some(T0.0)));
}

async fn quarantine_and_uidls(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("q@example.org"), T0).await.unwrap();
    let jane = EmailAddress::parse("jane@example.org").unwrap();
    db.approve_sender(ids.subscriber_id, &jane, T0).await.unwrap();

    let raw1: &[u8] = b"From: x@spam.example\r\nSubject: one\r\n\r\n\xff\xfe binary\r\n";
    let raw2: &[u8] = b"";
    let items = [
        PollItem::Quarantine {
            uidl: "u1",
            status: "held",
            raw: raw1,
            hash: MessageHash::of(raw1),
            from: None,
            from_name: Some("Spammer"),
            subject: Some("one"),
            checked: None,
            campaign: None,
            stat_keys: None,
            confirm_to: None,
            reputation: &[],
            imap_folder: None,
        },
        PollItem::Quarantine {
            uidl: "u2",
            status: "held",
            raw: raw2,
            hash: MessageHash::of(raw2),
            from: None,
            from_name: None,
            subject: None,
            checked: None,
            campaign: None,
            stat_keys: None,
            confirm_to: None,
            reputation: &[],
            imap_folder: None,
        },
        PollItem::Keep { uidl: "u3", approved: Some(&jane), campaign: None, reputation: &[] },
    ];
    let later = T0.plus(Duration::from_secs(3600));
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, later).await.unwrap();

    let mut known = db.known_uidls(ids.mailbox_id).await.unwrap();
    known.sort_by(|a, b| a.uidl.cmp(&b.uidl));
    let dispositions: Vec<_> = known.iter().map(|k| (k.uidl.as_str(), k.disposition, k.hash)).collect();
    assert_eq!(
        dispositions,
        [
            ("u1", UidlDisposition::Quarantined, Some(MessageHash::of(raw1))),
            ("u2", UidlDisposition::Quarantined, Some(MessageHash::of(raw2))),
            ("u3", UidlDisposition::Kept, None)
        ]
    );
    let held = db.quarantined(ids.mailbox_id).await.unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(db.message_raw(held[0].id).await.unwrap(), raw1, "bytes kept exactly, 8-bit included");
    assert_eq!(db.message_raw(held[1].id).await.unwrap(), raw2, "empty message kept");
    assert_eq!(held[0].from_name.as_deref(), Some("Spammer"));

    // The server renumbered: same bytes under a new UIDL are not stored twice.
    let again = [PollItem::Quarantine {
        uidl: "u1-renumbered",
        status: "held",
        raw: raw1,
        hash: MessageHash::of(raw1),
        from: None,
        from_name: None,
        subject: None,
        checked: None,
        campaign: None,
        stat_keys: None,
        confirm_to: None,
        reputation: &[],
        imap_folder: None,
    }];
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &again, later).await.unwrap();
    assert_eq!(db.quarantined(ids.mailbox_id).await.unwrap().len(), 2);
    assert_eq!(db.known_uidls(ids.mailbox_id).await.unwrap().len(), 4);

    // Keeping mail from an approved sender refreshed its last-seen time.
    let recent = db.approved_senders(ids.subscriber_id, later).await.unwrap();
    assert_eq!(recent, std::slice::from_ref(&jane));
    assert!(db.approved_senders(ids.subscriber_id, later.plus(Duration::from_secs(1))).await.unwrap().is_empty());

    // A known UIDL given to different bytes (a server reusing ids) now names those bytes.
    let raw3: &[u8] = b"From: y@example.com\r\n\r\nnew bytes, old UIDL\r\n";
    let reused = [PollItem::Quarantine {
        uidl: "u2",
        status: "held",
        raw: raw3,
        hash: MessageHash::of(raw3),
        from: None,
        from_name: None,
        subject: None,
        checked: None,
        campaign: None,
        stat_keys: None,
        confirm_to: None,
        reputation: &[],
        imap_folder: None,
    }];
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &reused, later).await.unwrap();
    let u2 = db.known_uidls(ids.mailbox_id).await.unwrap().into_iter().find(|k| k.uidl == "u2").unwrap();
    assert_eq!(u2.hash, Some(MessageHash::of(raw3)));
    assert_eq!(db.quarantined(ids.mailbox_id).await.unwrap().len(), 3);

    db.forget_uidls(ids.mailbox_id, &["u1".into(), "u3".into()]).await.unwrap();
    assert_eq!(db.known_uidls(ids.mailbox_id).await.unwrap().len(), 2);
    assert!(matches!(db.message_raw(424242).await, Err(StorageError::NotFound(_))));
}

async fn release_outbox(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("r@example.org"), T0).await.unwrap();
    let raws: [&[u8]; 3] = [b"one\r\n", b"two\r\n", b"three\r\n"];
    let items: Vec<PollItem> = raws.iter().zip(["a", "b", "c"]).map(|(raw, uidl)| held(uidl, raw, None)).collect();
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, T0).await.unwrap();
    let held = db.quarantined(ids.mailbox_id).await.unwrap();
    let rcpt = EmailAddress::parse("r@example.org").unwrap();

    // One message, then all the others; nothing twice.
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::One(held[0].id), &rcpt, T0).await.unwrap(), 1);
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::One(held[0].id), &rcpt, T0).await.unwrap(), 0);
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::All, &rcpt, T0).await.unwrap(), 2);
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::All, &rcpt, T0).await.unwrap(), 0);
    let statuses: Vec<String> = db.quarantined(ids.mailbox_id).await.unwrap().into_iter().map(|m| m.status).collect();
    assert_eq!(statuses, ["releasing"; 3]);

    let until = T0.plus(Duration::from_secs(300));
    let leased = db.lease_due_releases("d1", T0, until, 2).await.unwrap();
    assert_eq!(leased.len(), 2);
    assert!(leased.iter().all(|r| r.recipient == "r@example.org" && r.mailbox_id == ids.mailbox_id));
    let rest = db.lease_due_releases("d2", T0, until, 10).await.unwrap();
    assert_eq!(rest.len(), 1, "leased releases are not handed out twice");
    let mut all: Vec<_> = leased.iter().chain(&rest).map(|r| r.raw.clone()).collect();
    all.sort();
    assert_eq!(all, [b"one\r\n".to_vec(), b"three\r\n".to_vec(), b"two\r\n".to_vec()]);

    db.release_sent(leased[0].outbox_id, "d1", T0).await.unwrap();
    let retry_at = T0.plus(Duration::from_secs(60));
    db.release_failed(leased[1].outbox_id, "d1", "SMTP down", retry_at).await.unwrap();
    // A stale owner cannot mark another's release.
    db.release_sent(rest[0].outbox_id, "d1", T0).await.unwrap();
    let pending = db.outbox_pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    let failed = pending.iter().find(|p| p.outbox_id == leased[1].outbox_id).unwrap();
    assert_eq!(
        (failed.attempts, failed.last_error.as_deref(), failed.next_attempt_at),
        (1, Some("SMTP down"), retry_at.0)
    );
    let released = db.quarantined(ids.mailbox_id).await.unwrap().into_iter().filter(|m| m.status == "released").count();
    assert_eq!(released, 1);

    // Not due before its backoff, unless the operator says retry now.
    assert!(db.lease_due_releases("d3", T0.plus(Duration::from_secs(1)), until, 10).await.unwrap().is_empty());
    assert_eq!(db.retry_releases_now(T0.plus(Duration::from_secs(1))).await.unwrap(), 1);
    assert_eq!(db.lease_due_releases("d3", T0.plus(Duration::from_secs(1)), until, 10).await.unwrap().len(), 1);
}

async fn summaries_schedule_and_retention(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("s@example.org"), T0).await.unwrap();
    let s = db.subscriber_by_email(&EmailAddress::parse("s@example.org").unwrap()).await.unwrap().unwrap();
    assert_eq!((s.summary_times.as_str(), s.time_zone.as_str()), ("07:00,19:00", "Europe/Berlin"));
    let first = Timestamp(s.next_summary_at.unwrap());
    assert!(first > T0 && first.0 - T0.0 <= 86_400);

    assert!(db.due_summaries(T0, 10).await.unwrap().is_empty());
    let later = first.plus(Duration::from_secs(3 * 86_400));
    assert_eq!(db.due_summaries(later, 10).await.unwrap().len(), 1, "overdue once, however long");
    let next = later.plus(Duration::from_secs(3600));
    assert!(db.claim_summary(ids.subscriber_id, first, next).await.unwrap());
    assert!(!db.claim_summary(ids.subscriber_id, first, next).await.unwrap(), "a slot is claimed once");
    assert!(db.due_summaries(later, 10).await.unwrap().is_empty());

    let raws: [&[u8]; 2] = [b"old\r\n", b"new\r\n"];
    for (i, raw) in raws.iter().enumerate() {
        let item = held(["o", "n"][i], raw, None);
        db.commit_poll(ids.mailbox_id, ids.subscriber_id, &[item], T0.plus(Duration::from_secs(i as u64 * 86_400)))
            .await
            .unwrap();
    }
    let held = db.held(ids.mailbox_id).await.unwrap();
    let cutoff = T0.plus(Duration::from_secs(3600));
    assert_eq!(db.purge_older_than(cutoff, later).await.unwrap(), 1);
    let left = db.held(ids.mailbox_id).await.unwrap();
    assert_eq!(left.iter().map(|m| m.id).collect::<Vec<_>>(), [held[1].id]);
    assert!(db.message_raw(held[0].id).await.unwrap().is_empty(), "a purged message's bytes are dropped");
    assert!(db.purge_message(held[1].id, later).await.unwrap());
    assert!(!db.purge_message(held[1].id, later).await.unwrap());
    assert_eq!(db.decided_since(ids.mailbox_id, T0).await.unwrap().deleted, 0, "purged is not deleted");

    // Approved senders expire after the subscriber's approved_days (90) of silence.
    let (quiet, active) =
        (EmailAddress::parse("quiet@example.org").unwrap(), EmailAddress::parse("active@example.org").unwrap());
    db.approve_sender(ids.subscriber_id, &quiet, T0).await.unwrap();
    db.approve_sender(ids.subscriber_id, &active, T0.plus(Duration::from_secs(50 * 86_400))).await.unwrap();
    let day_91 = T0.plus(Duration::from_secs(91 * 86_400));
    assert_eq!(db.expire_approved_senders(day_91).await.unwrap(), 1);
    assert_eq!(db.approved_senders(ids.subscriber_id, Timestamp(0)).await.unwrap(), [active]);
}

/// Many workers leasing at once never share a mailbox.
async fn concurrent_leases(db: impl Database) {
    db.migrate().await.unwrap();
    for i in 0..40 {
        db.add_subscriber(&new_subscriber(&format!("c{i}@example.org")), T0).await.unwrap();
    }
    let until = T0.plus(Duration::from_secs(600));
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..20 {
                    match db.lease_due_mailboxes(&format!("w{w}"), T0, until, 3).await {
                        Ok(leased) => got.extend(leased.into_iter().map(|m| m.mailbox_id)),
                        // SQLite may refuse a competing writer; that is a retry, not a double lease.
                        Err(StorageError::Sqlx(e)) if e.to_string().contains("locked") => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "a mailbox was leased twice");
    assert_eq!(total, 40, "every mailbox leased once");
}

async fn votes_blocks_and_summaries(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("v@example.org"), T0).await.unwrap();
    let spammer = EmailAddress::parse("x@spam.example").unwrap();
    let friend = EmailAddress::parse("f@good.example").unwrap();
    let raws: [&[u8]; 3] = [b"s1\r\n", b"s2\r\n", b"f1\r\n"];
    let senders = [&spammer, &spammer, &friend];
    let items: Vec<PollItem> =
        raws.iter().zip(["a", "b", "c"]).zip(senders).map(|((raw, uidl), from)| held(uidl, raw, Some(from))).collect();
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, T0).await.unwrap();
    let held = db.held(ids.mailbox_id).await.unwrap();

    let summary = db
        .record_summary(ids.subscriber_id, &[("00001".into(), held[0].id), ("00003".into(), held[2].id)], T0)
        .await
        .unwrap();
    let owner = db.summary_owner(summary).await.unwrap().unwrap();
    assert_eq!(
        (owner.subscriber_id, owner.mailbox_id, owner.email.as_str()),
        (ids.subscriber_id, ids.mailbox_id, "v@example.org")
    );
    assert!(db.summary_owner(summary + 100).await.unwrap().is_none());
    assert_eq!(db.last_summary_at(ids.subscriber_id).await.unwrap(), None, "not sent yet");
    db.summary_sent(summary, T0).await.unwrap();
    assert_eq!(db.last_summary_at(ids.subscriber_id).await.unwrap(), Some(T0));

    // Empty box: deleted, sender blocked, spam vote; a second time it is a no-op.
    let later = T0.plus(Duration::from_secs(60));
    assert!(
        db.reject_message(ids.subscriber_id, ids.mailbox_id, held[0].id, Some(&spammer), "deleted_spam", later)
            .await
            .unwrap()
    );
    assert!(
        !db.reject_message(ids.subscriber_id, ids.mailbox_id, held[0].id, Some(&spammer), "deleted_spam", later)
            .await
            .unwrap()
    );
    db.record_vote(ids.subscriber_id, held[0].id, &spammer, Vote::Spam, later).await.unwrap();
    db.record_vote(ids.subscriber_id, held[0].id, &spammer, Vote::Spam, later).await.unwrap();
    assert_eq!(db.disapproved_senders(ids.subscriber_id).await.unwrap(), std::slice::from_ref(&spammer));
    let items = db.summary_items(summary).await.unwrap();
    let statuses: Vec<(&str, &str)> = items.iter().map(|i| (i.short_id.as_str(), i.status.as_str())).collect();
    assert!(statuses.contains(&("00001", "deleted_spam")) && statuses.contains(&("00003", "held")));

    // A: approved (and no longer blocked), vote, this sender's mail released.
    db.approve_sender(ids.subscriber_id, &friend, later).await.unwrap();
    db.record_vote(ids.subscriber_id, held[2].id, &friend, Vote::Approve, later).await.unwrap();
    let rcpt = EmailAddress::parse("v@example.org").unwrap();
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::From(&friend), &rcpt, later).await.unwrap(), 1);
    let mut votes: Vec<(String, String)> =
        db.votes_after(Default::default(), 10).await.unwrap().into_iter().map(|v| (v.domain, v.verdict)).collect();
    votes.sort();
    assert_eq!(votes, [("good.example".into(), "approve".into()), ("spam.example".into(), "spam".into())]);
    // Approving a blocked sender unblocks it.
    db.approve_sender(ids.subscriber_id, &spammer, later).await.unwrap();
    assert!(db.disapproved_senders(ids.subscriber_id).await.unwrap().is_empty());

    let counts = db.decided_since(ids.mailbox_id, T0).await.unwrap();
    assert_eq!((counts.deleted, counts.forged, counts.delivered), (1, 0, 0), "released only counts once sent");
}

/// `subscriber set`, `subscriber remove` and the daily limit of refusal notices.
async fn subscriber_changes_and_removal(db: impl Database) {
    db.migrate().await.unwrap();
    let gone = db.add_subscriber(&new_subscriber("gone@example.org"), T0).await.unwrap();
    let stays = db.add_subscriber(&new_subscriber("stays@example.org"), T0).await.unwrap();

    // New settings, IMAP now; the trusted domains stay, the next poll is due now.
    let mut mailbox = db.mailbox_of(gone.subscriber_id).await.unwrap().unwrap();
    assert_eq!((mailbox.mailbox_id, mailbox.settings.host.as_str()), (gone.mailbox_id, "pop.example.org"));
    assert_eq!(mailbox.settings.protocol, Protocol::Pop3);
    mailbox.settings.protocol = Protocol::Imap;
    mailbox.settings.host = "pop.other.example".into();
    mailbox.settings.port = 110;
    mailbox.settings.security = Security::StartTls;
    mailbox.settings.password_enc = vec![9, 9];
    let later = T0.plus(Duration::from_secs(60));
    db.update_mailbox(gone.subscriber_id, &mailbox.settings, later).await.unwrap();
    let changed = db.mailbox_of(gone.subscriber_id).await.unwrap().unwrap().settings;
    assert_eq!(
        (changed.host.as_str(), changed.port, changed.security, changed.password_enc, changed.trusted_domains),
        ("pop.other.example", 110, Security::StartTls, vec![9, 9], vec!["isp.example".to_string()])
    );
    assert_eq!(changed.protocol, Protocol::Imap);
    // And the lease hands the worker the protocol to poll with.
    let until = later.plus(Duration::from_secs(60));
    let leased = db.lease_mailbox(gone.mailbox_id, "w", later, until, false).await.unwrap().unwrap();
    assert_eq!(leased.settings.protocol, Protocol::Imap);
    assert_eq!(db.release_leases("w").await.unwrap(), 1);
    assert!(db.mailbox_of(stays.subscriber_id + 100).await.unwrap().is_none());
    assert!(matches!(db.update_mailbox(999, &changed_settings(), later).await, Err(StorageError::NotFound(_))));

    // At most one refusal notice a day.
    let day = Duration::from_secs(86_400);
    assert!(db.claim_refusal_notice(gone.subscriber_id, T0, T0.minus(day)).await.unwrap());
    assert!(!db.claim_refusal_notice(gone.subscriber_id, later, later.minus(day)).await.unwrap());
    assert!(db.claim_refusal_notice(stays.subscriber_id, later, later.minus(day)).await.unwrap(), "per subscriber");
    let next_day = T0.plus(day);
    assert!(db.claim_refusal_notice(gone.subscriber_id, next_day, next_day.minus(day)).await.unwrap());

    // Everything of one subscriber: messages, votes, approvals, summaries, a session, a release.
    let spammer = EmailAddress::parse("x@spam.example").unwrap();
    for ids in [&gone, &stays] {
        let items = [held("a", b"m1\r\n", Some(&spammer)), held("b", b"m2\r\n", Some(&spammer))];
        db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, T0).await.unwrap();
        let held = db.held(ids.mailbox_id).await.unwrap();
        db.record_vote(ids.subscriber_id, held[0].id, &spammer, Vote::Spam, T0).await.unwrap();
        db.approve_sender(ids.subscriber_id, &spammer, T0).await.unwrap();
        db.record_summary(ids.subscriber_id, &[("00001".into(), held[1].id)], T0).await.unwrap();
        db.create_session(&ids.subscriber_id.to_be_bytes(), Principal::Subscriber(ids.subscriber_id), T0, next_day)
            .await
            .unwrap();
    }
    let rcpt = EmailAddress::parse("gone@example.org").unwrap();
    assert_eq!(db.queue_release(gone.mailbox_id, ReleaseSelection::All, &rcpt, T0).await.unwrap(), 2);
    // Not while its releases wait: they would be lost.
    assert!(matches!(db.remove_subscriber(gone.subscriber_id).await, Err(StorageError::Conflict(_))));
    for r in db.lease_due_releases("d", T0, later, 10).await.unwrap() {
        db.release_sent(r.outbox_id, "d", T0).await.unwrap();
    }
    db.remove_subscriber(gone.subscriber_id).await.unwrap();
    assert!(db.subscriber_by_email(&rcpt).await.unwrap().is_none());
    assert!(db.mailbox_of(gone.subscriber_id).await.unwrap().is_none());
    assert!(db.session(&gone.subscriber_id.to_be_bytes(), T0).await.unwrap().is_none());
    assert!(matches!(db.remove_subscriber(gone.subscriber_id).await, Err(StorageError::NotFound(_))));
    // The other subscriber keeps all of theirs.
    let emails: Vec<String> = db.list_subscribers().await.unwrap().into_iter().map(|s| s.email).collect();
    assert_eq!(emails, ["stays@example.org"]);
    assert_eq!(db.held(stays.mailbox_id).await.unwrap().len(), 2);
    assert!(db.session(&stays.subscriber_id.to_be_bytes(), T0).await.unwrap().is_some());
    let votes = db.votes_after(Default::default(), 10).await.unwrap();
    assert_eq!(votes.iter().map(|v| v.subscriber_id).collect::<Vec<_>>(), [stays.subscriber_id]);
}

fn changed_settings() -> MailboxSettings {
    new_subscriber("x@example.org").mailbox
}

/// One test per database for each behaviour: `sqlite_<name>` and `postgres_<name>`, each on
/// a fresh database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (_dir, url) = quorum_tests::fresh_sqlite();
                    super::$name(quorum_storage::Sqlite::connect(&url).await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let url = quorum_tests::fresh_postgres().await;
                    super::$name(quorum_storage::Postgres::connect(&url).await.unwrap()).await;
                }
            )*
        }
    };
}

/// The provider table (seeded by the migration, edited by operators) and checks that must
/// run again after a DNS failure.
async fn providers_and_rechecks(db: impl Database) {
    db.migrate().await.unwrap();
    let seeded = db.providers().await.unwrap();
    let gmail = seeded.iter().find(|p| p.domain == "gmail.com").expect("gmail.com is seeded");
    assert!(gmail.ptr_supported && !gmail.ptr_required && gmail.relay_domains() == ["google.com"]);
    let yahoo = seeded.iter().find(|p| p.domain == "yahoo.com").expect("yahoo.com is seeded");
    assert!(yahoo.ptr_required, "yahoo.com publishes DMARC p=reject");
    let web_de = Provider::new("web.de", true, true, true, "", "cinetic.de").unwrap();
    db.upsert_provider(&web_de).await.unwrap();
    let rows = db.providers().await.unwrap();
    assert_eq!(rows.len(), seeded.len(), "replaced, not added");
    assert_eq!(rows.iter().find(|p| p.domain == "web.de"), Some(&web_de));
    assert!(db.remove_provider("WEB.DE").await.unwrap());
    assert!(!db.remove_provider("web.de").await.unwrap());
    assert_eq!(db.providers().await.unwrap().len(), seeded.len() - 1);

    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let leased =
        db.lease_mailbox(a.mailbox_id, "w", T0, T0.plus(Duration::from_secs(60)), false).await.unwrap().unwrap();
    assert_eq!(leased.settings.trusted_domains, ["isp.example"]);
    let from = EmailAddress::parse("x@web.de").unwrap();
    let incomplete = CheckRecord { evidence: "{}", reason: Some("checks incomplete: timed out"), incomplete: true };
    let done = CheckRecord { evidence: "{}", reason: None, incomplete: false };
    let mut items = Vec::new();
    for (uidl, raw, check) in [("u1", &b"one"[..], incomplete), ("u2", b"two", done), ("u3", b"three", incomplete)] {
        let mut item = held(uidl, raw, Some(&from));
        if let PollItem::Quarantine { checked, .. } = &mut item {
            *checked = Some(check);
        }
        items.push(item);
    }
    db.commit_poll(a.mailbox_id, a.subscriber_id, &items, T0).await.unwrap();
    let rechecks = db.incomplete_checks(a.subscriber_id).await.unwrap();
    assert_eq!(rechecks.iter().map(|r| r.raw.as_slice()).collect::<Vec<_>>(), [&b"one"[..], b"three"]);
    assert_eq!(rechecks[0].trusted_domains, "isp.example");
    let held_now = db.held(a.mailbox_id).await.unwrap();
    assert_eq!(held_now[0].reason.as_deref(), Some("checks incomplete: timed out"));

    let forged = CheckRecord {
        evidence: "{}",
        reason: Some("forged: PTR of 1.2.3.4 missing, claims web.de"),
        incomplete: false,
    };
    assert!(db.record_recheck(rechecks[0].id, &forged, true, T0).await.unwrap());
    assert!(db.record_recheck(rechecks[1].id, &done, false, T0).await.unwrap());
    assert!(!db.record_recheck(rechecks[0].id, &done, false, T0).await.unwrap(), "no longer held");
    assert!(db.incomplete_checks(a.subscriber_id).await.unwrap().is_empty());
    let counts = db.decided_since(a.mailbox_id, T0).await.unwrap();
    assert_eq!((counts.deleted, counts.forged), (1, 1));
    let all = db.quarantined(a.mailbox_id).await.unwrap();
    assert_eq!(all[0].status, "deleted_forged");
    assert_eq!(all[0].reason.as_deref(), Some("forged: PTR of 1.2.3.4 missing, claims web.de"));
    assert_eq!((all[2].status.as_str(), all[2].reason.as_deref()), ("held", None));
    let forged = db.forged_since(a.mailbox_id, T0, 10).await.unwrap();
    assert_eq!(forged.iter().map(|m| m.id).collect::<Vec<_>>(), [rechecks[0].id]);
    assert!(db.forged_since(a.mailbox_id, T0.plus(Duration::from_secs(1)), 10).await.unwrap().is_empty());
}

/// The confirmation limits (SPEC 2.4) and what answers to confirmations record.
async fn confirmations(db: impl Database) {
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    let jane = EmailAddress::parse("jane@example.org").unwrap();
    let raws: Vec<Vec<u8>> = (0..6).map(|i| format!("m{i}").into_bytes()).collect();
    let items: Vec<PollItem> =
        raws.iter().enumerate().map(|(i, r)| held(["u0", "u1", "u2", "u3", "u4", "u5"][i], r, Some(&jane))).collect();
    let ids: Vec<i64> =
        db.commit_poll(a.mailbox_id, a.subscriber_id, &items, T0).await.unwrap().into_iter().flatten().collect();
    assert_eq!(ids.len(), 6);
    let b_ids = db.commit_poll(b.mailbox_id, b.subscriber_id, &items[..1], T0).await.unwrap();
    let b_msg = b_ids[0].unwrap();

    // The queue: a confirmation committed with its message, claimed, then done.
    let queued_raw = b"queued\r\n";
    let mut queued = held("q", queued_raw, Some(&jane));
    if let PollItem::Quarantine { confirm_to, .. } = &mut queued {
        *confirm_to = Some(&jane);
    }
    let q = db.commit_poll(b.mailbox_id, b.subscriber_id, &[queued], T0).await.unwrap()[0].unwrap();
    let pending = db.pending_confirmations(b.mailbox_id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].message_id, pending[0].sender.as_str(), pending[0].claimed), (q, "jane@example.org", false));
    assert!(db.pending_confirmations(a.mailbox_id).await.unwrap().is_empty());
    assert!(
        db.claim_confirmation(b.subscriber_id, q, &EmailAddress::parse("q@example.org").unwrap(), T0, 100)
            .await
            .unwrap()
    );
    assert!(db.pending_confirmations(b.mailbox_id).await.unwrap()[0].claimed, "claimed, not yet sent");
    db.confirmation_done(q).await.unwrap();
    assert!(db.pending_confirmations(b.mailbox_id).await.unwrap().is_empty());
    db.unclaim_confirmation(q).await.unwrap();

    // One per sender per subscriber per 24 h; another subscriber may confirm the same sender.
    assert!(db.claim_confirmation(a.subscriber_id, ids[0], &jane, T0, 100).await.unwrap());
    assert!(
        !db.claim_confirmation(a.subscriber_id, ids[1], &jane, T0.plus(Duration::from_secs(3600)), 100).await.unwrap()
    );
    assert!(db.claim_confirmation(b.subscriber_id, b_msg, &jane, T0, 100).await.unwrap());
    let next_day = T0.plus(Duration::from_secs(86_401));
    assert!(db.claim_confirmation(a.subscriber_id, ids[1], &jane, next_day, 100).await.unwrap());
    // The global cap counts the last hour of the whole service.
    for (i, id) in ids[2..5].iter().enumerate() {
        let other = EmailAddress::parse(&format!("s{i}@example.net")).unwrap();
        let claimed = db.claim_confirmation(a.subscriber_id, *id, &other, next_day, 3).await.unwrap();
        assert_eq!(claimed, i < 2, "cap of 3 in the hour: the one already sent and two more");
    }
    // One the SMTP server refused does not count.
    db.unclaim_confirmation(ids[3]).await.unwrap();
    let other = EmailAddress::parse("s9@example.net").unwrap();
    assert!(db.claim_confirmation(a.subscriber_id, ids[5], &other, next_day, 3).await.unwrap());

    let c = db.confirmation(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (c.mailbox_id, c.subscriber_email.as_str(), c.sender.as_str()),
        (a.mailbox_id, "a@example.org", "jane@example.org")
    );
    assert_eq!((c.outcome, c.status.as_str()), (None, "held"));
    db.confirmation_answered(ids[0], "bounced", next_day).await.unwrap();
    db.confirmation_answered(ids[0], "replied", next_day).await.unwrap();
    assert_eq!(
        db.confirmation(ids[0]).await.unwrap().unwrap().outcome.as_deref(),
        Some("bounced"),
        "the first answer counts"
    );
    assert_eq!(db.confirmation(ids[3]).await.unwrap(), None);

    // The alias case: the original goes as forged, once, and only in its own mailbox.
    assert!(!db.mark_deleted(b.mailbox_id, ids[0], "deleted_forged", "forged: alias", next_day).await.unwrap());
    assert!(db.mark_deleted(a.mailbox_id, ids[0], "deleted_forged", "forged: alias", next_day).await.unwrap());
    assert!(!db.mark_deleted(a.mailbox_id, ids[0], "deleted_forged", "forged: alias", next_day).await.unwrap());
    assert_eq!(db.decided_since(a.mailbox_id, next_day).await.unwrap().forged, 1);
}

/// The operators' reputation tables, kept as mail arrives and as votes, bounces and forgery
/// verdicts come in: every event counts once under each of the message's keys.
async fn reputation_tables(db: impl Database) {
    use quorum_reputation::{Counts, Facts, Kind, Status, Thresholds};
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    let seller = EmailAddress::parse("seller@spam.example").unwrap();
    let keys = quorum_reputation::keys(&Facts {
        handoff: Some("192.0.2.7".parse().unwrap()),
        from: Some(seller.as_str()),
        fingerprint: None,
    });
    assert_eq!(keys.len(), 3, "{keys:?}");
    let raws: Vec<Vec<u8>> = (0..6).map(|i| format!("offer {i}\r\n").into_bytes()).collect();
    let item = |uidl, raw, status| counted(held(uidl, raw, Some(&seller)), status, &keys);
    // a receives four messages; b, a spam probe's mailbox, one.
    let ids = db
        .commit_poll(
            a.mailbox_id,
            a.subscriber_id,
            // m1's bytes twice in one poll (two UIDLs): one message, counted once.
            &[
                item("m0", &raws[0], "held"),
                item("m1", &raws[1], "held"),
                item("m1-twin", &raws[1], "held"),
                item("m2", &raws[2], "held"),
            ],
            T0,
        )
        .await
        .unwrap();
    let ids: Vec<i64> = ids.into_iter().flatten().collect();
    assert_eq!(ids[1], ids[2], "the twin is the same message");
    let ids = [ids[0], ids[1], ids[3]];
    db.commit_poll(b.mailbox_id, b.subscriber_id, &[item("p0", &raws[3], "probe_spam")], T0).await.unwrap();
    let mut queued = item("m3", &raws[4], "held");
    if let PollItem::Quarantine { confirm_to, .. } = &mut queued {
        *confirm_to = Some(&seller);
    }
    let bounced = db.commit_poll(a.mailbox_id, a.subscriber_id, &[queued], T0).await.unwrap()[0].unwrap();
    // The same bytes again under a new UIDL: stored once, counted once.
    db.commit_poll(a.mailbox_id, a.subscriber_id, &[item("m0-again", &raws[0], "held")], T0).await.unwrap();
    // Another host with one quiet message.
    let quiet_keys = [quorum_reputation::Key { kind: Kind::Ip, name: "198.51.100.1".into() }];
    let quiet = [counted(held("q0", &raws[5], None), "held", &quiet_keys)];
    db.commit_poll(a.mailbox_id, a.subscriber_id, &quiet, T0).await.unwrap();
    // An approved sender's delivery from the same host, left in b's Inbox: ham.
    let friend = EmailAddress::parse("friend@spam.example").unwrap();
    let kept = [PollItem::Keep { uidl: "k0", approved: Some(&friend), campaign: None, reputation: &keys }];
    db.commit_poll(b.mailbox_id, b.subscriber_id, &kept, T0).await.unwrap();
    // Released mail coming back is nobody's delivery: not counted.
    let released = [PollItem::Keep { uidl: "k1", approved: None, campaign: None, reputation: &keys }];
    db.commit_poll(b.mailbox_id, b.subscriber_id, &released, T0).await.unwrap();

    // What became of them: a spam vote (twice: one vote), an approval, a bounced
    // confirmation, a forgery found later.
    db.record_vote(a.subscriber_id, ids[0], &seller, Vote::Spam, T0).await.unwrap();
    db.record_vote(a.subscriber_id, ids[0], &seller, Vote::Spam, T0).await.unwrap();
    db.record_vote(a.subscriber_id, ids[1], &seller, Vote::Approve, T0).await.unwrap();
    assert!(db.claim_confirmation(a.subscriber_id, bounced, &seller, T0, 100).await.unwrap());
    db.confirmation_answered(bounced, "bounced", T0).await.unwrap();
    db.confirmation_answered(bounced, "bounced", T0).await.unwrap();
    assert!(db.mark_deleted(a.mailbox_id, ids[2], "deleted_forged", "forged", T0).await.unwrap());

    let rows = db.reputation_rows(Kind::Ip, 10).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["192.0.2.7", "198.51.100.1"], "the most reported first");
    let counts = rows[0].counts.as_of(T0.0);
    let expected = Counts {
        messages: 6.0,
        recipients: 2.0,
        spam: 1.0,
        approvals: 1.0,
        probe: 1.0,
        nonexistent: 1.0,
        forged: 1.0,
        inbox: 1.0,
    };
    for (got, want) in [
        (counts.messages, expected.messages),
        (counts.recipients, expected.recipients),
        (counts.spam, expected.spam),
        (counts.approvals, expected.approvals),
        (counts.probe, expected.probe),
        (counts.nonexistent, expected.nonexistent),
        (counts.forged, expected.forged),
        (counts.inbox, expected.inbox),
    ] {
        assert!((got - want).abs() < 1e-9, "{counts:?}");
    }
    assert_eq!((rows[0].first_seen, rows[0].last_seen), (T0.0, T0.0));
    // Three reports of six messages.
    let t = Thresholds::default();
    assert_eq!(quorum_reputation::status(Kind::Ip, &counts, &t), Status::Blocked);
    assert_eq!(quorum_reputation::status(Kind::Ip, &rows[1].counts.as_of(T0.0), &t), Status::New);
    // The network and the sender domain counted the same events.
    let network = &db.reputation_rows(Kind::Network, 10).await.unwrap()[0];
    assert_eq!(network.name, "192.0.2.0/24");
    assert!((network.counts.as_of(T0.0).messages - 6.0).abs() < 1e-9);
    let domain = &db.reputation_rows(Kind::SenderDomain, 10).await.unwrap()[0];
    assert_eq!(domain.name, "spam.example");
    assert!((domain.counts.as_of(T0.0).forged - 1.0).abs() < 1e-9);

    // Rows by key (the blocklist's look-up of its candidates): those that exist.
    let mut asked = keys.clone();
    asked.push(quorum_reputation::Key { kind: Kind::UrlDomain, name: "never-seen.example".into() });
    let mut found = db.reputation_of(&asked).await.unwrap();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), keys);
    assert!(found.iter().all(|(k, row)| row.name == k.name && (row.counts.as_of(T0.0).messages - 6.0).abs() < 1e-9));

    // The campaign report's input: what was decided spam since a time, with its keys.
    let spam = db.spam_since(T0).await.unwrap();
    let got: Vec<(i64, &str)> = spam.iter().map(|m| (m.recipient, m.status.as_str())).collect();
    assert_eq!(got, [(a.subscriber_id, "deleted_forged"), (b.subscriber_id, "probe_spam")]);
    for m in &spam {
        let mut k = m.keys.clone();
        k.sort();
        assert_eq!(k, keys);
        assert_eq!((m.at, m.from.as_deref(), m.subject.as_deref()), (T0.0, Some(seller.as_str()), None));
    }
    assert!(db.spam_since(T0.plus(Duration::from_secs(1))).await.unwrap().is_empty());

    // A month later a's next message from the host: the old events weigh half, the
    // recipient still counts once, at its new weight.
    let later = T0.plus(Duration::from_secs(30 * 86_400));
    let next = b"offer 6\r\n".to_vec();
    db.commit_poll(a.mailbox_id, a.subscriber_id, &[item("m4", &next, "held")], later).await.unwrap();
    let row = &db.reputation_rows(Kind::Ip, 1).await.unwrap()[0];
    let c = row.counts.as_of(later.0);
    assert!((c.messages - 4.0).abs() < 1e-9 && (c.spam - 0.5).abs() < 1e-9, "{c:?}");
    assert!((c.recipients - 1.5).abs() < 1e-9, "a now, b a month ago: {c:?}");
    assert_eq!((row.first_seen, row.last_seen), (T0.0, later.0));
    // Removing a subscriber keeps the counts (they are the service's, not the subscriber's).
    db.remove_subscriber(b.subscriber_id).await.unwrap();
    assert_eq!(db.reputation_rows(Kind::Ip, 1).await.unwrap()[0].counts, row.counts);
}

/// What the statistics read (votes in order, probes) and write (the operator's tables).
async fn statistics_tables(db: impl Database) {
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    let raws: Vec<Vec<u8>> = (0..4).map(|i| format!("v{i}").into_bytes()).collect();
    let spam = EmailAddress::parse("x@spam.example").unwrap();
    let items: Vec<PollItem> =
        raws.iter().zip(["u0", "u1", "u2", "u3"]).map(|(r, u)| held(u, r, Some(&spam))).collect();
    let ids: Vec<i64> =
        db.commit_poll(a.mailbox_id, a.subscriber_id, &items, T0).await.unwrap().into_iter().flatten().collect();
    // The summary printed two of them: their votes carry the log-odds they were shown with.
    db.record_shown(&[(ids[0], -3.5), (ids[1], 0.25)]).await.unwrap();
    db.record_shown(&[(ids[1], 1.5)]).await.unwrap();
    // Two votes in the same second, one later; read in pages.
    db.record_vote(a.subscriber_id, ids[1], &spam, Vote::Spam, T0).await.unwrap();
    db.record_vote(a.subscriber_id, ids[0], &spam, Vote::Approve, T0).await.unwrap();
    db.record_vote(a.subscriber_id, ids[2], &spam, Vote::Spam, T0.plus(Duration::from_secs(5))).await.unwrap();
    let first = db.votes_after(Default::default(), 2).await.unwrap();
    assert_eq!(
        first.iter().map(|v| (v.message_id, v.verdict.as_str())).collect::<Vec<_>>(),
        [(ids[0], "approve"), (ids[1], "spam")]
    );
    assert_eq!(first[0].domain, "spam.example");
    assert_eq!(first.iter().map(|v| v.shown_logit).collect::<Vec<_>>(), [Some(-3.5), Some(1.5)]);
    let rest = db.votes_after(first[1].cursor(), 10).await.unwrap();
    assert_eq!(rest[0].shown_logit, None, "never in a summary");
    assert_eq!(rest.iter().map(|v| v.message_id).collect::<Vec<_>>(), [ids[2]]);
    assert!(db.votes_after(rest[0].cursor(), 10).await.unwrap().is_empty());

    // The statistics' own deletions, in decision order: one at the poll, one at a re-score
    // (a forgery is not one of them), each read once.
    // The one deleted at the poll carries its statistics keys: what they said counts in
    // the silence ratios.
    let mut deleted = held("d0", b"d0", Some(&spam));
    if let PollItem::Quarantine { status, stat_keys, .. } = &mut deleted {
        *status = "deleted_statistical";
        *stat_keys = Some("stored keys");
    }
    let later = T0.plus(Duration::from_secs(60));
    let polled = db.commit_poll(b.mailbox_id, b.subscriber_id, &[deleted], later).await.unwrap()[0];
    assert!(db.mark_deleted(a.mailbox_id, ids[3], "deleted_statistical", "statistics", T0).await.unwrap());
    assert!(db.mark_deleted(a.mailbox_id, ids[2], "deleted_forged", "forged", T0).await.unwrap());
    let first = db.deletions_after(Default::default(), 1).await.unwrap();
    assert_eq!(
        first.iter().map(|d| (d.subscriber_id, d.message_id, d.decided_at)).collect::<Vec<_>>(),
        [(a.subscriber_id, ids[3], T0.0)]
    );
    let rest = db.deletions_after(first[0].cursor(), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|d| (d.subscriber_id, Some(d.message_id), d.stat_keys.as_deref())).collect::<Vec<_>>(),
        [(b.subscriber_id, polled, Some("stored keys"))]
    );
    assert_eq!(first[0].stat_keys, None);
    assert!(db.deletions_after(rest[0].cursor(), 10).await.unwrap().is_empty());

    assert!(db.spam_probes().await.unwrap().is_empty());
    db.set_spam_probe(b.subscriber_id, true).await.unwrap();
    assert_eq!(db.spam_probes().await.unwrap(), [b.subscriber_id]);
    assert_eq!(db.spam_probe_emails().await.unwrap(), ["b@example.org"]);
    assert!(matches!(db.set_spam_probe(999, true).await, Err(StorageError::NotFound(_))));

    let trust = |id, status: &str| TrustRow {
        subscriber_id: id,
        email: String::new(),
        status: status.into(),
        reason: status.into(),
        approvals: 1,
        spam: 2,
        computed_at: T0.0,
    };
    let corr = |u, c, e| CorrelationRow {
        user_id: u,
        cuser_id: c,
        rms_error: e,
        confidence: 0.01,
        max_rms_error: e + 0.01,
        domains: 7,
        computed_at: T0.0,
    };
    let key = |kind: &str, name: &str, logit| KeyRow {
        kind: kind.into(),
        name: name.into(),
        logit,
        spam_units: 15,
        ham_units: 0,
        computed_at: T0.0,
    };
    let domain = key("domain", "spam.example", 16.1);
    let update = StatisticsUpdate {
        trust: vec![trust(a.subscriber_id, "trusted"), trust(b.subscriber_id, "probe")],
        correlations: vec![(a.subscriber_id, vec![corr(a.subscriber_id, b.subscriber_id, 0.05)])],
        keys: vec![domain.clone(), key("url", "spam.example", 7.0), key("domain", "ham.example", -9.0)],
    };
    db.write_statistics(&update).await.unwrap();
    // A second refresh replaces the target's correlations and updates the rest.
    let update = StatisticsUpdate {
        trust: vec![trust(a.subscriber_id, "unlike_probes")],
        correlations: vec![(a.subscriber_id, vec![corr(a.subscriber_id, b.subscriber_id, 0.2)])],
        keys: vec![KeyRow { spam_units: 16, ..domain }],
    };
    db.write_statistics(&update).await.unwrap();
    let rows = db.trust_rows().await.unwrap();
    assert_eq!(
        rows.iter().map(|t| (t.email.as_str(), t.status.as_str())).collect::<Vec<_>>(),
        [("a@example.org", "unlike_probes"), ("b@example.org", "probe")]
    );
    let c = db.correlation_rows(1.0, Some(a.subscriber_id), 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!((c[0].row.max_rms_error - 0.21).abs() < 1e-9);
    assert_eq!((c[0].user_email.as_str(), c[0].cuser_email.as_str()), ("a@example.org", "b@example.org"));
    assert!(db.correlation_rows(0.1, None, 10).await.unwrap().is_empty());
    assert!(db.correlation_rows(1.0, Some(b.subscriber_id), 10).await.unwrap().is_empty());
    // One kind at a time, the strongest spam evidence first.
    let d = db.key_rows("domain", 10).await.unwrap();
    let names: Vec<(&str, i64)> = d.iter().map(|k| (k.name.as_str(), k.spam_units)).collect();
    assert_eq!(names, [("spam.example", 16), ("ham.example", 15)]);
    assert!(d[0].p_spam() > 0.999999 && d[1].p_spam() < 1e-3);
    assert_eq!(db.key_rows("url", 10).await.unwrap().len(), 1);
    assert_eq!(db.key_rows("domain", 1).await.unwrap().len(), 1);
}

async fn campaigns(db: impl Database) {
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    let signature = |v: u64| (0..64u64).flat_map(|i| (v + i).to_le_bytes()).collect::<Vec<u8>>();
    // Band keys are 64-bit hashes: the top bit set must survive as a signed integer.
    let keys = |base: i64| vec![base, base + 1, i64::MIN + base];
    let new = [
        NewCampaign { signature: signature(1), words: 40, band_keys: keys(10) },
        NewCampaign { signature: signature(2), words: 50, band_keys: keys(20) },
    ];
    let ids = db.store_campaigns(&new, &[], T0).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > 0 && ids[1] > ids[0]);
    // Found through any one of their keys, once each, with their signature.
    let found = db.campaign_candidates(&[i64::MIN + 10, 11, 21, 999]).await.unwrap();
    assert_eq!(found, vec![(ids[0], signature(1)), (ids[1], signature(2))]);
    assert!(db.campaign_candidates(&[999]).await.unwrap().is_empty());
    // Many keys at once (more than one statement's worth).
    let many: Vec<i64> = (1000..3000).chain([20]).collect();
    assert_eq!(db.campaign_candidates(&many).await.unwrap().len(), 1);

    // A held message of campaign 0 and an Inbox delivery of campaign 1 from an approved sender.
    let spam = EmailAddress::parse("x@spam.example").unwrap();
    let friend = EmailAddress::parse("news@letters.example").unwrap();
    let raw = b"campaign copy".to_vec();
    let mut item = held("u0", &raw, Some(&spam));
    if let PollItem::Quarantine { campaign, .. } = &mut item {
        *campaign = Some(ids[0]);
    }
    let items = [item, PollItem::Keep { uidl: "u1", approved: Some(&friend), campaign: Some(ids[1]), reputation: &[] }];
    let stored = db.commit_poll(a.mailbox_id, a.subscriber_id, &items, T0).await.unwrap();
    let message = stored[0].unwrap();
    assert_eq!(db.held(a.mailbox_id).await.unwrap()[0].campaign_id, Some(ids[0]));
    // A vote on the message is a vote on its campaign; twice is once.
    let later = T0.plus(Duration::from_secs(10));
    db.record_vote(a.subscriber_id, message, &spam, Vote::Spam, later).await.unwrap();
    db.record_vote(a.subscriber_id, message, &spam, Vote::Spam, later).await.unwrap();
    let votes = db.campaign_votes_after(&Default::default(), 10).await.unwrap();
    assert_eq!(
        votes.iter().map(|v| (v.subscriber_id, v.campaign_id, v.verdict.as_str())).collect::<Vec<_>>(),
        [(a.subscriber_id, ids[1], "inbox"), (a.subscriber_id, ids[0], "spam")]
    );
    let rest = db.campaign_votes_after(&votes[0].cursor(), 10).await.unwrap();
    assert_eq!(rest, votes[1..]);
    assert!(db.campaign_votes_after(&votes[1].cursor(), 10).await.unwrap().is_empty());

    // Seen again later: campaign 1 stays, campaign 0 (not seen since T0) expires with its
    // bands and votes; the message keeps its (now dangling) campaign number, and a vote on
    // it no longer lands anywhere.
    let week = T0.plus(Duration::from_secs(7 * 86_400));
    db.store_campaigns(&[], &[ids[1]], week).await.unwrap();
    assert_eq!(db.expire_campaigns(T0.plus(Duration::from_secs(86_400))).await.unwrap(), 1);
    assert!(db.campaign_candidates(&keys(10)).await.unwrap().is_empty());
    assert_eq!(db.campaign_candidates(&keys(20)).await.unwrap().len(), 1);
    let votes = db.campaign_votes_after(&Default::default(), 10).await.unwrap();
    assert_eq!(votes.iter().map(|v| v.campaign_id).collect::<Vec<_>>(), [ids[1]]);
    db.record_vote(b.subscriber_id, message, &spam, Vote::Spam, week).await.unwrap();
    assert_eq!(db.campaign_votes_after(&Default::default(), 10).await.unwrap().len(), 1);
}

async fn web_accounts(db: impl Database) {
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap();
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap();
    let email = EmailAddress::parse("a@example.org").unwrap();
    assert_eq!(db.web_login(&email).await.unwrap(), Some((a.subscriber_id, None)));
    db.set_web_password(a.subscriber_id, "$argon2id$hash").await.unwrap();
    assert_eq!(db.web_login(&email).await.unwrap(), Some((a.subscriber_id, Some("$argon2id$hash".into()))));
    assert!(matches!(db.set_web_password(999, "x").await, Err(StorageError::NotFound(_))));
    assert_eq!(db.subscriber(b.subscriber_id).await.unwrap().unwrap().email, "b@example.org");
    assert!(db.subscriber(999).await.unwrap().is_none());

    let ops = EmailAddress::parse("ops@example.org").unwrap();
    let op = db.add_operator(&ops, "$argon2id$ops", T0).await.unwrap();
    assert!(matches!(db.add_operator(&ops, "x", T0).await, Err(StorageError::Duplicate(_))));
    assert_eq!(db.operator_login(&ops).await.unwrap(), Some((op, "$argon2id$ops".into())));
    assert_eq!(db.operator_email(op).await.unwrap().as_deref(), Some("ops@example.org"));

    // Sessions: found until they expire; an expired one is dropped when the next opens.
    let later = T0.plus(Duration::from_secs(3600));
    db.create_session(b"hash-a", Principal::Subscriber(a.subscriber_id), T0, later).await.unwrap();
    db.create_session(b"hash-op", Principal::Operator(op), T0, T0.plus(Duration::from_secs(10))).await.unwrap();
    assert_eq!(db.session(b"hash-a", T0).await.unwrap(), Some(Principal::Subscriber(a.subscriber_id)));
    assert_eq!(db.session(b"hash-op", T0).await.unwrap(), Some(Principal::Operator(op)));
    assert_eq!(db.session(b"hash-op", T0.plus(Duration::from_secs(11))).await.unwrap(), None);
    assert_eq!(db.session(b"unknown", T0).await.unwrap(), None);
    db.create_session(b"hash-a2", Principal::Subscriber(a.subscriber_id), T0.plus(Duration::from_secs(60)), later)
        .await
        .unwrap();
    assert_eq!(db.session(b"hash-op", T0).await.unwrap(), None, "expired sessions are dropped");
    db.delete_session(b"hash-a").await.unwrap();
    assert_eq!(db.session(b"hash-a", T0).await.unwrap(), None);
    db.delete_subscriber_sessions(a.subscriber_id).await.unwrap();
    assert_eq!(db.session(b"hash-a2", T0).await.unwrap(), None);

    // Settings as the web page reads and writes them.
    assert_eq!(db.web_password(a.subscriber_id).await.unwrap(), Some(Some("$argon2id$hash".into())));
    assert_eq!(db.web_password(b.subscriber_id).await.unwrap(), Some(None));
    let settings = db.subscriber_settings(a.subscriber_id).await.unwrap().unwrap();
    assert_eq!((settings.approved_days, settings.confirmations), (90, true));
    let schedule = SummarySchedule::parse("06:30", "Asia/Tokyo").unwrap();
    db.update_subscriber_settings(a.subscriber_id, 30, &schedule, false, T0).await.unwrap();
    let settings = db.subscriber_settings(a.subscriber_id).await.unwrap().unwrap();
    assert_eq!(
        (settings.approved_days, settings.summary_times.as_str(), settings.time_zone.as_str(), settings.confirmations),
        (30, "06:30", "Asia/Tokyo", false)
    );
    let status = db.subscriber(a.subscriber_id).await.unwrap().unwrap();
    assert_eq!(status.next_summary_at, Some(schedule.next_after(T0).0));
    assert!(matches!(
        db.update_subscriber_settings(999, 30, &schedule, false, T0).await,
        Err(StorageError::NotFound(_))
    ));
    db.set_mailbox_password(a.subscriber_id, b"new-encrypted").await.unwrap();
    let leased = db.lease_due_mailboxes("pw", T0, T0.plus(Duration::from_secs(60)), 10).await.unwrap();
    let mailbox = leased.iter().find(|m| m.mailbox_id == a.mailbox_id).unwrap();
    assert_eq!(mailbox.settings.password_enc, b"new-encrypted");
    db.release_leases("pw").await.unwrap();

    // A disabled subscriber cannot log in.
    db.set_subscriber_enabled(a.subscriber_id, false).await.unwrap();
    assert_eq!(db.web_login(&email).await.unwrap(), None);

    // The dashboard's totals: b is enabled and was never polled; then its poll fails.
    let totals = db.worker_totals().await.unwrap();
    assert_eq!(
        totals,
        WorkerTotals {
            mailboxes: 2,
            enabled: 1,
            failing: 0,
            unclassified: 0,
            oldest_poll_at: Some(-1),
            outbox_backlog: 0
        }
    );
    let leased = db.lease_due_mailboxes("w", T0, T0.plus(Duration::from_secs(60)), 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    let failed = PollOutcome { status: PollStatus::Error, error: Some("login failed".into()), ..outcome(T0, T0) };
    db.finish_poll(b.mailbox_id, "w", &failed).await.unwrap();
    let totals = db.worker_totals().await.unwrap();
    assert_eq!((totals.failing, totals.oldest_poll_at), (1, Some(T0.0)));
    let failing = db.failing_mailboxes(10).await.unwrap();
    assert_eq!(failing.len(), 1);
    assert_eq!((failing[0].email.as_str(), failing[0].last_error.as_deref()), ("b@example.org", Some("login failed")));

    // Messages are reachable only through their own mailbox; counts by status.
    let raw = b"m".to_vec();
    let from = EmailAddress::parse("x@y.example").unwrap();
    let ids = db.commit_poll(b.mailbox_id, b.subscriber_id, &[held("u", &raw, Some(&from))], T0).await.unwrap();
    let id = ids[0].unwrap();
    assert_eq!(db.message_in_mailbox(b.mailbox_id, id).await.unwrap().unwrap().status, "held");
    assert!(db.message_in_mailbox(a.mailbox_id, id).await.unwrap().is_none());
    assert_eq!(db.message_counts(Some(b.mailbox_id)).await.unwrap(), [("held".to_string(), 1)]);
    assert!(db.message_counts(Some(a.mailbox_id)).await.unwrap().is_empty());
    assert_eq!(db.message_counts(None).await.unwrap(), [("held".to_string(), 1)]);

    // Approved senders: all of them, and removal.
    db.approve_sender(b.subscriber_id, &from, T0).await.unwrap();
    assert_eq!(db.all_approved_senders(b.subscriber_id).await.unwrap(), ["x@y.example"]);
    assert!(db.remove_approved_sender(b.subscriber_id, &from).await.unwrap());
    assert!(!db.remove_approved_sender(b.subscriber_id, &from).await.unwrap());
}

/// IMAP copies: where they are (recorded by the commit itself, before the move), and which
/// held copies of decided messages are due to move on to Quorum/Deleted; a release's copy is
/// not, nor a message never in Quorum/Held.
async fn imap_folders(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("imap@example.org"), T0).await.unwrap();
    let spammer = EmailAddress::parse("x@spam.example").unwrap();
    let raws: [&[u8]; 4] = [b"m1\r\n", b"m22\r\n", b"m333\r\n", b"m4444\r\n"];
    let in_folder = |u: &'static str, raw: &'static [u8], folder: Option<&'static str>| {
        let mut item = held(u, raw, Some(&spammer));
        if let PollItem::Quarantine { imap_folder, .. } = &mut item {
            *imap_folder = folder;
        }
        item
    };
    // Three go to Quorum/Held, the fourth to Quorum/Deleted (deleted on arrival).
    let items: Vec<PollItem> = ["a", "b", "c", "d"]
        .iter()
        .zip(raws)
        .enumerate()
        .map(|(i, (u, raw))| in_folder(u, raw, Some(if i < 3 { "held" } else { "deleted" })))
        .collect();
    let stored: Vec<i64> =
        db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, T0).await.unwrap().into_iter().flatten().collect();
    // The same bytes stored again without a folder (a POP3 item) are the same messages,
    // their folders unchanged.
    let again: Vec<PollItem> = ["a2", "b2"].iter().zip(raws).map(|(u, raw)| in_folder(u, raw, None)).collect();
    let same = db.commit_poll(ids.mailbox_id, ids.subscriber_id, &again, T0).await.unwrap();
    assert_eq!(same.into_iter().flatten().collect::<Vec<_>>(), stored[..2]);
    assert!(db.held_copies_decided(ids.mailbox_id).await.unwrap().is_empty(), "all still held");

    let rcpt = EmailAddress::parse("imap@example.org").unwrap();
    // Deleted at the subscriber's word; released; purged; and one never in Quorum/Held.
    assert!(db.reject_message(ids.subscriber_id, ids.mailbox_id, stored[0], None, "deleted_spam", T0).await.unwrap());
    assert_eq!(db.queue_release(ids.mailbox_id, ReleaseSelection::One(stored[1]), &rcpt, T0).await.unwrap(), 1);
    assert!(db.purge_message(stored[2], T0).await.unwrap());
    assert!(db.reject_message(ids.subscriber_id, ids.mailbox_id, stored[3], None, "deleted_spam", T0).await.unwrap());
    let due = db.held_copies_decided(ids.mailbox_id).await.unwrap();
    let mut got: Vec<(i64, i64, Vec<u8>)> = due.into_iter().map(|c| (c.message_id, c.size, c.content_hash)).collect();
    got.sort();
    let want: Vec<(i64, i64, Vec<u8>)> =
        [0, 2].iter().map(|&i| (stored[i], raws[i].len() as i64, MessageHash::of(raws[i]).0.to_vec())).collect();
    assert_eq!(got, want);
    db.set_imap_folder(ids.mailbox_id, &[stored[0]], Some("deleted")).await.unwrap();
    db.set_imap_folder(ids.mailbox_id, &[stored[2]], None).await.unwrap();
    assert!(db.held_copies_decided(ids.mailbox_id).await.unwrap().is_empty());
    // Another mailbox's ids change nothing here.
    db.set_imap_folder(ids.mailbox_id + 1, &stored, Some("held")).await.unwrap();
    assert!(db.held_copies_decided(ids.mailbox_id).await.unwrap().is_empty());
    // Released messages are found by their bytes; the others are not.
    let hashes: Vec<MessageHash> = raws.iter().map(|r| MessageHash::of(r)).collect();
    assert_eq!(db.released_among(ids.mailbox_id, &hashes).await.unwrap(), vec![(hashes[1], stored[1])]);
    assert!(db.released_among(ids.mailbox_id + 1, &hashes).await.unwrap().is_empty());

    // New mail announced (IDLE) while a poll runs keeps the mailbox due after it; without an
    // announcement the next poll waits for the interval.
    let second = Duration::from_secs(1);
    for announced in [true, false] {
        let start = T0.plus(Duration::from_secs(if announced { 10 } else { 1000 }));
        let due = db.lease_due_mailboxes("w", start, start.plus(second * 600), 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.mailbox_id).collect::<Vec<_>>(), [ids.mailbox_id]);
        if announced {
            db.poll_soon(ids.mailbox_id, start.plus(second * 2)).await.unwrap();
        }
        let outcome = PollOutcome {
            status: PollStatus::Ok,
            error: None,
            polled_at: start,
            next_poll_at: start.plus(second * 180),
            quarantined: 0,
            kept: 0,
        };
        assert!(db.finish_poll(ids.mailbox_id, "w", &outcome).await.unwrap());
        let after = start.plus(second * 3);
        let again = db.lease_due_mailboxes("w2", after, after.plus(second * 600), 10).await.unwrap();
        assert_eq!(again.len(), usize::from(announced), "announced: {announced}");
        db.release_leases("w2").await.unwrap();
    }
}

/// IDLE watch claims: one worker's live claim keeps others out; the owner renews it; it
/// runs out, is given up, or goes with the worker's leases.
async fn idle_watch_claims(db: impl Database) {
    db.migrate().await.unwrap();
    let a = db.add_subscriber(&new_subscriber("a@example.org"), T0).await.unwrap().mailbox_id;
    let b = db.add_subscriber(&new_subscriber("b@example.org"), T0).await.unwrap().mailbox_id;
    let minute = Duration::from_secs(60);
    let until = T0.plus(minute * 10);
    assert!(db.claim_watch(a, "w1", until, T0).await.unwrap());
    assert!(!db.claim_watch(a, "w2", until, T0).await.unwrap(), "w1's claim is live");
    assert!(db.claim_watch(b, "w2", until, T0).await.unwrap(), "another mailbox is free");
    // The owner renews; nobody else can while the renewed claim lives.
    assert!(db.claim_watch(a, "w1", T0.plus(minute * 20), T0.plus(minute * 5)).await.unwrap());
    assert!(!db.claim_watch(a, "w2", T0.plus(minute * 30), T0.plus(minute * 15)).await.unwrap());
    // Run out (its worker died): the next worker takes it.
    assert!(db.claim_watch(a, "w2", T0.plus(minute * 40), T0.plus(minute * 20)).await.unwrap());
    assert!(!db.claim_watch(a, "w1", T0.plus(minute * 40), T0.plus(minute * 21)).await.unwrap());
    // Given up by someone who does not hold it: nothing changes; by its owner: free.
    db.release_watch(a, "w1").await.unwrap();
    assert!(!db.claim_watch(a, "w3", T0.plus(minute * 40), T0.plus(minute * 22)).await.unwrap());
    db.release_watch(a, "w2").await.unwrap();
    assert!(db.claim_watch(a, "w3", T0.plus(minute * 40), T0.plus(minute * 22)).await.unwrap());
    // A worker's claims go with its leases (it stopped, or restarted under its name).
    db.release_leases("w2").await.unwrap();
    assert!(db.claim_watch(b, "w1", T0.plus(minute * 40), T0.plus(minute * 23)).await.unwrap());
    assert!(!db.claim_watch(a, "w1", T0.plus(minute * 40), T0.plus(minute * 23)).await.unwrap(), "w3's stays");
}

/// A poll's messages and UIDLs are written in multi-row statements: many of them at once
/// (more than one statement's rows), each message's id its own, the same bytes twice in one
/// commit (one row, its folder from the copy that names one), and the same UIDL twice
/// (its last fate stands; neither database may refuse a statement that writes one row
/// twice).
async fn many_uidls_in_one_commit(db: impl Database) {
    db.migrate().await.unwrap();
    let ids = db.add_subscriber(&new_subscriber("many@example.org"), T0).await.unwrap();
    let uidls: Vec<String> = (0..150).map(|i| format!("u{i}")).collect();
    let raws: Vec<Vec<u8>> = (0..150).map(|i| format!("m{i}\r\n").into_bytes()).collect();
    let mut items: Vec<PollItem> = uidls.iter().zip(&raws).map(|(u, raw)| held(u, raw, None)).collect();
    items.push(PollItem::Keep { uidl: "u7", approved: None, campaign: None, reputation: &[] });
    // Message 3's bytes again under another UIDL, this copy bound for a folder.
    let mut again = held("again", &raws[3], None);
    if let PollItem::Quarantine { imap_folder, .. } = &mut again {
        *imap_folder = Some("held");
    }
    items.push(again);
    let stored = db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, T0).await.unwrap();
    assert_eq!(stored.iter().flatten().count(), 151);
    for (id, raw) in stored.iter().zip(&raws) {
        assert_eq!(&db.message_raw(id.unwrap()).await.unwrap(), raw);
    }
    assert_eq!(stored[151], stored[3], "the same bytes are one message");
    assert_eq!(stored[150], None, "kept");
    // Its folder is the copy's: decided, it is the one held copy due to move on.
    let three = stored[3].unwrap();
    assert!(db.reject_message(ids.subscriber_id, ids.mailbox_id, three, None, "deleted_spam", T0).await.unwrap());
    let due = db.held_copies_decided(ids.mailbox_id).await.unwrap();
    assert_eq!(due.iter().map(|c| c.message_id).collect::<Vec<_>>(), [three]);
    let known = db.known_uidls(ids.mailbox_id).await.unwrap();
    assert_eq!(known.len(), 151);
    for k in &known {
        let want = if k.uidl == "u7" { UidlDisposition::Kept } else { UidlDisposition::Quarantined };
        assert_eq!(k.disposition, want, "{}", k.uidl);
    }
}

on_both_databases!(
    many_uidls_in_one_commit,
    idle_watch_claims,
    imap_folders,
    subscriber_changes_and_removal,
    reputation_tables,
    web_accounts,
    campaigns,
    statistics_tables,
    confirmations,
    providers_and_rechecks,
    votes_blocks_and_summaries,
    subscribers_and_leases,
    quarantine_and_uidls,
    release_outbox,
    summaries_schedule_and_retention,
    concurrent_leases
);

#[tokio::test]
async fn sqlite_file_is_created_with_wal() {
    let (dir, _) = fresh_sqlite();
    let url = format!("sqlite://{}/nested/folder/q.db", dir.path().display());
    let db = Sqlite::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(db.pool()).await.unwrap();
    assert_eq!(mode, "wal");
    assert!(dir.path().join("nested/folder/q.db").exists());
}
