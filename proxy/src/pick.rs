//! Exact weighted picking: backend `i` is chosen with probability `w_i / Σw`.
//!
//! The picker maps a uniform integer `r` in `0..Σw` onto the backend whose cumulative
//! range holds it, so the shares are exact (no float rounding) and weight 0 gets nothing.

use rand::Rng;
use serde::Serialize;

/// A weighted choice over backends, built once per snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedPicker {
    /// `cumulative[i]` is the sum of the weights of backends `0..=i`.
    cumulative: Vec<u128>,
}

// === impl WeightedPicker ===

impl WeightedPicker {
    /// Builds a picker from relative weights, in backend order.
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut sum = 0u128;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                sum += u128::from(w);
                sum
            })
            .collect();
        Self { cumulative }
    }

    /// The sum of all weights.
    pub fn total(&self) -> u128 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The number of backends, including those of weight 0.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Whether the picker has no backends.
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The backend that owns point `r` (`r < total`); `None` when `r` is out of range.
    pub fn pick_at(&self, r: u128) -> Option<usize> {
        if r >= self.total() {
            return None;
        }
        Some(self.cumulative.partition_point(|&c| c <= r))
    }

    /// Picks a backend at random; `None` when every weight is zero.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use weir_proxy::pick::WeightedPicker;
    ///
    /// // A 90/10 split: backend 1 gets a tenth of the picks, exactly in the long run.
    /// let picker = WeightedPicker::new([90, 10]);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let canary = (0..10_000).filter(|_| picker.pick(&mut rng) == Some(1)).count();
    /// assert!((900..1100).contains(&canary), "{canary}");
    ///
    /// // Weight 0 never gets traffic, and a split of zeros picks nothing.
    /// let picker = WeightedPicker::new([0, 5]);
    /// assert!((0..100).all(|_| picker.pick(&mut rng) == Some(1)));
    /// assert_eq!(WeightedPicker::new([0, 0]).pick(&mut rng), None);
    /// ```
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        self.pick_at(rng.random_range(0..total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// χ² of observed counts against expected shares.
    fn chi_squared(observed: &[u64], weights: &[u64]) -> f64 {
        let n: u64 = observed.iter().sum();
        let total: u64 = weights.iter().sum();
        observed
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w > 0)
            .map(|(o, w)| {
                let e = n as f64 * *w as f64 / total as f64;
                (*o as f64 - e).powi(2) / e
            })
            .sum()
    }

    fn counts(picker: &WeightedPicker, seed: u64, n: usize) -> Vec<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u64; picker.len()];
        for _ in 0..n {
            let i = picker.pick(&mut rng).expect("non-zero weights");
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn ninety_ten_split_passes_chi_squared_over_100k_picks() {
        let weights = [90_000, 10_000];
        let picker = WeightedPicker::new(weights);
        for seed in [1, 2, 3, 42, 1234] {
            let observed = counts(&picker, seed, 100_000);
            let chi2 = chi_squared(&observed, &weights);
            // 1 degree of freedom, p = 0.001.
            assert!(
                chi2 < 10.828,
                "seed {seed}: χ² = {chi2:.3} for {observed:?}"
            );
            let share = observed[1] as f64 / 100_000.0;
            assert!((share - 0.10).abs() < 0.005, "canary share {share}");
        }
    }

    #[test]
    fn chi_squared_rejects_a_biased_picker() {
        // The test must be able to fail: a 91/9 picker judged against 90/10.
        let biased = WeightedPicker::new([91, 9]);
        let observed = counts(&biased, 7, 100_000);
        assert!(chi_squared(&observed, &[90, 10]) > 10.828);
    }

    #[test]
    fn three_way_split_with_quantity_weights_passes_chi_squared() {
        // v1alpha1 weights such as "500m" arrive as milli-units.
        let weights = [500, 1_500, 3_000];
        let observed = counts(&WeightedPicker::new(weights), 9, 100_000);
        // 2 degrees of freedom, p = 0.001.
        assert!(chi_squared(&observed, &weights) < 13.816, "{observed:?}");
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        let picker = WeightedPicker::new([0, 0]);
        assert_eq!(picker.pick(&mut StdRng::seed_from_u64(1)), None);
        assert_eq!(
            WeightedPicker::new([]).pick(&mut StdRng::seed_from_u64(1)),
            None
        );
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let picker = WeightedPicker::new([u64::MAX, u64::MAX]);
        assert_eq!(picker.total(), 2 * u128::from(u64::MAX));
        assert_eq!(picker.pick_at(u128::from(u64::MAX)), Some(1));
    }

    proptest! {
        /// Every point of `0..Σw` maps to exactly one backend, and backend `i` owns exactly `w_i` points.
        #[test]
        fn shares_are_exact(weights in proptest::collection::vec(0u64..50, 1..6)) {
            let picker = WeightedPicker::new(weights.clone());
            let mut owned = vec![0u64; weights.len()];
            for r in 0..picker.total() {
                let i = picker.pick_at(r).expect("in range");
                owned[i] += 1;
            }
            prop_assert_eq!(owned, weights);
            prop_assert_eq!(picker.pick_at(picker.total()), None);
        }

        #[test]
        fn zero_weight_is_never_picked(weights in proptest::collection::vec(0u64..5, 1..6), seed: u64) {
            let picker = WeightedPicker::new(weights.clone());
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..200 {
                match picker.pick(&mut rng) {
                    Some(i) => prop_assert!(weights[i] > 0),
                    None => prop_assert!(weights.iter().all(|w| *w == 0)),
                }
            }
        }
    }
}
