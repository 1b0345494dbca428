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
use statrs::distribution::{ContinuousCDF, StudentsT};

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

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.0.iter().copied()
    }

    /// The domains this user considers spammers.
    pub fn spammer_domains(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter(|(_, r)| *r >= 0.5).map(|(d, _)| *d)
    }

    pub fn get(&self, domain: u32) -> Option<f32> {
        self.0.binary_search_by_key(&domain, |(d, _)| *d).ok().map(|i| self.0[i].1)
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
}

/// How unlike `candidate` is to `target`, over the target's spammer domains; `None` when
/// the target has none.
pub fn correlate(target: &Ratios, candidate: &Ratios) -> Option<Correlation> {
    let mut squared = Vec::new();
    let mut other = candidate.0.iter().peekable();
    for &(d, rt) in target.0.iter().filter(|(_, r)| *r >= 0.5) {
        while other.next_if(|(dv, _)| *dv < d).is_some() {}
        let e = match other.peek() {
            Some(&&(dv, rv)) if dv == d => f64::from(rt) - f64::from(rv),
            _ => f64::from(rt.max(1.0 - rt)),
        };
        squared.push(e * e);
    }
    if squared.is_empty() {
        return None;
    }
    let n = squared.len() as f64;
    let mean = squared.iter().sum::<f64>() / n;
    let rms_error = mean.sqrt();
    let confidence = confidence(&squared, mean);
    Some(Correlation { rms_error, confidence, max_rms_error: rms_error + confidence, domains: squared.len() })
}

/// Half-width of the 95% interval for √(mean of `squared`) (see the module docs).
fn confidence(squared: &[f64], mean: f64) -> f64 {
    let n = squared.len();
    if n < 2 {
        return 1.0;
    }
    let variance = squared.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    if variance == 0.0 {
        return 0.0;
    }
    if mean == 0.0 {
        return 1.0;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n ≥ 2 degrees of freedom").inverse_cdf(0.975);
    (t * variance.sqrt() / (2.0 * mean.sqrt() * (n as f64).sqrt())).min(1.0)
}

/// The median and the standard deviation estimated from the median absolute deviation
/// (×1.4826, consistent for normal data): a centre and spread that a minority of fake
/// accounts cannot drag, unlike a mean and standard deviation (seed 002, item 3: "the more
/// astute spammer would join multiple times to distort the mean and standard deviation").
pub fn robust_spread(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    };
    let m = median(&mut values.to_vec());
    let mad = median(&mut values.iter().map(|x| (x - m).abs()).collect());
    Some((m, 1.4826 * mad))
}

/// The rules for whose votes count (seed 002, trust post items 1–4, 6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrustSettings {
    /// Item 3: a user needs this many votes before their answers count for others.
    pub min_votes: u32,
    /// Item 1: a user approving more than this share of what they vote on is ignored (the
    /// naive spammer approving their own domains).
    pub max_approval_share: f64,
    /// Items 2–4: users whose disagreement with the spam probes lies more than this many
    /// standard deviations above the population's median are excluded (see [`statuses`]).
    pub k_sigma: f64,
    /// The seed's threshold: another user helps a recipient fully while their
    /// `MaxRMSError` stays under this (0.1 in the seed's table).
    pub max_rms_error: f64,
    /// Domains shared with the probes needed before the probe comparison says anything.
    pub min_probe_domains: usize,
    /// Smallest disagreement rate assumed for the population in the k-sigma rule, so that a
    /// population in perfect agreement does not exclude the first honest mistake.
    pub spread_floor: f64,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            min_votes: 20,
            max_approval_share: 0.9,
            k_sigma: 4.0,
            max_rms_error: 0.1,
            min_probe_domains: 5,
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
                format!("approves {:.0}% of what it votes on", share * 100.0)
            }
            TrustStatus::UnlikeProbes { rms, limit } => {
                format!("disagrees with the spam probes (RMS {rms:.3}, limit {limit:.3})")
            }
        }
    }
}

/// A user as the trust rules see them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserVotes {
    pub probe: bool,
    pub approvals: u32,
    pub spam: u32,
    pub ratios: Ratios,
}

/// How unlike the spam probes a user is: the mean of `(r(u,d) − r(p,d))²` over every
/// (probe, domain) pair both voted on, and how many pairs that is. Only shared domains count:
/// a user sees a small share of all spam, and the question is whether they call spam what
/// the probes call spam. For yes/no votes the mean is simply the share of disagreements.
pub fn probe_disagreement(user: &Ratios, probes: &[&Ratios]) -> (f64, usize) {
    let (mut sum, mut n) = (0.0, 0usize);
    for probe in probes {
        for (d, ru) in user.iter() {
            if let Some(rp) = probe.get(d) {
                sum += (f64::from(ru) - f64::from(rp)).powi(2);
                n += 1;
            }
        }
    }
    (if n == 0 { 0.0 } else { sum / n as f64 }, n)
}

/// Every user's status. Probes are the basis. The k-sigma rule (items 2–4) compares each
/// user's disagreement with the probes to the population's: the centre is the *median*
/// disagreement of the users passing the vote-count and ratio rules (so fake accounts
/// joining in numbers cannot move it, item 3), floored at `spread_floor`; the spread is that
/// of a share measured over the user's own number of shared domains,
/// `σ = √(p₀(1 − p₀)/n)`, so a user with few shared domains is not excluded for one honest
/// mistake while an account disagreeing systematically is, once it has shown it.
pub fn statuses(users: &[UserVotes], settings: &TrustSettings) -> Vec<TrustStatus> {
    let probes: Vec<&Ratios> = users.iter().filter(|u| u.probe).map(|u| &u.ratios).collect();
    let mut out: Vec<TrustStatus> = users
        .iter()
        .map(|u| {
            let votes = u.approvals + u.spam;
            let share = if votes == 0 { 0.0 } else { f64::from(u.approvals) / f64::from(votes) };
            if u.probe {
                TrustStatus::Probe
            } else if votes < settings.min_votes {
                TrustStatus::TooFewVotes { votes }
            } else if share > settings.max_approval_share {
                TrustStatus::ApprovesAlmostEverything { share }
            } else {
                TrustStatus::Trusted
            }
        })
        .collect();
    let measured: Vec<Option<(f64, usize)>> = users
        .iter()
        .zip(&out)
        .map(|(u, s)| match s {
            TrustStatus::Trusted => {
                Some(probe_disagreement(&u.ratios, &probes)).filter(|(_, n)| *n >= settings.min_probe_domains.max(1))
            }
            _ => None,
        })
        .collect();
    let rates: Vec<f64> = measured.iter().flatten().map(|(rate, _)| *rate).collect();
    let Some((median, _)) = robust_spread(&rates) else { return out };
    let p0 = median.max(settings.spread_floor).min(0.5);
    for (status, m) in out.iter_mut().zip(measured) {
        let Some((rate, n)) = m else { continue };
        let sigma = (p0 * (1.0 - p0) / n as f64).sqrt();
        let limit = p0 + settings.k_sigma * sigma;
        if rate > limit {
            *status = TrustStatus::UnlikeProbes { rms: rate.sqrt(), limit: limit.sqrt() };
        }
    }
    out
}

/// How much `voter`'s evidence counts for one recipient (item 6): the recipient's own
/// votes fully; others only if their status counts, fully while their correlation to the
/// recipient (if known) stays under the threshold, and less the further above it they are.
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
        Some(c) if c.max_rms_error > settings.max_rms_error => settings.max_rms_error / c.max_rms_error,
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
        assert!(c.max_rms_error > c.rms_error);
        assert_eq!(correlate(&Ratios::from_counts([(4, 3, 0)]), &same), None, "no spammer domains");
        // One domain: nothing is known about the spread.
        let one = correlate(&Ratios::from_counts([(1, 0, 1)]), &Ratios::from_counts([(1, 0, 1)])).unwrap();
        assert_eq!(one.confidence, 1.0);
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

    #[test]
    fn a_minority_cannot_drag_the_robust_centre() {
        let mut honest: Vec<f64> = (0..100).map(|i| 0.05 + f64::from(i % 10) * 0.01).collect();
        let (m0, s0) = robust_spread(&honest).unwrap();
        honest.extend(std::iter::repeat_n(0.9, 30));
        let (m1, s1) = robust_spread(&honest).unwrap();
        assert!((m1 - m0).abs() < 0.03 && s1 < 2.0 * s0 + 0.02, "{m0} {s0} -> {m1} {s1}");
        assert_eq!(robust_spread(&[]), None);
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

    fn user(probe: bool, votes: &[(u32, u32, u32)]) -> UserVotes {
        UserVotes {
            probe,
            approvals: votes.iter().map(|v| v.1).sum(),
            spam: votes.iter().map(|v| v.2).sum(),
            ratios: Ratios::from_counts(votes.iter().copied()),
        }
    }

    #[test]
    fn statuses_follow_the_seeds_rules() {
        let spam_domains: Vec<(u32, u32, u32)> = (0..40).map(|d| (d, 0, 1)).collect();
        let mut users = vec![user(true, &spam_domains), user(true, &spam_domains)];
        // Honest users: call the probes' spam spam, approve their own correspondents.
        for i in 0..30u32 {
            let mut v: Vec<(u32, u32, u32)> = (0..20).map(|d| ((d + i) % 40, 0, 1)).collect();
            v.extend((100..105).map(|d| (d + i * 10, 2, 0)));
            users.push(user(false, &v));
        }
        // One honest user with a single mistake is not excluded.
        let mut mistaken: Vec<(u32, u32, u32)> = (0..20).map(|d| (d, 0, 1)).collect();
        mistaken[0] = (0, 1, 0);
        users.push(user(false, &mistaken));
        // Sybils approve a tenth of the spam domains and report the rest.
        for _ in 0..10 {
            users.push(user(
                false,
                &(0..40).map(|d| if d % 3 == 0 { (d, 1, 0) } else { (d, 0, 1) }).collect::<Vec<_>>(),
            ));
        }
        users.push(user(false, &[(1, 0, 3)]));
        users.push(user(false, &(200..230).map(|d| (d, 1, 0)).collect::<Vec<_>>()));
        let s = statuses(&users, &TrustSettings::default());
        assert_eq!(&s[..2], [TrustStatus::Probe, TrustStatus::Probe]);
        assert!(s[2..33].iter().all(|t| *t == TrustStatus::Trusted), "{:?}", &s[2..33]);
        assert!(s[33..43].iter().all(|t| matches!(t, TrustStatus::UnlikeProbes { .. })), "{:?}", &s[33..43]);
        assert_eq!(s[43], TrustStatus::TooFewVotes { votes: 3 });
        assert!(matches!(s[44], TrustStatus::ApprovesAlmostEverything { .. }));
        assert!(s[44].reason().starts_with("approves 100%"));
    }

    #[test]
    fn weights_for_one_recipient() {
        let t = TrustSettings::default();
        let close = Correlation { rms_error: 0.03, confidence: 0.01, max_rms_error: 0.04, domains: 30 };
        let far = Correlation { rms_error: 0.35, confidence: 0.05, max_rms_error: 0.4, domains: 30 };
        assert_eq!(weight(&t, true, &TrustStatus::TooFewVotes { votes: 0 }, None), 1.0, "own votes always count");
        assert_eq!(weight(&t, false, &TrustStatus::TooFewVotes { votes: 3 }, None), 0.0);
        assert_eq!(weight(&t, false, &TrustStatus::Trusted, None), 1.0);
        assert_eq!(weight(&t, false, &TrustStatus::Trusted, Some(&close)), 1.0);
        assert!((weight(&t, false, &TrustStatus::Probe, Some(&far)) - 0.25).abs() < 1e-12);
    }
}
