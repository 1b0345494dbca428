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
//! **How.** Histogram binning with isotonic regression, the same paper's method: every
//! answer to a held line (an approval is ham, an empty box spam) is counted in the bin of
//! the raw log-odds the line was printed with (width 1, from −12 to 12; beyond, the edge
//! bins). A bin's estimate is its share of ham with [`PSEUDO`] pseudo-answers at the raw
//! value of its centre (with few answers, the raw value stands); pool-adjacent-violators
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
/// Pseudo-answers per bin at the raw value of its centre.
const PSEUDO: f64 = 2.0;

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
        for (i, &[ham, n]) in self.counts.iter().enumerate() {
            let (ham, n) = (ham * scale, n * scale);
            let raw = 1.0 - logistic(centre(i));
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
