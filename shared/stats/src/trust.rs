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
}
