//! `quorum simulate` (SPEC 7): replays a labelled corpus through the real statistics
//! ([`quorum_stats::Engine`]: the same recording, refresh and [`Engine::judge`] the service
//! uses) for a simulated population, deterministically for a seed.
//!
//! The population model (the statistics issue's yardstick):
//! - messages arrive in Date-header order, spread evenly over `days`;
//! - ham: each distinct From address is known to `ham_circle` users, and each of its
//!   messages goes to each of them; spam: each message goes to each user with probability
//!   `reach`, and to each of `probes` spam probes with probability `probe_reach`;
//! - every user gets two summaries a day, 12 h apart, with a random phase (time zones),
//!   and one more after the last arrival, so that every copy held reaches a summary; just
//!   before each, the statistics are re-run for what is held (SPEC 2.3);
//! - a user answers a summary with probability `reply_rate`: ham `A`, spam an empty box,
//!   each wrong with probability `error_rate`;
//! - `sybils` accounts receive spam like users but with 5× the reach, approve the senders
//!   of a chosen 10% of spam domains and leave the rest blank; they always answer;
//! - spam copies as botnets send them: each from a throwaway domain (`rotating_domains`),
//!   personalised per recipient with random sub-domains on its links
//!   (`personalised_copies`, `varying_subdomains`: [`personalise`]), handed over from
//!   three /24s of a shared botnet pool per campaign (`botnet_networks`).
//!
//! Probes vote spam on arrival; each statistical deletion counts in its recipient's prior
//! ([`Engine::deleted`]), as the service reads its deletions back. With `fingerprints`,
//! every message's campaign fingerprint is computed as it is loaded (and each personalised
//! copy's as it arrives), and copies are clustered into campaigns in arrival order
//! (the service's rule: [`quorum_fingerprint::best_match`] through band keys); each vote is
//! then also a vote on the campaign, a copy reaching the Inbox from an approved sender is
//! an approval of it, and the judgement combines domain and campaign evidence
//! ([`quorum_stats::Judgement`]). The report counts what each evidence deleted, and the
//! calibration of what the summaries printed: every answer teaches the engine what lines
//! printed with those log-odds turn out to be, as in the service.
//!
//! Forgery checks need DNS, which a simulation has none of:
//! `forged_detected` is always 0 here.

mod personalise;

pub use personalise::personalise;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use mail_parser::MessageParser;
use quorum_fingerprint::{CampaignIndex, Fingerprint};
use quorum_stats::{Combination, Engine, Evidence, EvidenceUnit, Judgement, KeyKind, Settings, Term, Vote};
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
    pub combination: Combination,
    /// Campaign fingerprints as evidence too.
    pub fingerprints: bool,
    /// Each spam copy comes from a fresh throwaway domain, as botnets send them (but mail
    /// a mailing list relayed keeps its From: the list sent one message to all).
    pub rotating_domains: bool,
    /// Each spam copy personalised as campaigns do (a greeting with a name, tokens,
    /// tracking query strings, reflowed text: [`personalise`]) and fingerprinted on its own;
    /// bodies that cannot be edited as text (encoded, multipart, not UTF-8) and what a
    /// mailing list relayed are sent as they are.
    pub personalised_copies: bool,
    /// With `personalised_copies`, every link's host gets a random sub-domain per copy.
    pub varying_subdomains: bool,
    /// Each spam campaign is handed over from three /24s of a pool of 50 botnet networks
    /// (shared between campaigns, as one botnet sends many); otherwise, and for ham, the
    /// network is the one in the corpus message's own Received chain.
    pub botnet_networks: bool,
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
            combination: Combination::Likelihood,
            fingerprints: true,
            rotating_domains: true,
            personalised_copies: true,
            varying_subdomains: true,
            botnet_networks: true,
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
    /// Its file name in the corpus (the report names the ham that came nearest deletion).
    pub name: String,
    pub spam: bool,
    /// The From address, lower-cased (`unknown@invalid` when there is none).
    pub from: String,
    pub domain: String,
    /// Date header, Unix seconds (ordering only).
    pub date: i64,
    /// The campaign fingerprint, URL domains, Reply-To, short-text and attachment hashes.
    pub fingerprint: Fingerprint,
    /// The network of the handoff in the message's own Received chain.
    pub network: Option<String>,
    /// The raw message, for spam (its copies are personalised from it).
    pub raw: Vec<u8>,
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
            let name = file.strip_prefix(dir).unwrap_or(&file).display().to_string();
            out.push(message(name, quorum_domain::inspect::without_mbox_line(&bytes), spam));
            spam_seen |= spam;
            ham_seen |= !spam;
        }
    }
    if !(spam_seen && ham_seen) {
        return Err(SimulateError::Labels(dir.to_path_buf()));
    }
    Ok(out)
}

fn message(name: String, raw: &[u8], spam: bool) -> Message {
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
    let fingerprint = Fingerprint::of(raw);
    let network = quorum_statistics::keys::network(raw, &[]);
    let raw = if spam { raw.to_vec() } else { Vec::new() };
    Message { name, spam, from, domain, date, fingerprint, network, raw }
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

/// Deletions by the key that said the most ([`quorum_stats::Judgement::deleted_by`]).
pub type ByEvidence = std::collections::BTreeMap<&'static str, u64>;

/// One bucket of the calibration table: held lines printed with P(not spam) in
/// `[not_spam_from, not_spam_from + 0.1)`, the mean of what they were printed with, and the
/// share of them that was ham (calibrated: the two agree).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub not_spam_from: f64,
    pub lines: u64,
    /// The distinct corpus messages among the lines: what the bucket's share can be judged
    /// on. The copies of one message, and one copy shown at several summaries, are judged
    /// alike and answered alike, so a bucket of 80 lines from 3 messages is 3 observations,
    /// not 80 (the middle buckets of a decisive statistics hold a handful).
    pub messages: u64,
    pub mean_not_spam: f64,
    pub ham_share: f64,
}

/// A calibration bucket as it fills: lines, ham lines, summed printed P(not spam), and the
/// corpus messages seen.
#[derive(Default)]
struct Bucket {
    lines: u64,
    ham: u64,
    printed: f64,
    messages: HashSet<usize>,
}

/// How far below the deletion bound honest users' ham stayed, in log-odds (natural
/// logarithm): each ham copy counts at its highest judgement (on arrival and at every
/// re-score before a summary); a deleted copy is at or above the bound.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Margin {
    /// The smallest distance of any ham copy (negative: a deletion); absent without ham.
    pub closest: Option<f64>,
    /// Ham copies that came within 3 and within 7 of the bound (a likelihood ratio of 20
    /// and of 1,100 to 1 short of deletion).
    pub within_3: u64,
    pub within_7: u64,
    /// The nearest ones, one line per corpus message (its nearest copy), nearest first.
    pub nearest: Vec<NearMiss>,
}

/// One ham message that came near deletion, and the evidence that took it there.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NearMiss {
    pub message: String,
    pub margin: f64,
    pub prior_logit: f64,
    /// The counted keys that spoke, `kind key: log-ratio (units or voters calling it spam,
    /// ham)`, strongest first.
    pub terms: Vec<String>,
    pub agreement_logit: f64,
}

/// Near misses the report lists.
const NEAREST: usize = 8;

/// Collects [`Margin`].
struct Margins {
    bound: f64,
    margin: Margin,
    /// Per corpus message: its nearest copy's margin, and the judgement behind it.
    nearest: HashMap<usize, (f64, NearMiss)>,
}

impl Margins {
    fn new(delete_above: f64) -> Self {
        Margins { bound: quorum_stats::logit(delete_above), margin: Margin::default(), nearest: HashMap::new() }
    }

    /// A ham copy left the quarantine (or the run ended) with its highest judgement `peak`.
    fn copy(&mut self, message: &Message, index: usize, peak: Option<&Judgement>) {
        let Some(j) = peak else { return };
        let margin = self.bound - j.logit();
        let m = &mut self.margin;
        m.closest = Some(m.closest.map_or(margin, |c| c.min(margin)));
        m.within_3 += u64::from(margin < 3.0);
        m.within_7 += u64::from(margin < 7.0);
        if self.nearest.get(&index).is_some_and(|(n, _)| *n <= margin) {
            return;
        }
        let mut terms: Vec<&Term> = j.terms.iter().filter(|t| t.counted && t.logit != 0.0).collect();
        terms.sort_by(|a, b| b.logit.total_cmp(&a.logit));
        let miss = NearMiss {
            message: message.name.clone(),
            margin,
            prior_logit: j.prior_logit,
            terms: terms
                .iter()
                .map(|t| {
                    let (kind, spam, ham) = (t.kind.as_str(), t.spam_units, t.ham_units);
                    format!("{kind} {}: {:.2} ({spam} spam, {ham} ham)", t.key, t.logit)
                })
                .collect(),
            agreement_logit: j.agreement_logit,
        };
        self.nearest.insert(index, (margin, miss));
    }

    fn finish(mut self) -> Margin {
        let mut nearest: Vec<NearMiss> = self.nearest.into_values().map(|(_, n)| n).collect();
        nearest.sort_by(|a, b| a.margin.total_cmp(&b.margin).then_with(|| a.message.cmp(&b.message)));
        nearest.truncate(NEAREST);
        self.margin.nearest = nearest;
        self.margin
    }
}

/// The higher of two judgements (the copy's peak so far).
fn higher(peak: Option<Judgement>, j: &Judgement) -> Option<Judgement> {
    match peak {
        Some(p) if p.logit() >= j.logit() => Some(p),
        _ => Some(j.clone()),
    }
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
    /// Printed P(not spam) of the held lines against the truth, whole run.
    pub calibration: Vec<Calibration>,
    /// The same for the summaries of the second half (the calibration has answers by then).
    pub steady_state_calibration: Vec<Calibration>,
    /// How near the statistics came to deleting ham: a run that deletes none can still
    /// have passed within a hair of it, and mail it has never seen will cross that hair.
    pub ham_margin: Margin,
    pub evidence: &'static str,
    pub combination: &'static str,
    pub fingerprints: bool,
    pub rotating_domains: bool,
    pub personalised_copies: bool,
    pub varying_subdomains: bool,
    pub botnet_networks: bool,
    /// Campaigns the fingerprints found (copies of one message, or near-copies).
    pub campaigns: usize,
    /// Ham messages in a campaign that has spam too (a reply quoting spam, a newsletter
    /// like an advertisement): what a campaign's impurity is made of.
    pub ham_in_spam_campaigns: usize,
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
    copy: Copy,
    /// In the steady-state half.
    late: bool,
    /// Its highest judgement so far, for ham ([`Margin`]).
    peak: Option<Judgement>,
}

#[derive(Default)]
struct UserState {
    held: Vec<Held>,
    approved: HashSet<String>,
    blocked: HashSet<String>,
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

    let mut campaigns = Campaigns { of_message: vec![None; corpus.len()], ..Campaigns::default() };
    // Each spam campaign's botnet: three /24s of a shared pool of 50.
    let botnets: Vec<[u32; 3]> = (0..corpus.len()).map(|_| std::array::from_fn(|_| rng.gen_range(0..50))).collect();

    let settings = Settings { unit: options.evidence, combination: options.combination, ..Settings::default() };
    let mut engine = Engine::new(settings);
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
    let mut circles: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut spam_domains: Vec<&str> = corpus.iter().filter(|m| m.spam).map(|m| m.domain.as_str()).collect();
    spam_domains.sort_unstable();
    spam_domains.dedup();
    spam_domains.shuffle(&mut rng);
    let sybil_approved: HashSet<&str> = spam_domains.iter().take(spam_domains.len().div_ceil(10)).copied().collect();
    let mut events: Vec<(f64, Event)> = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        let t = arrival(rank);
        let recipients: Vec<u32> = if corpus[i].spam {
            let mut r: Vec<u32> = honest.iter().copied().filter(|_| rng.r#gen::<f64>() < options.reach).collect();
            r.extend(probes.iter().copied().filter(|_| rng.r#gen::<f64>() < options.probe_reach));
            r.extend(sybils.iter().copied().filter(|_| rng.r#gen::<f64>() < (options.reach * 5.0).min(1.0)));
            r
        } else {
            circles
                .entry(corpus[i].from.as_str())
                .or_insert_with(|| {
                    honest.choose_multiple(&mut rng, options.ham_circle.min(honest.len())).copied().collect()
                })
                .clone()
        };
        events.extend(recipients.into_iter().map(|user| (t, Event::Arrival { message: i, user })));
    }
    // Summaries go on for half a day after the last arrival, so that every copy still held
    // reaches one: a copy that arrived in the last hours is decided like any other, not
    // counted as spam the statistics failed to delete.
    for &u in honest.iter().chain(&sybils) {
        let phase = rng.r#gen::<f64>() * 43_200.0;
        let mut t = phase;
        while t < span + 43_200.0 {
            events.push((t, Event::Summary { user: u }));
            t += 43_200.0;
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));

    // One copy of a message as it reaches one user: its sender (a throwaway domain per copy
    // for rotating spam) and its keys, made by the service's own function.
    let copy = |rng: &mut StdRng, campaigns: &mut Campaigns, message: usize| -> Copy {
        let m = &corpus[message];
        // A list relays one message to all its members: its copies keep their From.
        let rotating = m.spam && options.rotating_domains && m.fingerprint.list.is_none();
        let from = match (rotating, m.from.split_once('@')) {
            (true, Some((local, _))) => format!("{local}@{:08x}.com", rng.r#gen::<u32>()),
            _ => m.from.clone(),
        };
        let network = match m.spam && options.botnet_networks {
            true => {
                let net = botnets[message][rng.gen_range(0..3)];
                Some(format!("198.{}.{}.0/24", 18 + net / 200, net % 200))
            }
            false => m.network.clone(),
        };
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        // A personalised copy is fingerprinted and matched to a campaign of its own accord,
        // as the service does; other copies are the message's (a list relays one message).
        let personalised = (m.spam && options.personalised_copies && m.fingerprint.list.is_none())
            .then(|| personalise(&m.raw, options.varying_subdomains, || rng.r#gen::<u64>()))
            .flatten()
            .map(|raw| Fingerprint::of(&raw));
        let (fingerprint, campaign) = match &personalised {
            Some(f) => (f, options.fingerprints.then(|| campaigns.index.assign(f)).flatten()),
            None => {
                let assigned = match campaigns.of_message[message] {
                    Some(c) => c,
                    None => options.fingerprints.then(|| campaigns.index.assign(&m.fingerprint)).flatten(),
                };
                campaigns.of_message[message] = Some(assigned);
                (&m.fingerprint, assigned)
            }
        };
        if let Some(c) = campaign.filter(|_| m.spam) {
            campaigns.spammed.insert(c);
        }
        let keys = quorum_statistics::keys::evidence(&quorum_statistics::keys::Facts {
            from: &from,
            own_address: false,
            major_isp: major_isp.contains(&domain),
            fingerprint: Some(fingerprint),
            campaign,
            network: network.as_deref(),
        });
        Copy { message, from, domain, keys, campaign }
    };

    let mut state: Vec<UserState> = (0..kinds.len()).map(|_| UserState::default()).collect();
    let (mut all, mut late) = (Counts::default(), Counts::default());
    // Per bucket, for the whole run and the second half.
    let mut calibration: [[Bucket; 10]; 2] = Default::default();
    let mut margins = Margins::new(options.delete_above);
    let mut last_refresh = f64::NEG_INFINITY;
    let total = events.len() as u64;
    for (n, (t, event)) in events.into_iter().enumerate() {
        if n % 1024 == 0 {
            progress(n as u64, total);
        }
        let is_late = t >= half;
        match event {
            Event::Arrival { message, user } => {
                let m = &corpus[message];
                let c = copy(&mut rng, &mut campaigns, message);
                let kind = kinds[user as usize];
                if kind == Kind::Probe {
                    engine.record(user, &c.domain, &c.keys, Vote::Spam, t);
                    continue;
                }
                let counted = kind == Kind::Honest;
                let s = &mut state[user as usize];
                for k in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                    if m.spam {
                        k.spam_total += 1;
                        k.spam_without_campaign += u64::from(options.fingerprints && c.campaign.is_none());
                    } else {
                        k.ham_total += 1;
                    }
                }
                if s.blocked.contains(&c.from) {
                    for k in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                        if m.spam {
                            k.spam_deleted_before_summary += 1;
                        } else {
                            k.ham_deleted += 1;
                            k.ham_deleted_own_block += 1;
                        }
                    }
                } else if s.approved.contains(&c.from) {
                    for k in counts(&mut all, &mut late, is_late).filter(|_| counted && m.spam) {
                        k.spam_in_inbox += 1;
                    }
                    // In the Inbox from an approved sender: an approval of its campaign.
                    let campaign_keys: Vec<Evidence> =
                        c.keys.iter().filter(|k| k.kind == KeyKind::Campaign).cloned().collect();
                    engine.record_evidence(user, &campaign_keys, Vote::Ham, t);
                } else {
                    let judgement = engine.judge(user, &c.keys, t, options.delete_above);
                    let peak = (counted && !m.spam).then(|| judgement.clone());
                    if let Some(by) = judgement.deleted_by {
                        engine.deleted(user, &c.keys);
                        margins.copy(m, message, peak.as_ref());
                        for k in counts(&mut all, &mut late, is_late).filter(|_| counted) {
                            deleted_statistical(k, m.spam, by);
                        }
                    } else {
                        s.held.push(Held { copy: c, late: is_late, peak });
                    }
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
                for mut h in held {
                    let judgement = engine.judge(user, &h.copy.keys, t, options.delete_above);
                    let spam = corpus[h.copy.message].spam;
                    if counted && !spam {
                        h.peak = higher(h.peak.take(), &judgement);
                    }
                    if let Some(by) = judgement.deleted_by {
                        engine.deleted(user, &h.copy.keys);
                        margins.copy(&corpus[h.copy.message], h.copy.message, h.peak.as_ref());
                        for k in counts(&mut all, &mut late, h.late).filter(|_| counted) {
                            deleted_statistical(k, spam, by);
                        }
                    } else {
                        if counted {
                            // The line's printed P(not spam), in tenths, against the truth.
                            let bucket = ((judgement.not_spam() * 10.0) as usize).min(9);
                            for table in &mut calibration[..1 + usize::from(is_late)] {
                                let b = &mut table[bucket];
                                b.lines += 1;
                                b.ham += u64::from(!spam);
                                b.printed += judgement.not_spam();
                                b.messages.insert(h.copy.message);
                            }
                        }
                        shown.push((h, judgement.logit()));
                    }
                }
                if counted {
                    for k in counts(&mut all, &mut late, is_late) {
                        k.summaries += 1;
                        k.held_lines += shown.len() as u64;
                    }
                }
                let replies = match kind {
                    Kind::Sybil => true,
                    _ => rng.r#gen::<f64>() < options.reply_rate,
                };
                if !replies {
                    state[user as usize].held = shown.into_iter().map(|(h, _)| h).collect();
                    continue;
                }
                for (h, printed) in shown {
                    let spam = corpus[h.copy.message].spam;
                    margins.copy(&corpus[h.copy.message], h.copy.message, h.peak.as_ref());
                    let approve = match kind {
                        Kind::Sybil => sybil_approved.contains(corpus[h.copy.message].domain.as_str()),
                        _ => spam == (rng.r#gen::<f64>() < options.error_rate),
                    };
                    let c = h.copy;
                    let vote = if approve { Vote::Ham } else { Vote::Spam };
                    engine.record(user, &c.domain, &c.keys, vote, t);
                    engine.answered(user, printed, vote, t);
                    let s = &mut state[user as usize];
                    if approve {
                        s.blocked.remove(&c.from);
                        s.approved.insert(c.from);
                        if spam && counted {
                            for k in counts(&mut all, &mut late, h.late) {
                                k.spam_in_inbox += 1;
                            }
                        }
                    } else {
                        s.approved.remove(&c.from);
                        s.blocked.insert(c.from);
                    }
                }
            }
        }
    }
    progress(total, total);
    // Copies still held at the end (their users did not answer the last summary).
    for h in state.iter().flat_map(|s| &s.held) {
        margins.copy(&corpus[h.copy.message], h.copy.message, h.peak.as_ref());
    }
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
        calibration: buckets(&calibration[0]),
        steady_state_calibration: buckets(&calibration[1]),
        ham_margin: margins.finish(),
        evidence: match options.evidence {
            EvidenceUnit::Votes => "votes",
            EvidenceUnit::Senders => "senders",
        },
        combination: match options.combination {
            Combination::Likelihood => "likelihood",
            Combination::Seed => "seed",
        },
        fingerprints: options.fingerprints,
        rotating_domains: options.rotating_domains,
        personalised_copies: options.personalised_copies,
        varying_subdomains: options.varying_subdomains && options.personalised_copies,
        botnet_networks: options.botnet_networks,
        ham_in_spam_campaigns: (0..corpus.len())
            .filter(|&i| {
                !corpus[i].spam && campaigns.of_message[i].flatten().is_some_and(|c| campaigns.spammed.contains(&c))
            })
            .count(),
        campaigns: campaigns.index.len(),
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

/// One copy of a corpus message as one user received it.
struct Copy {
    message: usize,
    from: String,
    domain: String,
    keys: Vec<Evidence>,
    campaign: Option<i64>,
}

/// Campaigns as the service finds them, in arrival order: a message's at its first copy's
/// arrival (its copies are alike), a personalised copy's of its own accord.
#[derive(Default)]
struct Campaigns {
    index: CampaignIndex,
    /// Per corpus message, once its first unpersonalised copy arrived.
    of_message: Vec<Option<Option<i64>>>,
    /// Campaigns with a spam copy.
    spammed: HashSet<i64>,
}

/// The calibration table from its filled buckets.
fn buckets(table: &[Bucket; 10]) -> Vec<Calibration> {
    table
        .iter()
        .enumerate()
        .map(|(i, b)| Calibration {
            not_spam_from: i as f64 / 10.0,
            lines: b.lines,
            messages: b.messages.len() as u64,
            mean_not_spam: b.printed / b.lines.max(1) as f64,
            ham_share: b.ham as f64 / b.lines.max(1) as f64,
        })
        .collect()
}

/// The counters an event in the given half updates: the whole run, and the steady state
/// if it is in the second half.
fn counts<'a>(all: &'a mut Counts, late: &'a mut Counts, is_late: bool) -> impl Iterator<Item = &'a mut Counts> {
    std::iter::once(all).chain(is_late.then_some(late))
}

fn deleted_statistical(c: &mut Counts, spam: bool, by: KeyKind) {
    let tally = if spam {
        c.spam_deleted_before_summary += 1;
        &mut c.spam_deleted_by
    } else {
        c.ham_deleted += 1;
        c.ham_deleted_statistical += 1;
        &mut c.ham_deleted_by
    };
    *tally.entry(by.as_str()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No text: no campaign, no links.
    fn none() -> Fingerprint {
        Fingerprint::of(b"")
    }

    fn corpus() -> Vec<Message> {
        let mut c = Vec::new();
        // 40 spam campaigns from 8 spammer domains with many sender addresses; 30 ham
        // correspondents at 10 domains.
        for i in 0..400 {
            let d = format!("spam{}.example", i % 8);
            c.push(Message {
                name: format!("spam/{i}"),
                spam: true,
                from: format!("x{i}@{d}"),
                domain: d,
                date: i,
                fingerprint: none(),
                network: None,
                raw: Vec::new(),
            });
        }
        for i in 0..300 {
            let d = format!("ham{}.example", i % 10);
            c.push(Message {
                name: format!("ham/{i}"),
                spam: false,
                from: format!("p{}@{d}", i % 30),
                domain: d,
                date: i,
                fingerprint: none(),
                network: None,
                raw: Vec::new(),
            });
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
    fn the_report_says_how_near_ham_came_to_deletion() {
        let options = Options { users: 200, days: 10, reach: 0.1, error_rate: 0.05, ..Options::default() };
        let safe = run(&options, &corpus(), &HashSet::new(), |_, _| {});
        let m = &safe.ham_margin;
        assert_eq!(safe.all.ham_deleted_statistical, 0);
        assert!(m.closest.is_some_and(|c| c > 0.0) && m.within_3 <= m.within_7, "{m:#?}");
        assert!(m.nearest.windows(2).all(|w| w[0].margin <= w[1].margin), "{m:#?}");
        assert_eq!(m.nearest.first().map(|n| n.margin), m.closest);
        // A bound that deletes ham: the nearest copies are past it.
        let reckless = run(&Options { delete_above: 0.05, ..options }, &corpus(), &HashSet::new(), |_, _| {});
        let m = &reckless.ham_margin;
        assert!(reckless.all.ham_deleted_statistical > 0, "{reckless:#?}");
        assert!(m.closest.is_some_and(|c| c <= 0.0) && m.within_3 > 0, "{m:#?}");
        assert!(m.nearest[0].message.starts_with("ham/") && m.nearest[0].margin <= 0.0, "{m:#?}");
    }

    #[test]
    fn a_near_miss_is_its_messages_nearest_copy_with_the_keys_that_spoke() {
        let term = |kind, key: &str, logit, counted| Term {
            kind,
            key: key.into(),
            logit,
            counted,
            agrees: false,
            spam_units: 2,
            ham_units: 1,
        };
        let judgement = |terms| Judgement {
            prior_logit: 1.0,
            terms,
            silence_logit: 0.0,
            agreement_logit: 0.0,
            not_spam: 0.5,
            deleted_by: None,
        };
        let message = &corpus()[400];
        let mut margins = Margins::new(1.0 - 1e-6);
        let far = judgement(vec![term(KeyKind::Sender, "p0@ham0.example", 2.0, true)]);
        let near = judgement(vec![
            term(KeyKind::Url, "pills.example", 3.0, true),
            term(KeyKind::Domain, "ham0.example", 0.0, true),
            term(KeyKind::Sender, "p0@ham0.example", 5.0, true),
            term(KeyKind::Campaign, "7", 4.0, false),
        ]);
        margins.copy(message, 400, Some(&far));
        margins.copy(message, 400, Some(&near));
        margins.copy(message, 400, None);
        let m = margins.finish();
        let bound = quorum_stats::logit(1.0 - 1e-6);
        assert_eq!((m.within_3, m.within_7), (0, 1));
        assert!((m.closest.unwrap() - (bound - 9.0)).abs() < 1e-9, "{m:?}");
        assert_eq!(m.nearest.len(), 1);
        assert_eq!(m.nearest[0].message, "ham/0");
        assert_eq!(
            m.nearest[0].terms,
            ["sender p0@ham0.example: 5.00 (2 spam, 1 ham)", "url pills.example: 3.00 (2 spam, 1 ham)"]
        );
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
