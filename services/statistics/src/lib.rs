//! The collaborative statistics (SPEC 4) in the running service. Each process that
//! classifies mail (the worker, the scheduler before a summary) keeps a
//! [`quorum_stats::Engine`] fed from the stored votes: [`Statistics::sync`] reads the
//! votes cast since its last read, refreshes what they touched, and writes the operator's
//! tables (trust, correlations, the touched evidence keys' standing). Processes on other
//! machines read the same votes, so they converge on the same statistics.
//!
//! The statistics' own deletions are read back too: each is a label of its recipient's mail
//! that no answer gives, and the recipient's prior counts it ([`Engine::deleted`]).
//!
//! Every classifier builds a message's keys with [`keys::evidence`] and judges them with
//! [`Statistics::judge`] (the same [`quorum_stats::Engine::judge`] `quorum simulate` runs).
//! A stored vote is on every key of the voted message (kept with it at the poll,
//! `messages.stat_keys`) and, with `[statistics] fingerprints`, on its campaign
//! ([`campaigns`]).

pub mod campaigns;
pub mod keys;

use std::collections::{HashMap, HashSet};

use quorum_config::StatisticsSettings;
use quorum_domain::Timestamp;
use quorum_stats::{Engine, Evidence, EvidenceUnit, Judgement, KeyKind, Settings, TrustStatus, Vote};
use quorum_storage::{
    CampaignVoteCursor, CorrelationRow, Database, DeletionCursor, KeyRow, StatisticsUpdate, StorageError, TrustRow,
    VoteCursor,
};
use tokio::sync::Mutex;

/// Votes read per query while catching up.
const PAGE: i64 = 10_000;

pub struct Statistics {
    /// Held by the sync in progress.
    syncing: Mutex<()>,
    delete_above: f64,
    fingerprints: bool,
    keep_campaigns: std::time::Duration,
    refresh_every: std::time::Duration,
    state: Mutex<State>,
}

struct State {
    engine: Engine,
    cursor: VoteCursor,
    campaign_cursor: CampaignVoteCursor,
    deletion_cursor: DeletionCursor,
    users: HashMap<i64, u32>,
    subscribers: Vec<i64>,
    /// The trust status last written per user: `(status, approvals, spam)`, so a refresh
    /// writes only the rows that changed.
    written: Vec<(TrustStatus, u32, u32)>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Votes read (on senders and on campaigns).
    pub votes: usize,
    /// Users whose statistics were recomputed.
    pub users: usize,
}

impl Statistics {
    pub fn new(settings: &StatisticsSettings) -> Self {
        // `[statistics] evidence` was validated when the settings were loaded.
        let unit: EvidenceUnit = settings.evidence.parse().unwrap_or_default();
        Statistics {
            syncing: Mutex::new(()),
            delete_above: settings.delete_above,
            fingerprints: settings.fingerprints,
            keep_campaigns: std::time::Duration::from_secs(settings.fingerprint_keep_days.max(1) as u64 * 86_400),
            refresh_every: std::time::Duration::from_secs(settings.refresh_secs),
            state: Mutex::new(State {
                engine: Engine::new(Settings { unit, ..Settings::default() }),
                cursor: VoteCursor::default(),
                campaign_cursor: CampaignVoteCursor::default(),
                deletion_cursor: DeletionCursor::default(),
                users: HashMap::new(),
                subscribers: Vec::new(),
                written: Vec::new(),
            }),
        }
    }

    /// Whether campaign fingerprints are evidence (`[statistics] fingerprints`).
    pub fn fingerprints(&self) -> bool {
        self.fingerprints
    }

    /// Forgets campaigns not seen for `[statistics] fingerprint_keep_days`, with their votes
    /// (this process's engine keeps what it read until it restarts; new mail cannot join a
    /// forgotten campaign). Returns how many went.
    pub async fn expire_campaigns<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<u64, StorageError> {
        db.expire_campaigns(now.minus(self.keep_campaigns)).await
    }

    /// How often a running worker should [`Statistics::sync`].
    pub fn refresh_every(&self) -> std::time::Duration {
        self.refresh_every
    }

    /// Reads the votes cast since the last sync, refreshes, and writes the operator's
    /// tables for what changed.
    pub async fn sync<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<Synced, StorageError> {
        self.read_votes(db, now, true).await
    }

    /// [`Statistics::sync`] without writing the operator's tables (`quorum explain`: no side
    /// effects).
    pub async fn load<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<Synced, StorageError> {
        self.read_votes(db, now, false).await
    }

    /// Reads the votes after the cursors page by page. Syncs run one at a time (they share
    /// the cursors); judging goes on meanwhile: the state is locked only to record a page
    /// and to refresh, never across a query.
    async fn read_votes<DB: Database>(&self, db: &DB, now: Timestamp, write: bool) -> Result<Synced, StorageError> {
        let _one_sync = self.syncing.lock().await;
        let probes: HashSet<i64> = db.spam_probes().await?.into_iter().collect();
        let (mut cursor, mut campaign_cursor, mut deletion_cursor) = {
            let mut state = self.state.lock().await;
            // Probes first: their votes are read as a probe's (they hold no lines).
            let known: Vec<(i64, u32)> = state.users.iter().map(|(s, u)| (*s, *u)).collect();
            for (subscriber, user) in known {
                state.engine.set_probe(user, probes.contains(&subscriber));
            }
            for &p in &probes {
                let user = state.user(p);
                state.engine.set_probe(user, true);
            }
            (state.cursor, state.campaign_cursor.clone(), state.deletion_cursor)
        };
        let mut touched: HashSet<(KeyKind, String)> = HashSet::new();
        let mut votes = 0;
        loop {
            let page = db.votes_after(cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            let mut state = self.state.lock().await;
            state.cursor = cursor;
            for v in &page {
                let vote = if v.verdict == "approve" { Vote::Ham } else { Vote::Spam };
                let user = state.user(v.subscriber_id);
                // The voted message's keys, all of them heard by its judgement; its campaign
                // takes the vote through the campaign votes (with the Inbox deliveries that
                // approve it). Messages from before the keys were kept: the sender and its
                // domain.
                let heard: Vec<Evidence> = match v.stat_keys.as_deref().and_then(keys::decode) {
                    Some(stored) => stored,
                    None => {
                        let unit = format!("s:{}", v.address);
                        vec![
                            Evidence::new(KeyKind::Sender, v.address.as_str(), unit.as_str()),
                            Evidence::new(KeyKind::Domain, v.domain.as_str(), unit.as_str()),
                        ]
                    }
                };
                let keys: Vec<Evidence> = heard.iter().filter(|k| k.kind != KeyKind::Campaign).cloned().collect();
                state.engine.record_heard(user, &v.domain, &heard, &keys, vote, v.created_at as f64);
                if let Some(shown) = v.shown_logit {
                    state.engine.answered(user, shown, vote, v.created_at as f64);
                }
                touched.extend(keys.into_iter().map(|k| (k.kind, k.key)));
            }
            votes += page.len();
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        // Campaign votes count only with `[statistics] fingerprints`.
        if self.fingerprints {
            loop {
                let page = db.campaign_votes_after(&campaign_cursor, PAGE).await?;
                let Some(last) = page.last() else { break };
                campaign_cursor = last.cursor();
                let mut state = self.state.lock().await;
                state.campaign_cursor = campaign_cursor.clone();
                for v in &page {
                    // An approval, or a copy that reached the Inbox from an approved sender.
                    let vote = if v.verdict == "spam" { Vote::Spam } else { Vote::Ham };
                    let user = state.user(v.subscriber_id);
                    let id = v.campaign_id.to_string();
                    let keys = [Evidence::new(KeyKind::Campaign, id.as_str(), format!("c:{id}"))];
                    state.engine.record_evidence(user, &keys, vote, v.created_at as f64);
                    touched.insert((KeyKind::Campaign, id));
                }
                votes += page.len();
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
        }
        // What the statistics deleted: labels for the recipients' priors.
        loop {
            let page = db.deletions_after(deletion_cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            deletion_cursor = last.cursor();
            let mut state = self.state.lock().await;
            state.deletion_cursor = deletion_cursor;
            for d in &page {
                let user = state.user(d.subscriber_id);
                // Its keys as the judgement heard them.
                let keys: Vec<Evidence> = d.stat_keys.as_deref().and_then(keys::decode).unwrap_or_default();
                state.engine.deleted(user, &keys);
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        let (users, update) = {
            let mut state = self.state.lock().await;
            if state.engine.dirty().is_empty() {
                return Ok(Synced { votes, users: 0 });
            }
            let changed: Vec<u32> = state.engine.dirty().to_vec();
            let refreshed = state.engine.refresh();
            (refreshed.users, write.then(|| state.update(&changed, &touched, now)))
        };
        if let Some((update, statuses)) = update {
            db.write_statistics(&update).await?;
            self.state.lock().await.written = statuses;
        }
        Ok(Synced { votes, users })
    }

    /// The keys of a message ([`keys::evidence`]); without `[statistics] fingerprints`
    /// the campaign is not one of them.
    pub fn evidence(&self, facts: &keys::Facts<'_>) -> Vec<Evidence> {
        let campaign = facts.campaign.filter(|_| self.fingerprints);
        keys::evidence(&keys::Facts { campaign, ..*facts })
    }

    /// The statistics' verdict on a message with these keys for `subscriber_id`, now.
    pub async fn judge(&self, subscriber_id: i64, evidence: &[Evidence]) -> Judgement {
        let mut state = self.state.lock().await;
        let user = state.user(subscriber_id);
        state.engine.judge(user, evidence, Timestamp::now().0 as f64, self.delete_above)
    }

    /// The line shown for a message the statistics delete (stored as its reason): the
    /// combined probability, then each key that spoke and was added, strongest first.
    pub fn reason(judgement: &Judgement) -> String {
        let mut terms: Vec<_> = judgement.terms.iter().filter(|t| t.logit != 0.0 && t.counted).collect();
        terms.sort_by(|a, b| b.logit.total_cmp(&a.logit));
        let parts: Vec<String> = terms
            .iter()
            .map(|t| {
                format!("{} {} {:+.1} ({} spam, {} not)", t.kind.as_str(), t.key, t.logit, t.spam_units, t.ham_units)
            })
            .collect();
        let agreeing = match judgement.agreement_logit {
            0.0 => String::new(),
            a => format!(", agreeing keys {a:+.1}"),
        };
        format!(
            "statistics ({}): spam with P = {:.7}; prior {:+.1}, {}{agreeing}",
            judgement.deleted_by.map_or("none", |k| k.as_str()),
            judgement.p_spam(),
            judgement.prior_logit,
            parts.join(", ")
        )
    }
}

impl State {
    fn user(&mut self, subscriber: i64) -> u32 {
        if let Some(u) = self.users.get(&subscriber) {
            return *u;
        }
        let u = self.engine.add_user(false);
        self.users.insert(subscriber, u);
        self.subscribers.push(subscriber);
        u
    }

    /// The rows to write, and every user's status as it will then be stored.
    fn update(
        &self,
        changed: &[u32],
        touched: &HashSet<(KeyKind, String)>,
        now: Timestamp,
    ) -> (StatisticsUpdate, Vec<(TrustStatus, u32, u32)>) {
        // Statuses can change for anyone (the population's rates moved), but most do not:
        // only the rows that differ from what was written last are written again.
        let statuses: Vec<(TrustStatus, u32, u32)> = (0..self.subscribers.len() as u32)
            .map(|u| {
                let (approvals, spam) = self.engine.votes(u);
                (self.engine.status(u), approvals, spam)
            })
            .collect();
        let trust = statuses
            .iter()
            .enumerate()
            .filter(|(u, current)| self.written.get(*u) != Some(*current))
            .map(|(u, &(status, approvals, spam))| TrustRow {
                subscriber_id: self.subscribers[u],
                email: String::new(),
                status: status_name(&status).into(),
                reason: status.reason(),
                approvals: i64::from(approvals),
                spam: i64::from(spam),
                computed_at: now.0,
            })
            .collect();
        let correlations = changed
            .iter()
            .map(|&u| {
                let rows = self
                    .engine
                    .correlations(u)
                    .iter()
                    .map(|(c, r)| CorrelationRow {
                        user_id: self.subscribers[u as usize],
                        cuser_id: self.subscribers[*c as usize],
                        rms_error: r.rms_error,
                        confidence: r.confidence,
                        max_rms_error: r.max_rms_error,
                        domains: r.domains as i64,
                        computed_at: now.0,
                    })
                    .collect();
                (self.subscribers[u as usize], rows)
            })
            .collect();
        let keys = touched
            .iter()
            .filter_map(|(kind, name)| {
                let t = self.engine.global_term(*kind, name)?;
                Some(KeyRow {
                    kind: kind.as_str().into(),
                    name: name.clone(),
                    logit: t.logit,
                    spam_units: i64::from(t.spam_units),
                    ham_units: i64::from(t.ham_units),
                    computed_at: now.0,
                })
            })
            .collect();
        (StatisticsUpdate { trust, correlations, keys }, statuses)
    }
}

fn status_name(s: &TrustStatus) -> &'static str {
    match s {
        TrustStatus::Probe => "probe",
        TrustStatus::Trusted => "trusted",
        TrustStatus::TooFewVotes { .. } => "too_few_votes",
        TrustStatus::ApprovesAlmostEverything { .. } => "approves_almost_everything",
        TrustStatus::UnlikeProbes { .. } => "unlike_probes",
        TrustStatus::ApprovesCondemned { .. } => "approves_condemned",
    }
}
