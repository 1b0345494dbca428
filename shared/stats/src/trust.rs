//! Trust between users (SPEC 4; seed 002's trust post, items 1–6, and its `correlation`
//! table).
//!
//! **RMS correlation.** For a target user `t` and another user `v`, over the domains `t`
//! considers spammers (`r(t,d) ≥ ½`, the seed's 08-15 improvement: agreement on what is
//! *not* spam says little, since everyone approves different correspondents):
//!
//! ```text
//! eᵈ = r(t,d) − r(v,d)                 if v voted on d
//! eᵈ = max(r(t,d), 1 − r(t,d))         if only t did (the larger distance to 0 or 1)
//! RMSError = √( Σ eᵈ² / n )
//! ```
//!
//! where `r(u,d) = s/(a+s)` is u's share of spam votes on d. A user who never saw the
//! target's spam counts as maximally unlike it: trust must be earned by shared experience.
//!
//! **Confidence.** The RMS is the square root of a mean, `m = Σ xᵢ / n` with `xᵢ = eᵢ²`.
//! A 95% Student-t interval for `m` has half-width `t₀.₉₇₅,ₙ₋₁ · sₓ / √n` (`sₓ` the sample
//! standard deviation of the `xᵢ`); by the delta method (d√m/dm = 1 / (2√m)) the half-width
//! for the RMS is `t · sₓ / (2 √m √n)`. With fewer than two domains nothing is known and the
//! confidence is the whole range, 1. `MaxRMSError = RMSError + Confidence` is what the
//! seed's table compares with its threshold (0.1): an upper bound on how unlike the two
//! users are.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};

/// A user's per-domain ratios `r(u,d)`, sorted by domain id (so two users correlate in
/// one merge pass).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratios(Vec<(u32, f32)>);

impl Ratios {
    /// From `(domain, approvals, spam)` counts; domains without votes are skipped.
    pub fn from_counts(counts: impl IntoIterator<Item = (u32, u32, u32)>) -> Self {
        let mut v: Vec<(u32, f32)> =
            counts.into_iter().filter(|(_, a, s)| a + s > 0).map(|(d, a, s)| (d, s as f32 / (a + s) as f32)).collect();
        v.sort_unstable_by_key(|(d, _)| *d);
        v.dedup_by_key(|(d, _)| *d);
        Ratios(v)
    }

    /// The domains this user considers spammers.
    pub fn spammer_domains(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter(|(_, r)| *r >= 0.5).map(|(d, _)| *d)
    }
}

/// One row of the seed's `correlation` table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub rms_error: f64,
    pub confidence: f64,
    pub max_rms_error: f64,
    /// How many of the target's spammer domains it was computed over.
    pub domains: usize,
    /// Of those, how many the other user voted on too (the rest count as one-sided).
    pub shared: usize,
}

/// How unlike `candidate` is to `target`, over the target's spammer domains; `None` when
/// the target has none.
pub fn correlate(target: &Ratios, candidate: &Ratios) -> Option<Correlation> {
    // One pass, no allocation: n, Σx and Σx² of the squared errors x = e².
    let (mut n, mut shared, mut sum, mut sum_sq) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut other = candidate.0.iter().peekable();
    for &(d, rt) in target.0.iter().filter(|(_, r)| *r >= 0.5) {
        while other.next_if(|(dv, _)| *dv < d).is_some() {}
        let e = match other.peek() {
            Some(&&(dv, rv)) if dv == d => {
                shared += 1;
                f64::from(rt) - f64::from(rv)
            }
            _ => f64::from(rt.max(1.0 - rt)),
        };
        let x = e * e;
        n += 1;
        sum += x;
        sum_sq += x * x;
    }
    if n == 0 {
        return None;
    }
    let mean = sum / n as f64;
    let rms_error = mean.sqrt();
    let variance = if n < 2 { 0.0 } else { ((sum_sq - n as f64 * mean * mean) / (n - 1) as f64).max(0.0) };
    let confidence = confidence(n, mean, variance);
    Some(Correlation { rms_error, confidence, max_rms_error: rms_error + confidence, domains: n, shared })
}

/// Half-width of the 95% interval for √mean, from `n` squared errors with that mean and
/// sample variance (see the module docs).
fn confidence(n: usize, mean: f64, variance: f64) -> f64 {
    if n < 2 {
        return 1.0;
    }
    if variance <= 1e-15 {
        return 0.0;
    }
    if mean == 0.0 {
        return 1.0;
    }
    (t_975(n - 1) * variance.sqrt() / (2.0 * mean.sqrt() * (n as f64).sqrt())).min(1.0)
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom. Inverting the CDF is
/// costly and every correlation needs one, so the quantiles up to 1,024 degrees of freedom
/// are computed once; beyond that the normal quantile (1.96) is within 0.1%.
fn t_975(df: usize) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=1024)
            .map(|df| match df {
                0 => f64::INFINITY,
                df => StudentsT::new(0.0, 1.0, df as f64).expect("df ≥ 1").inverse_cdf(0.975),
            })
            .collect()
    });
    table.get(df).copied().unwrap_or(1.959_964)
}

/// The rules for whose votes count (seed 002, trust post items 1–4, 6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrustSettings {
    /// Item 3: a user needs this many votes before their answers count for others. 5, not
    /// more: in the simulator's population (2% reach) a user answers about 18 messages a
    /// month, and with 20 nearly every honest user was silenced, leaving the accounts that
    /// receive the most spam (Sybils among them) as the only voices.
    pub min_votes: u32,
    /// Item 1: a user approving more than this share of their judged mail (answers and the
    /// statistics' deletions, [`base_status`]) is ignored (the naive spammer approving their
    /// own domains).
    pub max_approval_share: f64,
    /// Items 2–4: users whose disagreement with the spam probes lies more than this many
    /// standard deviations above the population's median are excluded (see [`statuses`]).
    pub k_sigma: f64,
    /// The seed's threshold: another user helps a recipient fully while their
    /// `MaxRMSError` stays under this (0.1 in the seed's table).
    pub max_rms_error: f64,
    /// Domains shared with the probes needed before the probe comparison says anything.
    pub min_probe_domains: usize,
    /// Item 2: an account approving this many senders that the spam probes received and as
    /// many accounts approved (see `Engine`'s coordination rule) is excluded; 0 turns the
    /// rule off.
    pub coordination: u32,
    /// Smallest disagreement rate assumed for the population in the k-sigma rule, so that a
    /// population in perfect agreement does not exclude the first honest mistake.
    pub spread_floor: f64,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            min_votes: 5,
            max_approval_share: 0.9,
            k_sigma: 4.0,
            max_rms_error: 0.1,
            min_probe_domains: 5,
            coordination: 3,
            spread_floor: 0.02,
        }
    }
}

/// Whether a user's answers count for others, and why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TrustStatus {
    /// A spam probe: everything it receives is spam; the basis of trust.
    Probe,
    Trusted,
    TooFewVotes {
        votes: u32,
    },
    ApprovesAlmostEverything {
        share: f64,
    },
    /// Disagrees with the spam probes far more than the rest of the population.
    UnlikeProbes {
        rms: f64,
        limit: f64,
    },
    /// Approves senders the spam probes received, together with other such accounts.
    ApprovesCondemned {
        senders: u32,
    },
}

impl TrustStatus {
    /// Its votes count for other users.
    pub fn counts(&self) -> bool {
        matches!(self, TrustStatus::Probe | TrustStatus::Trusted)
    }

    /// The reason, for the operator's table.
    pub fn reason(&self) -> String {
        match self {
            TrustStatus::Probe => "spam probe".into(),
            TrustStatus::Trusted => "trusted".into(),
            TrustStatus::TooFewVotes { votes } => format!("{votes} votes, too few to count yet"),
            TrustStatus::ApprovesAlmostEverything { share } => {
                format!("approves {:.0}% of its mail (answers and deletions)", share * 100.0)
            }
            TrustStatus::UnlikeProbes { rms, limit } => {
                format!("disagrees with the spam probes (RMS {rms:.3}, limit {limit:.3})")
            }
            TrustStatus::ApprovesCondemned { senders } => {
                format!("approved {senders} spam senders the probes received, as other accounts did")
            }
        }
    }
}

/// A user's vote counts, as the rules that need no one else see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserVotes {
    pub probe: bool,
    pub approvals: u32,
    pub spam: u32,
    /// The statistics' deletions of the user's mail: spam the user was never shown.
    pub deleted: u32,
}

/// The rules that need no one else: probe, vote count, approval share.
///
/// The share is of the user's judged mail, the statistics' deletions included: a user
/// answers only what the statistics could not decide, so once they delete most spam an
/// honest user's answers are nearly all approvals, and a share of answers alone would
/// exclude exactly the users whose approvals protect ham (on the development corpus with
/// ten correspondents each, one user in six). A lazy account that approves whatever it is
/// shown still approves what the probes received: the probe rule's case.
pub fn base_status(u: &UserVotes, settings: &TrustSettings) -> TrustStatus {
    let votes = u.approvals + u.spam;
    let judged = votes + u.deleted;
    let share = if judged == 0 { 0.0 } else { f64::from(u.approvals) / f64::from(judged) };
    if u.probe {
        TrustStatus::Probe
    } else if votes < settings.min_votes {
        TrustStatus::TooFewVotes { votes }
    } else if share > settings.max_approval_share {
        TrustStatus::ApprovesAlmostEverything { share }
    } else {
        TrustStatus::Trusted
    }
}

/// The k-sigma rule (items 2–4): each user's share of approvals among their votes on
/// senders the probes received (`(rate, votes)`, `None` where there are none) against the
/// population's. The centre `p₀` is the pooled share of the users the other rules trust,
/// never below `spread_floor`. A user is excluded when their count of such approvals would
/// be that high by chance with probability below the one-sided normal tail at `k_sigma`
/// (3.2e-5 at 4σ), computed from the binomial distribution itself: with the few votes most
/// users have, the normal approximation would exclude honest users for one mistake.
/// Accounts joining in numbers can only raise `p₀`, which makes the rule more lenient,
/// never exclude honest users; catching them is the coordination rule's job.
pub fn apply_probe_rule(statuses: &mut [TrustStatus], measured: &[Option<(f64, usize)>], settings: &TrustSettings) {
    let usable = |m: &Option<(f64, usize)>| m.filter(|(_, n)| *n >= settings.min_probe_domains.max(1));
    let (mut wrong, mut total) = (0.0, 0.0);
    for (status, m) in statuses.iter().zip(measured) {
        if let Some((rate, n)) = usable(m).filter(|_| *status == TrustStatus::Trusted) {
            wrong += rate * n as f64;
            total += n as f64;
        }
    }
    if total == 0.0 {
        return;
    }
    let p0 = (wrong / total).max(settings.spread_floor).min(0.5);
    let alpha = Normal::new(0.0, 1.0).expect("the standard normal").sf(settings.k_sigma);
    for (status, m) in statuses.iter_mut().zip(measured) {
        let Some((rate, n)) = usable(m).filter(|_| *status == TrustStatus::Trusted) else { continue };
        let k = (rate * n as f64).round() as u64;
        let binomial = Binomial::new(p0, n as u64).expect("p0 in [0, 1]");
        // P(X ≥ k) = 1 − P(X ≤ k − 1).
        let tail = if k == 0 { 1.0 } else { binomial.sf(k - 1) };
        if tail < alpha {
            let limit = p0 + settings.k_sigma * (p0 * (1.0 - p0) / n as f64).sqrt();
            *status = TrustStatus::UnlikeProbes { rms: rate.sqrt(), limit: limit.sqrt() };
        }
    }
}

/// How much `voter`'s evidence counts for one recipient (item 6): the recipient's own
/// votes fully; others only if their status counts; and less the further their correlation
/// to the recipient lies above the threshold — but only once they have voted on enough of
/// the recipient's spammer domains (`min_probe_domains`) for the disagreement to be theirs.
/// Users who simply never saw the recipient's spam are not held against it: in a sparse
/// population that is almost everyone.
pub fn weight(
    settings: &TrustSettings,
    is_recipient: bool,
    status: &TrustStatus,
    correlation: Option<&Correlation>,
) -> f64 {
    if is_recipient {
        return 1.0;
    }
    if !status.counts() {
        return 0.0;
    }
    match correlation {
        Some(c) if c.shared >= settings.min_probe_domains && c.max_rms_error > settings.max_rms_error => {
            settings.max_rms_error / c.max_rms_error
        }
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn agreement_disagreement_and_one_sided_domains() {
        // Target: 1, 2, 3 are spammers; 4 is a correspondent (not compared).
        let t = Ratios::from_counts([(1, 0, 5), (2, 0, 2), (3, 1, 3), (4, 7, 0)]);
        assert_eq!(t.spammer_domains().collect::<Vec<_>>(), [1, 2, 3]);
        let same = Ratios::from_counts([(1, 0, 1), (2, 0, 9), (3, 1, 3), (4, 0, 4)]);
        let c = correlate(&t, &same).unwrap();
        assert!(c.rms_error < 1e-9 && c.confidence == 0.0 && c.domains == 3, "{c:?}");
        // A user who approves the target's spammers is maximally unlike it.
        let opposite = Ratios::from_counts([(1, 3, 0), (2, 1, 0), (3, 4, 0)]);
        let c = correlate(&t, &opposite).unwrap();
        assert!(c.rms_error > 0.85, "{c:?}");
        // Never having seen domain 3: it counts as the larger distance, 0.75.
        let partial = Ratios::from_counts([(1, 0, 1), (2, 0, 1)]);
        let c = correlate(&t, &partial).unwrap();
        assert!((c.rms_error - (0.75f64 * 0.75 / 3.0).sqrt()).abs() < 1e-6, "{c:?}");
        assert_eq!((c.domains, c.shared), (3, 2));
        assert!(c.max_rms_error > c.rms_error);
        assert_eq!(correlate(&Ratios::from_counts([(4, 3, 0)]), &same), None, "no spammer domains");
        // One domain: nothing is known about the spread.
        let one = correlate(&Ratios::from_counts([(1, 0, 1)]), &Ratios::from_counts([(1, 0, 1)])).unwrap();
        assert_eq!(one.confidence, 1.0);
    }

    #[test]
    fn student_t_quantiles() {
        assert!((t_975(1) - 12.706).abs() < 1e-3 && (t_975(10) - 2.228).abs() < 1e-3);
        assert!((t_975(5000) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn confidence_narrows_with_more_domains() {
        // Errors alternating 0 and 0.2: the same RMS, more domains, a tighter bound.
        let make = |n: u32| {
            let t = Ratios::from_counts((0..n).map(|d| (d, 0, 1)));
            let v = Ratios::from_counts((0..n).map(|d| if d % 2 == 0 { (d, 0, 1) } else { (d, 1, 4) }));
            correlate(&t, &v).unwrap()
        };
        let (small, large) = (make(10), make(400));
        assert!((small.rms_error - large.rms_error).abs() < 1e-6);
        assert!(large.confidence < small.confidence / 5.0, "{small:?} {large:?}");
    }

    proptest! {
        #[test]
        fn errors_are_bounded(t in prop::collection::vec((0u32..50, 0u32..5, 0u32..5), 0..40),
                              v in prop::collection::vec((0u32..50, 0u32..5, 0u32..5), 0..40)) {
            let (t, v) = (Ratios::from_counts(t), Ratios::from_counts(v));
            if let Some(c) = correlate(&t, &v) {
                prop_assert!((0.0..=1.0 + 1e-9).contains(&c.rms_error));
                prop_assert!((0.0..=1.0).contains(&c.confidence));
                prop_assert_eq!(c.domains, t.spammer_domains().count());
                prop_assert!(correlate(&t, &t).unwrap().rms_error < 1e-6, "a user agrees with itself");
            }
        }
    }

    #[test]
    fn base_statuses() {
        let t = TrustSettings::default();
        let user = |probe, approvals, spam| UserVotes { probe, approvals, spam, deleted: 0 };
        assert_eq!(base_status(&user(true, 0, 0), &t), TrustStatus::Probe);
        assert_eq!(base_status(&user(false, 1, 2), &t), TrustStatus::TooFewVotes { votes: 3 });
        assert_eq!(base_status(&user(false, 3, 17), &t), TrustStatus::Trusted);
        let naive = base_status(&user(false, 30, 0), &t);
        assert!(
            matches!(naive, TrustStatus::ApprovesAlmostEverything { .. })
                && naive.reason().starts_with("approves 100%")
        );
        // The same answers from a user whose spam the statistics deleted before it was
        // shown: 30 approvals of 50 judged messages.
        assert_eq!(base_status(&UserVotes { deleted: 20, ..user(false, 30, 0) }, &t), TrustStatus::Trusted);
        // Deletions are no votes: too few answers stay too few.
        let few = UserVotes { deleted: 40, ..user(false, 2, 1) };
        assert_eq!(base_status(&few, &t), TrustStatus::TooFewVotes { votes: 3 });
    }

    #[test]
    fn the_k_sigma_rule_spares_honest_mistakes_and_excludes_systematic_disagreement() {
        let t = TrustSettings::default();
        // 100 honest users with 2 mistakes in 40 votes on probe senders (5%), one unlucky
        // honest user with 5 in 30, and one account approving half of them; one mistake in 5.
        let mut measured: Vec<Option<(f64, usize)>> = vec![Some((2.0 / 40.0, 40)); 100];
        measured.push(Some((5.0 / 30.0, 30)));
        measured.push(Some((0.5, 40)));
        measured.push(Some((1.0, 2))); // too few votes on probe senders to judge
        measured.push(None);
        measured.push(Some((0.2, 5)));
        let mut statuses = vec![TrustStatus::Trusted; measured.len()];
        apply_probe_rule(&mut statuses, &measured, &t);
        assert!(statuses[..101].iter().all(|s| *s == TrustStatus::Trusted), "{statuses:?}");
        assert!(matches!(statuses[101], TrustStatus::UnlikeProbes { .. }));
        assert_eq!(&statuses[102..], [TrustStatus::Trusted; 3]);
    }

    #[test]
    fn weights_for_one_recipient() {
        let t = TrustSettings::default();
        let close = Correlation { rms_error: 0.03, confidence: 0.01, max_rms_error: 0.04, domains: 30, shared: 30 };
        let far = Correlation { rms_error: 0.35, confidence: 0.05, max_rms_error: 0.4, domains: 30, shared: 30 };
        let unseen = Correlation { shared: 2, ..far };
        assert_eq!(weight(&t, true, &TrustStatus::TooFewVotes { votes: 0 }, None), 1.0, "own votes always count");
        assert_eq!(weight(&t, false, &TrustStatus::TooFewVotes { votes: 3 }, None), 0.0);
        assert_eq!(weight(&t, false, &TrustStatus::Trusted, None), 1.0);
        assert_eq!(weight(&t, false, &TrustStatus::Trusted, Some(&close)), 1.0);
        assert!((weight(&t, false, &TrustStatus::Probe, Some(&far)) - 0.25).abs() < 1e-12);
        assert_eq!(weight(&t, false, &TrustStatus::Trusted, Some(&unseen)), 1.0, "never saw the recipient's spam");
    }
}
