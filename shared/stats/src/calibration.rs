//! What a printed P(not spam) is worth: the summary's number calibrated against the users'
//! own answers to the lines they were shown (the statistics issue, goal 6: of the lines
//! printed "not spam: 90%", about 90% are ham).
//!
//! **Why a calibration at all.** The combined log-odds treat the keys' evidence as
//! independent given the class (naive Bayes), which ranks well but is known to be
//! over- or under-confident in between (Zadrozny and Elkan, "Transforming classifier
//! scores into accurate multiclass probability estimates", 2002): a held line with a weak
//! term is printed near the prior though such lines turn out to be nearly all ham. The
//! raw log-odds still decide deletion; only what the summary prints and ranks by is
//! calibrated.
//!
//! **How.** Histogram binning with isotonic regression, the same paper's method, shrunk
//! toward a logistic fit: every answer to a held line (an approval is ham, an empty box
//! spam) is counted in the bin of the raw log-odds the line was printed with (width 1, from
//! −12 to 12; beyond, the edge bins). The bins between the ends are sparse (the statistics
//! are decisive: nearly every line is printed below 1% or above 99%), so a bin with few
//! answers needs a better default than the raw value, which is wrong there in a known
//! direction: the recipient's prior is their share of spam among *arrivals*, but the lines
//! of a summary are what the statistics did not delete, far fewer of them spam. That
//! default is Platt's scaling (Platt, "Probabilistic outputs for support vector machines",
//! 1999): `logit P(spam) = a + b·x` fitted to every answer by maximum likelihood, two
//! parameters that the thousands of answers at the ends and the few in between determine
//! together ([`Calibration::platt`]). A bin's estimate is then its share of ham with
//! [`PSEUDO`] pseudo-answers at the fit's value at its centre; pool-adjacent-violators
//! makes the estimates non-increasing in the log-odds, weighted by their counts; between
//! bin centres the calibrated log-odds are interpolated linearly, and outside the
//! outermost centres they keep the edge's offset. With no answers, the map is the
//! identity. Answers count less with age, halving every half-life (the votes' own, 30
//! days by default): what a raw value turns out to be worth changes as the statistics
//! learn (at cold start a line with weak evidence is often spam; once campaigns are known,
//! spam with weak evidence is rare), and the answers of the first weeks must not speak for
//! it forever. Monotone throughout: a line with more evidence of spam is never printed more
//! likely not spam.

use crate::{
    bayes::{logistic, logit},
    decay::Decay,
};

/// Bins of width 1 in log-odds from `-EDGE` to `EDGE`.
const EDGE: f64 = 12.0;
const BINS: usize = 2 * EDGE as usize;
/// Pseudo-answers per bin at the logistic fit's value at its centre.
const PSEUDO: f64 = 2.0;
/// The logistic fit's Gaussian prior, in answers' worth, around the identity (`a = 0`,
/// `b = 1`): it keeps the fit finite when the answers separate perfectly (every ham line
/// printed below every spam line, the statistics' aim) and makes it the identity without
/// answers.
const RIDGE: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct Calibration {
    /// Per bin: answers that were ham, answers in all, as decayed masses
    /// ([`crate::decay`]).
    counts: [[f64; 2]; BINS],
    /// Per bin: the calibrated log-odds of spam at its centre.
    map: [f64; BINS],
    decay: Decay,
    /// The latest answer's time: what the counts are weighed as of.
    latest: f64,
}

fn centre(bin: usize) -> f64 {
    bin as f64 + 0.5 - EDGE
}

fn bin(logit: f64) -> usize {
    ((logit + EDGE).floor().max(0.0) as usize).min(BINS - 1)
}

impl Calibration {
    /// No answers yet: the identity. Answers count less with age, halving every
    /// `half_life` seconds (module docs).
    pub fn new(half_life: f64) -> Self {
        Calibration {
            counts: [[0.0; 2]; BINS],
            map: std::array::from_fn(centre),
            decay: Decay::new(half_life),
            latest: f64::NEG_INFINITY,
        }
    }

    /// An answer at `at` (seconds) to a line printed with raw log-odds of spam `logit`.
    pub fn answered(&mut self, logit: f64, ham: bool, at: f64) {
        if !logit.is_finite() || !at.is_finite() {
            return;
        }
        self.latest = self.latest.max(at);
        let mass = self.decay.mass(at);
        let b = &mut self.counts[bin(logit)];
        b[0] += if ham { mass } else { 0.0 };
        b[1] += mass;
    }

    /// The answers' weight as of the latest one (each counts `2^(−age / half-life)`).
    pub fn answers(&self) -> f64 {
        self.counts.iter().map(|c| c[1]).sum::<f64>() * self.decay.scale(self.latest)
    }

    /// Recomputes the map from the answers (module docs): `BINS` values, cheap.
    pub fn refresh(&mut self) {
        // Pool adjacent violators over P(ham), which must not increase with the log-odds.
        let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(BINS); // (mean, weight, bins)
        let scale = self.decay.scale(self.latest);
        let (a, b) = self.platt(scale);
        for (i, &[ham, n]) in self.counts.iter().enumerate() {
            let (ham, n) = (ham * scale, n * scale);
            let raw = 1.0 - logistic(a + b * centre(i));
            let weight = n + PSEUDO;
            let mut block = ((ham + PSEUDO * raw) / weight, weight, 1);
            while let Some(&(mean, w, k)) = blocks.last() {
                if mean >= block.0 {
                    break;
                }
                blocks.pop();
                block = ((mean * w + block.0 * block.1) / (w + block.1), w + block.1, k + block.2);
            }
            blocks.push(block);
        }
        let mut b = 0;
        for (mean, _, k) in blocks {
            let value = logit((1.0 - mean).clamp(1e-9, 1.0 - 1e-9));
            for slot in &mut self.map[b..b + k] {
                *slot = value;
            }
            b += k;
        }
    }

    /// Platt's fit `logit P(spam) = a + b·x` of the answers (counts times `scale`) at their
    /// bins' centres: the maximum of the log-likelihood
    /// `Σᵢ [sᵢ ln σ(a + b·xᵢ) + hᵢ ln (1 − σ(a + b·xᵢ))]` (sᵢ, hᵢ: a bin's spam and ham
    /// answers) less `RIDGE/2 · (a² + (b − 1)²)`. The objective is strictly concave, so
    /// Newton's method with step halving finds its one maximum.
    fn platt(&self, scale: f64) -> (f64, f64) {
        let objective = |a: f64, b: f64| {
            let mut f = -0.5 * RIDGE * (a * a + (b - 1.0) * (b - 1.0));
            for (i, &[ham, n]) in self.counts.iter().enumerate() {
                let z = a + b * centre(i);
                // ln σ(z) = −ln(1 + e^−z), ln(1 − σ(z)) = −ln(1 + e^z), without overflow.
                let (ln_spam, ln_ham) = (-softplus(-z), -softplus(z));
                f += scale * ((n - ham) * ln_spam + ham * ln_ham);
            }
            f
        };
        let (mut a, mut b) = (0.0, 1.0);
        let mut f = objective(a, b);
        for _ in 0..50 {
            // Gradient and (negated) Hessian of the objective.
            let (mut ga, mut gb) = (-RIDGE * a, -RIDGE * (b - 1.0));
            let (mut haa, mut hab, mut hbb) = (RIDGE, 0.0, RIDGE);
            for (i, &[ham, n]) in self.counts.iter().enumerate() {
                let (x, n, spam) = (centre(i), n * scale, (n - ham) * scale);
                let p = logistic(a + b * x);
                let (r, w) = (spam - n * p, n * p * (1.0 - p));
                (ga, gb) = (ga + r, gb + r * x);
                (haa, hab, hbb) = (haa + w, hab + w * x, hbb + w * x * x);
            }
            let det = haa * hbb - hab * hab;
            let (mut da, mut db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            let mut step = None;
            for _ in 0..30 {
                let g = objective(a + da, b + db);
                if g >= f {
                    step = Some(g);
                    break;
                }
                (da, db) = (da / 2.0, db / 2.0);
            }
            let Some(g) = step else { break };
            (a, b) = (a + da, b + db);
            let gain = g - f;
            f = g;
            if gain < 1e-9 {
                break;
            }
        }
        (a, b)
    }

    /// The calibrated log-odds of spam for raw log-odds `logit`.
    pub fn calibrated(&self, logit: f64) -> f64 {
        let x = logit - centre(0);
        if !x.is_finite() || x <= 0.0 {
            return logit + (self.map[0] - centre(0));
        }
        let i = x.floor() as usize;
        if i >= BINS - 1 {
            return logit + (self.map[BINS - 1] - centre(BINS - 1));
        }
        let t = x - i as f64;
        self.map[i] + t * (self.map[i + 1] - self.map[i])
    }
}

/// `ln(1 + e^x)`, without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: f64 = 86_400.0;

    #[test]
    fn without_answers_the_raw_value_stands() {
        let c = Calibration::new(DAY);
        for x in [-30.0, -12.0, -3.3, 0.0, 0.25, 7.9, 11.5, 40.0] {
            assert!((c.calibrated(x) - x).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn lines_printed_at_even_odds_that_were_all_ham_are_printed_as_ham() {
        let mut c = Calibration::new(DAY);
        for _ in 0..200 {
            c.answered(0.3, true, 0.0);
        }
        // Lines printed far into spam were spam.
        for _ in 0..200 {
            c.answered(6.0, false, 0.0);
        }
        c.refresh();
        let p = 1.0 - logistic(c.calibrated(0.5));
        assert!(p > 0.9, "{p}");
        assert!(1.0 - logistic(c.calibrated(6.5)) < 0.01);
        assert_eq!(c.answers(), 400.0);
    }

    #[test]
    fn a_bin_without_answers_follows_the_fit_of_the_others() {
        // Every ham line was printed at raw log-odds 0.5 to 1.5, every spam line at 6.5:
        // a line at 3.5, where nobody answered, lies between them, not at its raw 97% spam.
        let mut c = Calibration::new(DAY);
        for x in [0.5, 1.5] {
            for _ in 0..300 {
                c.answered(x, true, 0.0);
            }
        }
        for _ in 0..300 {
            c.answered(6.5, false, 0.0);
        }
        c.refresh();
        let (a, b) = c.platt(1.0);
        assert!(a.is_finite() && b > 1.0, "separated answers, a finite and steeper fit: {a} {b}");
        // Its boundary lies between the ham and the spam.
        assert!((1.5..6.5).contains(&(-a / b)), "{a} {b}");
        let middle = c.calibrated(3.5);
        assert!(middle < 3.5 - 1.0, "{middle}");
        // The answered ends stay where their answers put them.
        assert!(c.calibrated(1.0) < -3.0 && c.calibrated(6.5) > 3.0, "{} {}", c.calibrated(1.0), c.calibrated(6.5));
        // Monotone through the unanswered bins.
        assert!(
            (0..40).all(|i| c.calibrated(-10.0 + 0.5 * f64::from(i + 1)) >= c.calibrated(-10.0 + 0.5 * f64::from(i)))
        );
    }

    #[test]
    fn old_answers_give_way_to_new_ones() {
        // At cold start the lines printed near even odds were spam; ten half-lives later,
        // the same raw value is ham: the recent answers decide.
        let mut c = Calibration::new(DAY);
        for _ in 0..100 {
            c.answered(0.3, false, 0.0);
        }
        for _ in 0..100 {
            c.answered(0.3, true, 10.0 * DAY);
        }
        c.refresh();
        let p = 1.0 - logistic(c.calibrated(0.5));
        assert!(p > 0.9, "{p}");
        assert!((c.answers() - 100.0 * (1.0 + 2f64.powi(-10))).abs() < 1e-6, "{}", c.answers());
    }

    proptest! {
        #[test]
        fn the_map_never_turns_more_evidence_of_spam_into_less(
            answers in prop::collection::vec((-15.0f64..15.0, any::<bool>()), 0..300),
            a in -20.0f64..20.0, d in 0.0f64..10.0,
        ) {
            let mut c = Calibration::new(DAY);
            for (x, ham) in answers {
                c.answered(x, ham, 0.0);
            }
            c.refresh();
            prop_assert!(c.calibrated(a + d) >= c.calibrated(a) - 1e-9);
        }
    }
}
