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
//! identity. Monotone throughout: a line with more evidence of spam is never printed more
//! likely not spam.

use crate::bayes::{logistic, logit};

/// Bins of width 1 in log-odds from `-EDGE` to `EDGE`.
const EDGE: f64 = 12.0;
const BINS: usize = 2 * EDGE as usize;
/// Pseudo-answers per bin at the raw value of its centre.
const PSEUDO: f64 = 2.0;

#[derive(Debug, Clone)]
pub struct Calibration {
    /// Per bin: answers that were ham, answers in all.
    counts: [[f64; 2]; BINS],
    /// Per bin: the calibrated log-odds of spam at its centre.
    map: [f64; BINS],
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { counts: [[0.0; 2]; BINS], map: std::array::from_fn(centre) }
    }
}

fn centre(bin: usize) -> f64 {
    bin as f64 + 0.5 - EDGE
}

fn bin(logit: f64) -> usize {
    ((logit + EDGE).floor().max(0.0) as usize).min(BINS - 1)
}

impl Calibration {
    /// An answer to a line printed with raw log-odds of spam `logit`.
    pub fn answered(&mut self, logit: f64, ham: bool) {
        if !logit.is_finite() {
            return;
        }
        let b = &mut self.counts[bin(logit)];
        b[0] += f64::from(u8::from(ham));
        b[1] += 1.0;
    }

    /// Answers counted so far.
    pub fn answers(&self) -> f64 {
        self.counts.iter().map(|c| c[1]).sum()
    }

    /// Recomputes the map from the answers (module docs): `BINS` values, cheap.
    pub fn refresh(&mut self) {
        // Pool adjacent violators over P(ham), which must not increase with the log-odds.
        let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(BINS); // (mean, weight, bins)
        for (b, &[ham, n]) in self.counts.iter().enumerate() {
            let raw = 1.0 - logistic(centre(b));
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

    #[test]
    fn without_answers_the_raw_value_stands() {
        let c = Calibration::default();
        for x in [-30.0, -12.0, -3.3, 0.0, 0.25, 7.9, 11.5, 40.0] {
            assert!((c.calibrated(x) - x).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn lines_printed_at_even_odds_that_were_all_ham_are_printed_as_ham() {
        let mut c = Calibration::default();
        for _ in 0..200 {
            c.answered(0.3, true);
        }
        // Lines printed far into spam were spam.
        for _ in 0..200 {
            c.answered(6.0, false);
        }
        c.refresh();
        let p = 1.0 - logistic(c.calibrated(0.5));
        assert!(p > 0.9, "{p}");
        assert!(1.0 - logistic(c.calibrated(6.5)) < 0.01);
        assert_eq!(c.answers(), 400.0);
    }

    proptest! {
        #[test]
        fn the_map_never_turns_more_evidence_of_spam_into_less(
            answers in prop::collection::vec((-15.0f64..15.0, any::<bool>()), 0..300),
            a in -20.0f64..20.0, d in 0.0f64..10.0,
        ) {
            let mut c = Calibration::default();
            for (x, ham) in answers {
                c.answered(x, ham);
            }
            c.refresh();
            prop_assert!(c.calibrated(a + d) >= c.calibrated(a) - 1e-9);
        }
    }
}
