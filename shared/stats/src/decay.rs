//! Votes and answers that count less with age: one cast at `t` weighs
//! `2^(−(now − t)/half_life)`. Stored as masses `2^((t − epoch)/half_life)` and scaled once
//! when read ([`Decay::scale`]), they add up without ever being rewritten.

/// The half-life and the time masses are relative to (the first observation's).
#[derive(Debug, Clone, Copy)]
pub struct Decay {
    half_life: f64,
    epoch: Option<f64>,
}

impl Decay {
    pub fn new(half_life: f64) -> Self {
        Decay { half_life, epoch: None }
    }

    /// The mass of an observation at `at` (seconds); the first one sets the epoch.
    pub fn mass(&mut self, at: f64) -> f64 {
        let epoch = *self.epoch.get_or_insert(at);
        ((at - epoch) / self.half_life).exp2()
    }

    /// What turns masses into weights as of `now` (1 before any observation).
    pub fn scale(&self, now: f64) -> f64 {
        self.epoch.map_or(1.0, |epoch| (-(now - epoch) / self.half_life).exp2())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mass_read_one_half_life_later_weighs_half() {
        let mut d = Decay::new(10.0);
        assert_eq!(d.scale(5.0), 1.0);
        let (first, later) = (d.mass(100.0), d.mass(120.0));
        assert_eq!((first * d.scale(110.0), later * d.scale(120.0)), (0.5, 1.0));
    }
}
