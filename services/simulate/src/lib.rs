//! `quorum simulate` (SPEC 7): replays a labelled corpus through the real statistics
//! ([`quorum_stats::Engine`]: the same recording, refresh and [`Engine::judge`] the service
//! uses) for a simulated population, deterministically for a seed.
//!
//! The population model (the statistics issue's yardstick):
//! - messages arrive in Date-header order, spread evenly over `days`;
//! - ham: each distinct From address is known to `ham_circle` users, and each of its
//!   messages goes to each of them; spam: each message goes to each user with probability
//!   `reach`, and to each of `probes` spam probes with probability `probe_reach`;
//! - every user gets two summaries a day, 12 h apart, with a random phase (time zones);
//!   just before each, the statistics are re-run for what is held (SPEC 2.3);
//! - a user answers a summary with probability `reply_rate`: ham `A`, spam an empty box,
//!   each wrong with probability `error_rate`;
//! - `sybils` accounts receive spam like users but with 5× the reach, approve the senders
//!   of a chosen 10% of spam domains and leave the rest blank; they always answer.
//!
//! Probes vote spam on arrival. With `fingerprints`, every message's campaign fingerprint
//! is computed as it is loaded and copies are clustered into campaigns in arrival order
//! (the service's rule: [`quorum_fingerprint::best_match`] through band keys); each vote is
//! then also a vote on the campaign, a copy reaching the Inbox from an approved sender is
//! an approval of it, and the judgement combines domain and campaign evidence
//! ([`quorum_stats::Judgement`]). The report counts what each evidence deleted.
//!
//! Forgery checks need DNS, which a simulation has none of:
//! `forged_detected` is always 0 here.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use mail_parser::MessageParser;
use quorum_fingerprint::{CampaignIndex, Fingerprint};
use quorum_stats::{DeletedBy, Engine, EvidenceUnit, Settings, Vote};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::Serialize;

/// The flags of `quorum simulate`.
#[derive(Debug, Clone)]
pub struct Options {
    pub users: usize,
    pub days: u32,
    pub ham_circle: usize,
    pub reach: f64,
    pub probes: usize,
    pub probe_reach: f64,
    pub reply_rate: f64,
    pub error_rate: f64,
    pub sybils: usize,
    pub evidence: EvidenceUnit,
    /// Campaign fingerprints as evidence too.
    pub fingerprints: bool,
    pub delete_above: f64,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            users: 1000,
            days: 30,
            ham_circle: 3,
            reach: 0.02,
            probes: 10,
            probe_reach: 0.5,
            reply_rate: 0.8,
            error_rate: 0.01,
            sybils: 0,
            evidence: EvidenceUnit::Senders,
            fingerprints: false,
            delete_above: 1.0 - 1e-6,
            seed: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("reading the corpus {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("the corpus {0} has no `spam` folder or no other (ham) folder")]
    Labels(PathBuf),
}

/// One corpus message as the simulation needs it.
#[derive(Debug, Clone)]
pub struct Message {
    pub spam: bool,
    /// The From address, lower-cased (`unknown@invalid` when there is none).
    pub from: String,
    pub domain: String,
    /// Date header, Unix seconds (ordering only).
    pub date: i64,
    /// The campaign fingerprint, when the message has enough text to belong to a campaign
    /// ([`Fingerprint::campaign_ready`]).
    pub fingerprint: Option<Fingerprint>,
}

/// Reads a corpus folder: one sub-folder per label, `spam` is spam, every other sub-folder
/// is ham; each file one raw message, optionally starting with an mbox `From ` line.
pub fn load_corpus(dir: &Path) -> Result<Vec<Message>, SimulateError> {
    let read = |p: &Path| std::fs::read_dir(p).map_err(|e| SimulateError::Read(p.to_path_buf(), e));
    let mut out = Vec::new();
    let (mut spam_seen, mut ham_seen) = (false, false);
    let mut folders: Vec<PathBuf> =
        read(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    folders.sort();
    for folder in folders {
        let spam = folder.file_name().is_some_and(|n| n == "spam");
        let mut files: Vec<PathBuf> =
            read(&folder)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| SimulateError::Read(file.clone(), e))?;
            out.push(message(quorum_domain::inspect::without_mbox_line(&bytes), spam));
            spam_seen |= spam;
            ham_seen |= !spam;
        }
    }
    if !(spam_seen && ham_seen) {
        return Err(SimulateError::Labels(dir.to_path_buf()));
    }
    Ok(out)
}

fn message(raw: &[u8], spam: bool) -> Message {
    let parsed = MessageParser::new().parse_headers(raw);
    let from = parsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@'))
        .unwrap_or_else(|| "unknown@invalid".into());
    let date = parsed.as_ref().and_then(|m| m.date()).map(|d| d.to_timestamp()).unwrap_or(0);
    let domain = from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    let fingerprint = Some(Fingerprint::of(raw)).filter(Fingerprint::campaign_ready);
    Message { spam, from, domain, date, fingerprint }
}

/// The report's counts, for the whole run or one part of it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Spam copies delivered to (honest) users.
    pub spam_total: u64,
    /// Ham copies delivered to users.
    pub ham_total: u64,
    /// Spam copies deleted before any summary showed them.
    pub spam_deleted_before_summary: u64,
    /// Ham copies deleted before any summary showed them (any reason).
    pub ham_deleted: u64,
    /// ... of which by the statistics: the number that must be zero.
    pub ham_deleted_statistical: u64,
    /// ... of which because the user had blocked that sender.
    pub ham_deleted_own_block: u64,
    /// Spam copies that reached the Inbox (an approved sender, or released by a wrong `A`).
    pub spam_in_inbox: u64,
    pub forged_detected: u64,
    /// Spam copies of messages with no campaign (too little text: [`quorum_fingerprint::MIN_WORDS`]),
    /// which only the domain evidence can delete (with `fingerprints`).
    pub spam_without_campaign: u64,
    /// Spam and ham copies deleted by the statistics, by the evidence that was certain.
    pub spam_deleted_by: ByEvidence,
    pub ham_deleted_by: ByEvidence,
    pub held_lines_per_user_per_summary: f64,
    #[serde(skip)]
    summaries: u64,
    #[serde(skip)]
    held_lines: u64,
}

/// Deletions by the evidence that made them certain ([`DeletedBy`]).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ByEvidence {
    pub domain: u64,
    pub fingerprint: u64,
    pub both: u64,
}

/// What `quorum simulate` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    #[serde(flatten)]
    pub all: Counts,
    /// The second half of the simulated time.
    pub steady_state: Counts,
    /// Share of spam copies deleted before the summary, whole run and steady state.
    pub spam_deleted_before_summary_share: f64,
    pub steady_state_spam_deleted_before_summary_share: f64,
    pub evidence: &'static str,
    pub fingerprints: bool,
    /// Campaigns the fingerprints found (copies of one message, or near-copies).
    pub campaigns: usize,
    pub users: usize,
    pub probes: usize,
    pub sybils: usize,
    /// Sybil accounts whose votes do not count at the end (trust rules).
    pub sybils_excluded: usize,
    /// Honest users with at least the minimum number of votes whose votes do not count.
    pub honest_excluded: usize,
    pub messages: usize,
    pub days: u32,
    pub seed: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Honest,
    Probe,
    Sybil,
}

struct Held {
    message: usize,
    /// In the steady-state half.
    late: bool,
}

#[derive(Default)]
struct UserState {
    held: Vec<Held>,
    approved: HashSet<u32>,
    blocked: HashSet<u32>,
}

enum Event {
    Arrival { message: usize, user: u32 },
    Summary { user: u32 },
}

/// Runs the simulation. `major_isp` are the provider table's major ISP domains (judged by
/// sender address only); `progress(done, total)` is called as events are processed.
pub fn run(
    options: &Options,
    corpus: &[Message],
    major_isp: &HashSet<String>,
    mut progress: impl FnMut(u64, u64),
) -> Report {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..corpus.len()).collect();
    order.sort_by_key(|&i| (corpus[i].date, i));
    let span = f64::from(options.days) * 86_400.0;
    let half = span / 2.0;
    let arrival = |rank: usize| rank as f64 / corpus.len().max(1) as f64 * span;

    // Interned ids: the engine works on numbers.
    let mut domains: HashMap<&str, u32> = HashMap::new();
    let mut senders: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<(u32, u32)> = corpus
        .iter()
        .map(|m| {
            let n = domains.len() as u32;
            let d = *domains.entry(m.domain.as_str()).or_insert(n);
            let n = senders.len() as u32;
            (d, *senders.entry(m.from.as_str()).or_insert(n))
        })
        .collect();
    let major: Vec<bool> = corpus.iter().map(|m| major_isp.contains(&m.domain)).collect();
    // Campaigns in arrival order, as the service would find them.
    let mut index = CampaignIndex::default();
    let mut campaign: Vec<Option<u32>> = vec![None; corpus.len()];
    if options.fingerprints {
        for &i in &order {
            campaign[i] = corpus[i].fingerprint.as_ref().and_then(|f| index.assign(f)).map(|c| c as u32);
        }
    }
    // A vote on a message is a vote on its sender and on its campaign.
    let vote = |engine: &mut Engine, user: u32, message: usize, vote: Vote| {
        let (domain, sender) = ids[message];
        engine.record(user, domain, sender, vote);
        if let Some(c) = campaign[message] {
            engine.record_campaign(user, c, vote);
        }
    };

    let mut engine = Engine::new(Settings { unit: options.evidence, ..Settings::default() });
    let mut kinds = Vec::new();
    for (kind, n) in [(Kind::Honest, options.users), (Kind::Probe, options.probes), (Kind::Sybil, options.sybils)] {
        for _ in 0..n {
            engine.add_user(kind == Kind::Probe);
            kinds.push(kind);
        }
    }
    let honest: Vec<u32> = (0..options.users as u32).collect();
    let probes: Vec<u32> = (options.users..options.users + options.probes).map(|u| u as u32).collect();
    let sybils: Vec<u32> =
        (options.users + options.probes..options.users + options.probes + options.sybils).map(|u| u as u32).collect();

    // Who receives what.
    let mut circles: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut spam_domains: Vec<u32> = corpus.iter().zip(&ids).filter(|(m, _)| m.spam).map(|(_, (d, _))| *d).collect();
    spam_domains.sort_unstable();
    spam_domains.dedup();
    spam_domains.shuffle(&mut rng);
    let sybil_approved: HashSet<u32> = spam_domains.iter().take(spam_domains.len().div_ceil(10)).copied().collect();
    let mut events: Vec<(f64, Event)> = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        let t = arrival(rank);
        let (_, sender) = ids[i];
        let recipients: Vec<u32> = if corpus[i].spam {
            let mut r: Vec<u32> = honest.iter().copied().filter(|_| rng.r#gen::<f64>() < options.reach).collect();
            r.extend(probes.iter().copied().filter(|_| rng.r#gen::<f64>() < options.probe_reach));
            r.extend(sybils.iter().copied().filter(|_| rng.r#gen::<f64>() < (options.reach * 5.0).min(1.0)));
            r
        } else {
            circles
                .entry(sender)
                .or_insert_with(|| {
                    honest.choose_multiple(&mut rng, options.ham_circle.min(honest.len())).copied().collect()
                })
                .clone()
        };
        events.extend(recipients.into_iter().map(|user| (t, Event::Arrival { message: i, user })));
    }
    for &u in honest.iter().chain(&sybils) {
        let phase = rng.r#gen::<f64>() * 43_200.0;
        let mut t = phase;
        while t < span {
            events.push((t, Event::Summary { user: u }));
            t += 43_200.0;
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut state: Vec<UserState> = (0..kinds.len()).map(|_| UserState::default()).collect();
    let (mut all, mut late) = (Counts::default(), Counts::default());
    let mut last_refresh = f64::NEG_INFINITY;
    let total = events.len() as u64;
    for (n, (t, event)) in events.into_iter().enumerate() {
        if n % 1024 == 0 {
            progress(n as u64, total);
        }
        let is_late = t >= half;
        match event {
            Event::Arrival { message, user } => {
                let (domain, sender) = ids[message];
                let m = &corpus[message];
                let kind = kinds[user as usize];
                if kind == Kind::Probe {
                    vote(&mut engine, user, message, Vote::Spam);
                    continue;
                }
                let counted = kind == Kind::Honest;
                let s = &mut state[user as usize];
                for c in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                    if m.spam {
                        c.spam_total += 1;
                        c.spam_without_campaign += u64::from(options.fingerprints && campaign[message].is_none());
                    } else {
                        c.ham_total += 1;
                    }
                }
                if s.blocked.contains(&sender) {
                    for c in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                        if m.spam {
                            c.spam_deleted_before_summary += 1;
                        } else {
                            c.ham_deleted += 1;
                            c.ham_deleted_own_block += 1;
                        }
                    }
                } else if s.approved.contains(&sender) {
                    for c in counts(&mut all, &mut late, is_late).filter(|_| counted && m.spam) {
                        c.spam_in_inbox += 1;
                    }
                    // In the Inbox from an approved sender: an approval of its campaign.
                    if let Some(c) = campaign[message] {
                        engine.record_campaign(user, c, Vote::Ham);
                    }
                } else if let Some(by) = engine
                    .judge(user, domain, sender, major[message], campaign[message], options.delete_above)
                    .deleted_by
                {
                    for c in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                        deleted_statistical(c, m.spam, by);
                    }
                } else {
                    s.held.push(Held { message, late: is_late });
                }
            }
            Event::Summary { user } => {
                // The statistics are re-run before each summary (at most every 10 simulated
                // minutes: summaries of many users fall together).
                if t - last_refresh >= 600.0 {
                    engine.refresh();
                    last_refresh = t;
                }
                let kind = kinds[user as usize];
                let counted = kind == Kind::Honest;
                let held = std::mem::take(&mut state[user as usize].held);
                let mut shown = Vec::with_capacity(held.len());
                for h in held {
                    let (domain, sender) = ids[h.message];
                    let judgement =
                        engine.judge(user, domain, sender, major[h.message], campaign[h.message], options.delete_above);
                    if let Some(by) = judgement.deleted_by {
                        for c in counts(&mut all, &mut late, h.late).filter(|_| counted) {
                            deleted_statistical(c, corpus[h.message].spam, by);
                        }
                    } else {
                        shown.push(h);
                    }
                }
                if counted {
                    for c in counts(&mut all, &mut late, is_late) {
                        c.summaries += 1;
                        c.held_lines += shown.len() as u64;
                    }
                }
                let replies = match kind {
                    Kind::Sybil => true,
                    _ => rng.r#gen::<f64>() < options.reply_rate,
                };
                if !replies {
                    state[user as usize].held = shown;
                    continue;
                }
                for h in shown {
                    let (domain, sender) = ids[h.message];
                    let spam = corpus[h.message].spam;
                    let approve = match kind {
                        Kind::Sybil => sybil_approved.contains(&domain),
                        _ => spam == (rng.r#gen::<f64>() < options.error_rate),
                    };
                    vote(&mut engine, user, h.message, if approve { Vote::Ham } else { Vote::Spam });
                    let s = &mut state[user as usize];
                    if approve {
                        s.approved.insert(sender);
                        s.blocked.remove(&sender);
                        if spam && counted {
                            for c in counts(&mut all, &mut late, h.late) {
                                c.spam_in_inbox += 1;
                            }
                        }
                    } else {
                        s.blocked.insert(sender);
                        s.approved.remove(&sender);
                    }
                }
            }
        }
    }
    progress(total, total);
    engine.refresh();
    let min_votes = engine.settings().trust.min_votes;
    let sybils_excluded = sybils.iter().filter(|&&u| !engine.status(u).counts()).count();
    let honest_excluded = honest
        .iter()
        .filter(|&&u| {
            !engine.status(u).counts()
                && !matches!(engine.status(u), quorum_stats::TrustStatus::TooFewVotes { votes } if votes < min_votes)
        })
        .count();
    for c in [&mut all, &mut late] {
        c.held_lines_per_user_per_summary = c.held_lines as f64 / c.summaries.max(1) as f64;
    }
    let share = |c: &Counts| c.spam_deleted_before_summary as f64 / c.spam_total.max(1) as f64;
    Report {
        spam_deleted_before_summary_share: share(&all),
        steady_state_spam_deleted_before_summary_share: share(&late),
        all,
        steady_state: late,
        evidence: match options.evidence {
            EvidenceUnit::Votes => "votes",
            EvidenceUnit::Senders => "senders",
        },
        fingerprints: options.fingerprints,
        campaigns: index.len(),
        users: options.users,
        probes: options.probes,
        sybils: options.sybils,
        sybils_excluded,
        honest_excluded,
        messages: corpus.len(),
        days: options.days,
        seed: options.seed,
    }
}

/// The counters an event in the given half updates: the whole run, and the steady state
/// if it is in the second half.
fn counts<'a>(all: &'a mut Counts, late: &'a mut Counts, is_late: bool) -> impl Iterator<Item = &'a mut Counts> {
    std::iter::once(all).chain(is_late.then_some(late))
}

fn deleted_statistical(c: &mut Counts, spam: bool, by: DeletedBy) {
    let tally = if spam {
        c.spam_deleted_before_summary += 1;
        &mut c.spam_deleted_by
    } else {
        c.ham_deleted += 1;
        c.ham_deleted_statistical += 1;
        &mut c.ham_deleted_by
    };
    *match by {
        DeletedBy::Domain => &mut tally.domain,
        DeletedBy::Fingerprint => &mut tally.fingerprint,
        DeletedBy::Both => &mut tally.both,
    } += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<Message> {
        let mut c = Vec::new();
        // 40 spam campaigns from 8 spammer domains with many sender addresses; 30 ham
        // correspondents at 10 domains.
        for i in 0..400 {
            let d = format!("spam{}.example", i % 8);
            c.push(Message { spam: true, from: format!("x{i}@{d}"), domain: d, date: i, fingerprint: None });
        }
        for i in 0..300 {
            let d = format!("ham{}.example", i % 10);
            c.push(Message { spam: false, from: format!("p{}@{d}", i % 30), domain: d, date: i, fingerprint: None });
        }
        c
    }

    #[test]
    fn deterministic_for_a_seed_and_the_statistics_delete_spam_not_ham() {
        let options = Options { users: 200, days: 10, reach: 0.1, ..Options::default() };
        let a = run(&options, &corpus(), &HashSet::new(), |_, _| {});
        let b = run(&options, &corpus(), &HashSet::new(), |_, _| {});
        assert_eq!(a, b);
        assert!(a.all.spam_total > 0 && a.all.ham_total == 900, "{a:#?}");
        assert_eq!(a.all.ham_deleted_statistical, 0, "{a:#?}");
        assert!(a.steady_state.spam_deleted_before_summary > 0, "{a:#?}");
        let other = run(&Options { seed: 2, ..options }, &corpus(), &HashSet::new(), |_, _| {});
        assert_ne!(a.all, other.all);
    }

    #[test]
    fn sybils_approving_spam_delete_no_ham_and_are_reported() {
        let options = Options { users: 200, days: 10, reach: 0.1, sybils: 20, ..Options::default() };
        let with = run(&options, &corpus(), &HashSet::new(), |_, _| {});
        assert_eq!(with.all.ham_deleted_statistical, 0, "{with:#?}");
        assert_eq!(with.sybils, 20);
        assert!(with.sybils_excluded <= 20 && with.honest_excluded <= 200);
        // Sybils receive spam too: the honest users' counts do not include theirs.
        let without = run(&Options { sybils: 0, ..options }, &corpus(), &HashSet::new(), |_, _| {});
        assert_eq!(with.all.ham_total, without.all.ham_total);
    }

    #[test]
    fn corpus_folders_and_labels() {
        let dir = std::env::temp_dir().join(format!("quorum-sim-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("spam")).unwrap();
        std::fs::create_dir_all(dir.join("ham")).unwrap();
        std::fs::write(dir.join("spam/1"), b"From x@y  Thu Aug 22 13:17:22 2002\nFrom: A <A@Spam.example>\nDate: Thu, 22 Aug 2002 13:17:22 +0000\n\nbuy\n").unwrap();
        std::fs::write(dir.join("ham/1"), b"Subject: no from\n\nhi\n").unwrap();
        let c = load_corpus(&dir).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].spam, c[0].from.as_str(), c[0].domain.as_str()), (false, "unknown@invalid", "invalid"));
        assert_eq!((c[1].spam, c[1].from.as_str(), c[1].date), (true, "a@spam.example", 1_030_022_242));
        std::fs::remove_dir_all(dir.join("ham")).unwrap();
        assert!(matches!(load_corpus(&dir), Err(SimulateError::Labels(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
