//! One poll of one mailbox (SPEC 2.1), POP3 or IMAP ([`crate::maildrop`]).
//!
//! Order of events, and why nothing can be lost or doubled:
//! 1. UIDL (IMAP: UID FETCH of the Inbox) lists the server's messages; those already handled are skipped, except ones
//!    whose bytes are already quarantined (a previous poll crashed before DELE or QUIT):
//!    those are fetched again and deleted only if their content hash matches what is
//!    stored, so a server that reuses a UIDL for new mail cannot make us delete it unseen.
//! 2. New messages are retrieved in batches (pipelined), checked for forgery (all of a
//!    batch at once, each check within the DNS budget, so a dead resolver costs a batch at
//!    most that budget), and each batch is committed in one transaction: bytes, UIDL,
//!    disposition and check results together.
//! 3. Only then are the quarantined ones deleted (DELE), and QUIT makes that final; over
//!    IMAP they are moved to `Quorum/Held` or `Quorum/Deleted` instead.
//!
//! A crash before 2 commits leaves the messages on the server, new again next time. A crash
//! between 2 and QUIT (the MOVE) leaves them on the server *and* in the quarantine, marked
//! by UIDL, so the next poll only takes them out. The content hash catches a server that renumbers its
//! UIDLs: the same bytes get the new UIDL but no second copy.

use futures::FutureExt;
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use quorum_domain::{Disposition, EmailAddress, InspectedMessage, Keys, MessageHash, ReleaseMarker, Timestamp};
use quorum_fingerprint::Fingerprint;
use quorum_forgery::{Checked, Checker, Providers};
use quorum_imap::ImapError;
use quorum_pop3::{ConnectOptions, Pop3Error};
use quorum_statistics::Statistics;
use quorum_storage::{
    CheckRecord, Database, KnownUidl, LeasedMailbox, PollItem, StorageError, UNCLASSIFIED, UidlDisposition,
};

use crate::{
    fail_point,
    failpoint::{guarded, panic_point, panic_text},
    maildrop::{MailError, Maildrop, Place, Removal},
};

/// Bytes of messages retrieved before they are committed: bounds memory per mailbox and
/// the work a crash can make us redo, while keeping transactions few.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "the stored mailbox password cannot be decrypted (was the master key or the subscriber's address changed?)"
    )]
    Password,
    #[error("login failed: {0}. Check the user name and password")]
    Login(MailError),
    #[error("mailbox busy, will retry: {0}")]
    Busy(MailError),
    #[error("{0}")]
    Server(MailError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("the session took longer than {0} s (9/10 of the lease) and was cut short; what was stored stays")]
    Deadline(u64),
    #[error("internal error while polling: {0}")]
    Internal(String),
}

impl PollError {
    pub fn is_busy(&self) -> bool {
        matches!(self, PollError::Busy(_))
    }
}

impl From<MailError> for PollError {
    fn from(e: MailError) -> Self {
        if e.is_transient() {
            PollError::Busy(e)
        } else if e.is_auth_failure() {
            PollError::Login(e)
        } else {
            PollError::Server(e)
        }
    }
}

impl From<Pop3Error> for PollError {
    fn from(e: Pop3Error) -> Self {
        MailError::from(e).into()
    }
}

impl From<ImapError> for PollError {
    fn from(e: ImapError) -> Self {
        MailError::from(e).into()
    }
}

#[derive(Debug, Default, Clone)]
pub struct PollReport {
    /// Taken out of the mailbox (held, or deleted as forged or blocked).
    pub quarantined: i64,
    /// Of those, deleted as forged.
    pub forged: i64,
    /// Of those, deleted as statistically certain spam.
    pub statistical: i64,
    pub kept: i64,
    /// Messages left on the server with the reason (too large, refused by the server).
    pub skipped: Vec<String>,
}

/// Why a held message goes when Quorum's confirmation about it arrives in the same mailbox.
const ALIAS_REASON: &str =
    "forged: the sender is an alias of this mailbox (Quorum's confirmation to it came back here)";

pub async fn poll_mailbox<DB: Database>(
    db: &DB,
    keys: &Keys,
    checker: &Checker,
    statistics: Option<&Statistics>,
    options: &ConnectOptions,
    mailbox: &LeasedMailbox,
) -> Result<PollReport, PollError> {
    let password = keys
        .decrypt_password(&mailbox.settings.password_enc, mailbox.email.as_str())
        .map_err(|_| PollError::Password)?;
    let mut drop = Maildrop::open(options, mailbox, password.expose()).await?;
    // IMAP: copies in Quorum/Held of messages decided since go on to Quorum/Deleted (a POP3
    // mailbox has no such copies: no query for it).
    if drop.is_imap() {
        let decided = db.held_copies_decided(mailbox.mailbox_id).await?;
        let (moved, gone) = drop.clear_held(&decided).await?;
        db.set_imap_folder(mailbox.mailbox_id, &moved, Some("deleted")).await?;
        db.set_imap_folder(mailbox.mailbox_id, &gone, None).await?;
    }
    let on_server = drop.entries().await?;
    let known: HashMap<String, KnownUidl> =
        db.known_uidls(mailbox.mailbox_id).await?.into_iter().map(|k| (k.uidl.clone(), k)).collect();

    let present: HashSet<&str> = on_server.iter().map(|e| e.uidl.as_str()).collect();
    let gone: Vec<String> = known.keys().filter(|u| !present.contains(u.as_str())).cloned().collect();
    if !gone.is_empty() {
        db.forget_uidls(mailbox.mailbox_id, &gone).await?;
    }

    let mut report = PollReport::default();
    let mut wanted: Vec<Wanted> = Vec::new();
    for entry in &on_server {
        let (n, uidl, size) = (&entry.id, &entry.uidl, entry.size);
        let stored = match known.get(uidl) {
            Some(k) if k.disposition == UidlDisposition::Kept => continue,
            // Quarantined before, but a crash or a lost connection kept it from being
            // taken out (over IMAP without MOVE, perhaps only marked `\Deleted`). Fetch it
            // again and take it out only if it is still the same bytes.
            Some(k) => k.hash.map(|h| (h, if k.held { Place::Held } else { Place::Deleted })),
            // Another client marked it `\Deleted`: on its way out at that client's request,
            // not Quorum's to take.
            None if entry.deleted => continue,
            None => None,
        };
        if size > options.max_message_size {
            report.skipped.push(format!(
                "message {uidl} ({size} bytes) is over the {} byte limit and stays in the mailbox",
                options.max_message_size
            ));
        } else {
            wanted.push(Wanted { n: *n, uidl, size, stored });
        }
    }

    let now = Timestamp::now();
    let approved_since = now.minus(Duration::from_secs((mailbox.approved_days.max(0) as u64).saturating_mul(86_400)));
    let approved: HashSet<_> = db.approved_senders(mailbox.subscriber_id, approved_since).await?.into_iter().collect();
    let disapproved: HashSet<_> = db.disapproved_senders(mailbox.subscriber_id).await?.into_iter().collect();
    let providers = &Providers::new(db.providers().await?);

    // What to take out of the mailbox, where to, and the stored message it is.
    let mut to_remove: Vec<Removal> = Vec::new();
    for batch in batches(&wanted) {
        let requests: Vec<(u32, u64)> = batch.iter().map(|w| (w.n, w.size)).collect();
        let retrieved = drop.retrieve(&requests).await;
        fail_point("after-retr");
        let mut inspected = Vec::with_capacity(retrieved.messages.len());
        // Per inspected message: why it could not be classified (a step panicked), if it
        // could not. Such a message is held with that reason and judged by no one.
        let mut trouble: Vec<Option<String>> = Vec::with_capacity(retrieved.messages.len());
        for (result, w) in retrieved.messages.into_iter().zip(batch) {
            match result {
                Ok(raw) => {
                    let (info, failed) = match guarded("reading the headers", || InspectedMessage::parse(&raw)) {
                        Ok(info) => (info, None),
                        Err(e) => (InspectedMessage::unread(&raw), Some(e)),
                    };
                    match w.stored {
                        Some((hash, place)) if hash == info.hash => {
                            to_remove.push(Removal { id: w.n, place, size: w.size, hash })
                        }
                        _ => {
                            inspected.push((w, raw, info));
                            trouble.push(failed);
                        }
                    }
                }
                Err(e) => report.skipped.push(format!("message {} stays in the mailbox: {e}", w.uidl)),
            }
        }
        let mut dispositions = Vec::with_capacity(inspected.len());
        let mut own_confirmations = Vec::with_capacity(inspected.len());
        // IMAP: messages a release moved back to the Inbox, known by their bytes (one query
        // for the batch). Not by Quorum's keyword alone: a server may not keep keywords.
        let moved_back: HashMap<MessageHash, i64> = match drop.is_imap() {
            true => {
                let hashes: Vec<MessageHash> = inspected.iter().map(|(_, _, info)| info.hash).collect();
                db.released_among(mailbox.mailbox_id, &hashes).await?.into_iter().collect()
            }
            false => HashMap::new(),
        };
        for ((w, raw, info), failed) in inspected.iter().zip(&trouble) {
            if failed.is_some() {
                own_confirmations.push(false);
                dispositions.push(Disposition::Quarantine);
                continue;
            }
            // Our own confirmation arrived here: the held message's sender is an alias of
            // this mailbox (SPEC 2.1 step 2). Both go.
            let own = match quorum_challenge::own_confirmation(raw, keys, now) {
                Some(original) => db.confirmation(original).await?.filter(|c| c.mailbox_id == mailbox.mailbox_id),
                None => None,
            };
            if let Some(c) = &own {
                db.mark_deleted(mailbox.mailbox_id, c.message_id, "deleted_forged", ALIAS_REASON, now).await?;
            }
            own_confirmations.push(own.is_some());
            let moved_back = moved_back.get(&info.hash).copied();
            let mut disposition = match moved_back {
                Some(id) => Disposition::Released(ReleaseMarker::release(mailbox.mailbox_id, id, now)),
                None => info.disposition(mailbox.mailbox_id, keys, &approved),
            };
            if let Disposition::Released(marker) = disposition
                && moved_back.is_none()
                && !marker_holds(db, mailbox.mailbox_id, &marker, raw, now).await?
            {
                tracing::warn!(
                    mailbox = mailbox.mailbox_id,
                    uidl = w.uidl,
                    "a copied or stale release marker; quarantined"
                );
                disposition = Disposition::Quarantine;
            }
            dispositions.push(disposition);
        }
        // The subscriber deleted mail from this sender before (empty box): such mail is
        // deleted too, and never shown in a summary; it needs no checks.
        let blocked = |info: &InspectedMessage| info.from.as_ref().is_some_and(|f| disapproved.contains(f));
        // Forgery checks (SPEC 3) for everything not released by Quorum itself, all of the
        // batch at once: the checker bounds concurrency and each check's time.
        let checks = inspected.iter().zip(&dispositions).zip(&own_confirmations).zip(&trouble).map(
            |((((_, raw, info), disposition), own), failed)| async move {
                let wanted =
                    !matches!(disposition, Disposition::Released(_)) && !blocked(info) && !own && failed.is_none();
                if !wanted {
                    return Ok(None);
                }
                let check = checker.check(raw, providers, &mailbox.settings.trusted_domains);
                match std::panic::AssertUnwindSafe(check).catch_unwind().await {
                    Ok(evidence) => Ok(Some(Checked::from(evidence))),
                    Err(payload) => Err(panic_text("the forgery checks", payload.as_ref())),
                }
            },
        );
        let mut checked: Vec<Option<Checked>> = Vec::with_capacity(inspected.len());
        for (i, result) in futures::future::join_all(checks).await.into_iter().enumerate() {
            match result {
                Ok(check) => checked.push(check),
                Err(e) => {
                    checked.push(None);
                    trouble[i] = Some(e);
                }
            }
        }
        // Fingerprints: for the campaigns of what the statistics judge and what an Inbox
        // delivery approves (forged, blocked and Quorum's own mail is no evidence), and for
        // the keys of everything quarantined. One lookup and one write for the whole batch.
        let fingerprinting = statistics.is_some_and(Statistics::fingerprints);
        let mut for_campaign = Vec::with_capacity(inspected.len());
        let mut wanted = Vec::with_capacity(inspected.len());
        for (i, ((((_, raw, info), disposition), check), own)) in
            inspected.iter().zip(&dispositions).zip(&checked).zip(&own_confirmations).enumerate()
        {
            let forged = check.as_ref().is_some_and(|c| c.evidence.is_forged());
            let released = matches!(disposition, Disposition::Released(_));
            let campaign = fingerprinting && !own && !forged && !released && !blocked(info) && trouble[i].is_none();
            let keys = !kept(disposition, check.as_ref()) && !own && trouble[i].is_none();
            for_campaign.push(campaign);
            wanted.push((&raw[..], campaign || keys));
        }
        let mut made: Vec<Option<Fingerprint>> = Vec::with_capacity(inspected.len());
        for (i, result) in fingerprints(&wanted).into_iter().enumerate() {
            match result {
                Ok(fingerprint) => made.push(fingerprint),
                Err(e) => {
                    made.push(None);
                    trouble[i] = Some(e);
                }
            }
        }
        let fingerprints: Vec<Option<&Fingerprint>> =
            made.iter().zip(&for_campaign).map(|(f, &campaign)| f.as_ref().filter(|_| campaign)).collect();
        let campaigns = quorum_statistics::campaigns::assign(db, &fingerprints, now).await?;
        // Each message's fate, in order; the items to commit borrow from it.
        let mut fates: Vec<Fate> = Vec::with_capacity(inspected.len());
        for ((((((((w, raw, info), disposition), check), own), campaign), fingerprint), made), failed) in inspected
            .iter()
            .zip(dispositions)
            .zip(&checked)
            .zip(own_confirmations)
            .zip(campaigns)
            .zip(&fingerprints)
            .zip(&made)
            .zip(&mut trouble)
        {
            let forged = check.as_ref().is_some_and(|c| c.evidence.is_forged());
            if kept(&disposition, check.as_ref()) && !own {
                report.kept += 1;
                let approved = matches!(disposition, Disposition::Approved(_)).then_some(info.from.as_ref()).flatten();
                // An approved sender's delivery is ham in the reputation tables (by the
                // fingerprint made for its campaign's approval, when campaigns are on).
                let reputation = match approved {
                    Some(from) => quorum_reputation::keys(&quorum_reputation::Facts {
                        handoff: check.as_ref().and_then(|c| c.evidence.handoff),
                        from: Some(from.as_str()),
                        fingerprint: *fingerprint,
                    }),
                    None => Vec::new(),
                };
                fates.push(Fate::Keep { uidl: w.uidl, approved, campaign: approved.and(campaign), reputation });
                continue;
            }
            // What the keys are made of: the fingerprint (made above) and the handoff IP (the
            // forgery check found it already; without checks, read the chain).
            let handoff = match (own, &failed) {
                (false, None) => guarded("the evidence keys", || {
                    panic_point("classify", raw);
                    match check {
                        Some(c) => c.evidence.handoff,
                        None => quorum_statistics::keys::handoff(raw, &mailbox.settings.trusted_domains),
                    }
                })
                .map_err(|e| *failed = Some(e))
                .ok()
                .flatten(),
                _ => None,
            };
            let fingerprint = fingerprint.or(made.as_ref());
            // The operators' reputation tables count all quarantined mail, forged and
            // blocked included (their counts are the point).
            let reputation = quorum_reputation::keys(&quorum_reputation::Facts {
                handoff,
                from: info.from.as_ref().map(EmailAddress::as_str),
                fingerprint,
            });
            // The statistics (SPEC 2.2): certain spam is deleted. Forged or blocked mail is
            // decided already. A probe's mail is all spam: not judged, but its keys are
            // kept like everyone's, for its vote is on them.
            let stat_keys = match (statistics, info.from.as_ref()) {
                (Some(stats), Some(from)) if !own && !blocked(info) && !forged && failed.is_none() => {
                    Some(stats.evidence(&quorum_statistics::keys::Facts {
                        from: from.as_str(),
                        own_address: from == &mailbox.email,
                        major_isp: providers.get(from.domain()).is_some_and(|p| p.major_isp),
                        fingerprint,
                        campaign,
                        network: handoff.map(quorum_domain::received::network).as_deref(),
                    }))
                }
                _ => None,
            };
            let statistical = match (statistics, &stat_keys) {
                (Some(stats), Some(keys)) if !mailbox.spam_probe => {
                    let judge = std::panic::AssertUnwindSafe(stats.judge(mailbox.subscriber_id, keys));
                    match judge.catch_unwind().await {
                        Ok(judgement) => judgement.delete().then(|| Statistics::reason(&judgement)),
                        Err(payload) => {
                            *failed = Some(panic_text("the statistics", payload.as_ref()));
                            None
                        }
                    }
                }
                _ => None,
            };
            // What could not be classified is held, judged by no one, and says why.
            let (stat_keys, statistical) = match failed {
                Some(_) => (None, None),
                None => (stat_keys, statistical),
            };
            let unclassified = failed.as_ref().map(|e| format!("{UNCLASSIFIED}{e}"));
            if let Some(why) = &unclassified {
                tracing::error!(mailbox = mailbox.mailbox_id, uidl = w.uidl, reason = %why, "message held unclassified");
            }
            let status = if own {
                "own_confirmation"
            } else if blocked(info) {
                "deleted_blocked"
            } else if forged {
                "deleted_forged"
            } else if mailbox.spam_probe {
                "probe_spam"
            } else if statistical.is_some() {
                "deleted_statistical"
            } else {
                "held"
            };
            if !own {
                report.quarantined += 1;
                report.forged += i64::from(forged);
                report.statistical += i64::from(statistical.is_some());
            }
            // SPEC 2.4: only where the sender's domain vouches for the message.
            let vouched = check.as_ref().is_some_and(|c| c.evidence.authenticated);
            let confirm = (status == "held" && vouched && mailbox.confirmations && unclassified.is_none())
                .then(|| quorum_challenge::confirmable(raw).ok())
                .flatten();
            fates.push(Fate::Quarantine {
                removal: Removal {
                    id: w.n,
                    // Over IMAP, only what the subscriber is to decide on goes to Quorum/Held.
                    place: if status == "held" { Place::Held } else { Place::Deleted },
                    size: w.size,
                    hash: info.hash,
                },
                uidl: w.uidl,
                status,
                raw,
                info,
                check: check.as_ref(),
                statistical,
                confirm,
                campaign,
                stat_keys: stat_keys.as_deref().map(quorum_statistics::keys::encode),
                unclassified,
                reputation,
            });
        }
        let items: Vec<PollItem> = fates.iter().map(|f| f.item(drop.is_imap())).collect();
        // What arrived is committed even when the connection broke mid-batch, so the next
        // poll starts after it instead of fetching it again.
        db.commit_poll(mailbox.mailbox_id, mailbox.subscriber_id, &items, now).await?;
        to_remove.extend(fates.iter().filter_map(|f| match f {
            Fate::Quarantine { removal, .. } => Some(*removal),
            Fate::Keep { .. } => None,
        }));
        fail_point("after-commit");
        if let Some(e) = retrieved.broken {
            return Err(e.into());
        }
    }

    // Only committed messages are taken out (durability rule, SPEC 2.1).
    report.skipped.extend(drop.remove(&to_remove).await?);
    fail_point("after-dele");
    drop.finish().await?;
    Ok(report)
}

/// Whether a verified release marker really names this message: a release must carry the
/// released message's original bytes (so a marker copied onto other mail does not hold),
/// and a marker on one of Quorum's notices must be fresh.
async fn marker_holds<DB: Database>(
    db: &DB,
    mailbox_id: i64,
    marker: &ReleaseMarker,
    raw: &[u8],
    now: Timestamp,
) -> Result<bool, StorageError> {
    if marker.is_notice() {
        let age = now.0 - marker.issued_at;
        return Ok((-300..=ReleaseMarker::NOTICE_VALIDITY_SECS).contains(&age));
    }
    Ok(db
        .released_raw(mailbox_id, marker.message_id)
        .await?
        .is_some_and(|original| raw.ends_with(&quorum_domain::release::as_reinjected(&original))))
}

/// What happens to one retrieved message.
enum Fate<'a> {
    Keep {
        uidl: &'a str,
        approved: Option<&'a EmailAddress>,
        /// The campaign an Inbox delivery from an approved sender approves.
        campaign: Option<i64>,
        /// The reputation tables' keys of an approved sender's delivery.
        reputation: Vec<quorum_reputation::Key>,
    },
    Quarantine {
        /// Its number in this session, where IMAP moves it, its size and hash.
        removal: Removal,
        uidl: &'a str,
        status: &'static str,
        raw: &'a [u8],
        info: &'a InspectedMessage,
        check: Option<&'a Checked>,
        /// Why the statistics delete it.
        statistical: Option<String>,
        /// A confirmation may go to this sender (queued with the message).
        confirm: Option<EmailAddress>,
        campaign: Option<i64>,
        /// The statistics' keys ([`quorum_statistics::keys::encode`]).
        stat_keys: Option<String>,
        /// Why it could not be classified ([`UNCLASSIFIED`]), if a step failed.
        unclassified: Option<String>,
        /// The reputation tables' keys.
        reputation: Vec<quorum_reputation::Key>,
    },
}

impl Fate<'_> {
    /// What the commit stores; `imap`: the mailbox is on IMAP, where the message's folder
    /// is recorded with it.
    fn item(&self, imap: bool) -> PollItem<'_> {
        match self {
            Fate::Keep { uidl, approved, campaign, reputation } => {
                PollItem::Keep { uidl, approved: *approved, campaign: *campaign, reputation }
            }
            Fate::Quarantine {
                uidl,
                status,
                raw,
                info,
                check,
                statistical,
                campaign,
                stat_keys,
                unclassified,
                confirm,
                reputation,
                removal,
                ..
            } => {
                PollItem::Quarantine {
                    uidl,
                    status,
                    raw,
                    hash: info.hash,
                    from: info.from.as_ref(),
                    from_name: info.from_name.as_deref(),
                    subject: info.subject.as_deref(),
                    checked: match (check, unclassified) {
                        (Some(c), _) => {
                            let record = c.record();
                            let reason = unclassified.as_deref().or(statistical.as_deref()).or(record.reason);
                            Some(CheckRecord { reason, ..record })
                        }
                        // No checks ran (they failed): only the reason is stored.
                        (None, Some(why)) => {
                            Some(CheckRecord { evidence: "null", reason: Some(why), incomplete: false })
                        }
                        (None, None) => None,
                    },
                    campaign: *campaign,
                    stat_keys: stat_keys.as_deref(),
                    confirm_to: confirm.as_ref(),
                    reputation,
                    imap_folder: imap.then_some(match removal.place {
                        Place::Held => "held",
                        Place::Deleted => "deleted",
                    }),
                }
            }
        }
    }
}

/// A message to retrieve: new, or quarantined before but still on the server.
struct Wanted<'a> {
    n: u32,
    uidl: &'a str,
    size: u64,
    /// The content hash already stored under this UIDL, if any, and where it goes.
    stored: Option<(MessageHash, Place)>,
}

/// Whether a message stays in the mailbox: Quorum's own release, or an approved sender's
/// mail unless the checks prove it forged or its domain's DMARC fails (SPEC 3: a spoofed
/// approved sender).
fn kept(disposition: &Disposition, check: Option<&Checked>) -> bool {
    match disposition {
        Disposition::Released(_) => true,
        Disposition::Approved(_) => check.is_none_or(|c| !c.evidence.is_forged() && !c.evidence.fails_dmarc()),
        Disposition::Quarantine => false,
    }
}

/// The fingerprints of the messages `wanted`, made on every core: the min-hash of a
/// message's text is the costliest step of a poll (0.33 s of 0.97 s for 2,000 corpus
/// messages in the drain bench), and a batch holds hundreds of independent messages. Each
/// is guarded like every step of the classification: a panic holds that message alone.
fn fingerprints(wanted: &[(&[u8], bool)]) -> Vec<Result<Option<Fingerprint>, String>> {
    let make = |part: &[(&[u8], bool)]| -> Vec<Result<Option<Fingerprint>, String>> {
        part.iter().map(|&(raw, wanted)| guarded("the fingerprint", || wanted.then(|| Fingerprint::of(raw)))).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // Below a few messages a core each, a thread costs more than it saves.
    if cores == 1 || wanted.iter().filter(|w| w.1).count() < 4 * cores {
        return make(wanted);
    }
    std::thread::scope(|scope| {
        // A thread the system refuses (out of threads or memory) leaves its part to this one.
        let parts: Vec<_> = wanted
            .chunks(wanted.len().div_ceil(cores))
            .map(|part| (part, std::thread::Builder::new().spawn_scoped(scope, move || make(part))))
            .collect();
        parts
            .into_iter()
            .flat_map(|(part, thread)| match thread {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| vec![Err("the fingerprint: its thread ended".to_string()); part.len()]),
                Err(_) => make(part),
            })
            .collect()
    })
}

/// Splits the messages into runs of at most [`BATCH_BYTES`] (at least one message).
fn batches<'w, 'a>(wanted: &'w [Wanted<'a>]) -> impl Iterator<Item = &'w [Wanted<'a>]> {
    let mut rest = wanted;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0u64;
        let mut len = 0;
        while len < rest.len() && (len == 0 || total + rest[len].size <= BATCH_BYTES) {
            total += rest[len].size;
            len += 1;
        }
        let (batch, tail) = rest.split_at(len);
        rest = tail;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_byte_budget_and_never_stall() {
        let m = |size| Wanted { n: 1, uidl: "u", size, stored: None };
        let wanted = vec![m(10), m(BATCH_BYTES), m(BATCH_BYTES * 3), m(5), m(6)];
        let sizes: Vec<Vec<u64>> = batches(&wanted).map(|b| b.iter().map(|w| w.size).collect()).collect();
        assert_eq!(sizes, vec![vec![10], vec![BATCH_BYTES], vec![BATCH_BYTES * 3], vec![5, 6]]);
        assert_eq!(batches(&[]).count(), 0);
    }

    #[test]
    fn fingerprints_made_on_every_core_come_back_in_order() {
        // Enough messages for the threads (4 a core or more), each with its own text; every
        // third one not wanted.
        let raws: Vec<Vec<u8>> = (0..101)
            .map(|i| {
                let words: Vec<String> = (0..40).map(|w| format!("word{}x{}", i * 7 + w, w % (i + 2))).collect();
                format!("From: a{i}@example.org\r\nSubject: {i}\r\n\r\nhttp://site{i}.example/ {}\r\n", words.join(" "))
                    .into_bytes()
            })
            .collect();
        let wanted: Vec<(&[u8], bool)> = raws.iter().enumerate().map(|(i, r)| (&r[..], i % 3 != 0)).collect();
        let made = fingerprints(&wanted);
        assert_eq!(made.len(), raws.len());
        // Distinct texts, so an order mixed up shows.
        let signatures: HashSet<Vec<u64>> = made.iter().flatten().flatten().map(|f| f.signature.clone()).collect();
        assert_eq!(signatures.len(), 67);
        for ((raw, wanted), made) in wanted.iter().zip(made) {
            assert_eq!(made, Ok(wanted.then(|| Fingerprint::of(raw))));
        }
    }
}
