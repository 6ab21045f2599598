//! Windowed counter increases and histogram quantiles, computed as PromQL computes
//! `increase(x[w])` and `histogram_quantile(q, …)`, so Weir's figures and Prometheus's agree.
//!
//! `increase` over the window `(end - w, end]`:
//! - takes the samples inside the window (at least two, or there is no result);
//! - adds the value before each drop to the total (a drop is a counter reset);
//! - extrapolates the increase between the first and last sample to the window's edges: by
//!   the distance to an edge when it is under 1.1 × the average sample spacing, by half a
//!   spacing otherwise, and never to before the counter would have been zero.
//!
//! `histogram_quantile` sorts the cumulative buckets by `le`, interpolates linearly inside the
//! bucket holding rank `q × count` (from 0 for the first bucket), and answers the highest
//! finite bound when the rank falls in `+Inf`; NaN without observations.

/// A sample: milliseconds since the epoch and a value.
pub type Point = (i64, f64);

/// The increase of a counter over `(start_ms, end_ms]`, as PromQL's `increase`; None with
/// fewer than two samples in the window.
pub fn increase(points: &[Point], start_ms: i64, end_ms: i64) -> Option<f64> {
    let inside: Vec<Point> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t > start_ms && *t <= end_ms)
        .collect();
    let (first, last) = match inside.as_slice() {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut result = last.1 - first.1;
    let mut previous = 0.0;
    for (_, v) in &inside {
        if *v < previous {
            result += previous;
        }
        previous = *v;
    }
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    if sampled <= 0.0 {
        return None;
    }
    let average = sampled / (inside.len() - 1) as f64;
    let mut to_start = (first.0 - start_ms) as f64 / 1000.0;
    let to_end = (end_ms - last.0) as f64 / 1000.0;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (interval / sampled))
}

/// The `q` quantile of a histogram given as (upper bound, cumulative count) buckets, as
/// PromQL's `histogram_quantile`.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut sorted: Vec<(f64, f64)> = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Buckets with the same bound (from several series) are one bucket.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for (le, count) in sorted {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }
    if merged.len() < 2 || merged.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts must not decrease with the bound; extrapolated increases can make them.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 < max {
            b.1 = max;
        } else {
            max = b.1;
        }
    }
    let observations = merged[merged.len() - 1].1;
    if observations <= 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let rank = q * observations;
    let n = merged.len();
    let b = merged[..n - 1]
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(n - 1);
    if b == n - 1 {
        return merged[n - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (merged[b - 1].0, merged[b - 1].1)
    };
    let end = merged[b].0;
    let in_bucket = merged[b].1 - below;
    start + (end - start) * ((rank - below) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Scrapes every 10 s at 5, 15, …, 55 s of a 60 s window ending at 60 s; +10 each time.
    fn steady() -> Vec<Point> {
        (0..6)
            .map(|i| (5_000 + i * 10_000, 100.0 + 10.0 * i as f64))
            .collect()
    }

    #[test]
    fn increase_extrapolates_to_both_edges_of_the_window() {
        // 50 over 50 s sampled; 5 s to each edge < 1.1 × 10 s, so the interval is 60 s: 50 × 60/50.
        assert!(close(increase(&steady(), 0, 60_000).unwrap(), 60.0));
    }

    #[test]
    fn increase_extends_only_half_a_spacing_past_a_gap() {
        // Window (25, 85]: samples at 35, 45, 55 s (130, 140, 150): 20 over 20 s, spacing 10 s.
        // The start is 10 s away (< 11 s): +10 s; the end 30 s (≥ 11 s): +5 s. 20 × 35/20 = 35.
        assert!(close(increase(&steady(), 25_000, 85_000).unwrap(), 35.0));
    }

    #[test]
    fn increase_never_extrapolates_below_zero() {
        // A counter that starts at 2 and reaches 12 over 10 s: zero was 2 s before the first sample.
        let points = [(20_000, 2.0), (30_000, 12.0)];
        // Window (15, 30]: to_start 5 s, but to_zero = 10 × 2/10 = 2 s: interval 12 s → 12.
        assert!(close(increase(&points, 15_000, 30_000).unwrap(), 12.0));
    }

    #[test]
    fn increase_counts_through_a_counter_reset() {
        // 100, 110, then the proxy restarts: 5, 15. Increase 10 + 5 + 10 = 25 over 30 s sampled.
        let points = [
            (10_000, 100.0),
            (20_000, 110.0),
            (30_000, 5.0),
            (40_000, 15.0),
        ];
        // Window (10, 40] excludes the first sample: 110 → 5 → 15 is 5 + 10 = 15 over 20 s;
        // to_start 10 s (< 11 s but to_zero = 20 × 110/15 is larger) → +10: 15 × 30/20 = 22.5.
        assert!(close(increase(&points, 10_000, 40_000).unwrap(), 22.5));
        // Window (0, 40]: all four; 25 over 30 s, to_start 10 s, to_end 0: 25 × 40/30.
        assert!(close(
            increase(&points, 0, 40_000).unwrap(),
            25.0 * 40.0 / 30.0
        ));
    }

    #[test]
    fn increase_needs_two_samples_inside_the_window() {
        assert_eq!(increase(&[], 0, 10), None);
        assert_eq!(increase(&[(5, 1.0)], 0, 10), None);
        // The left edge is open: a sample exactly at the start is outside.
        assert_eq!(increase(&[(0, 1.0), (10, 2.0)], 0, 10), None);
        assert_eq!(increase(&[(10, 1.0), (20, 2.0)], 0, 15), None);
    }

    #[test]
    fn a_flat_counter_has_no_increase() {
        let points = [(1_000, 7.0), (2_000, 7.0), (3_000, 7.0)];
        assert_eq!(increase(&points, 0, 3_000), Some(0.0));
    }

    fn hist() -> Vec<(f64, f64)> {
        // 100 observations: 10 ≤ 5 ms, 60 ≤ 10, 90 ≤ 50, 99 ≤ 100, 100 ≤ +Inf.
        vec![
            (5.0, 10.0),
            (10.0, 60.0),
            (50.0, 90.0),
            (100.0, 99.0),
            (f64::INFINITY, 100.0),
        ]
    }

    #[test]
    fn quantiles_interpolate_linearly_inside_the_bucket() {
        // p50: rank 50 in (5, 10] holding 50 (from 10): 5 + 5 × 40/50 = 9.
        assert!(close(histogram_quantile(0.5, &hist()), 9.0));
        // p90: rank 90 is exactly the top of (10, 50]: 50.
        assert!(close(histogram_quantile(0.9, &hist()), 50.0));
        // p99: rank 99, top of (50, 100]: 100.
        assert!(close(histogram_quantile(0.99, &hist()), 100.0));
        // p5: rank 5 in the first bucket, from 0: 5 × 5/10 = 2.5.
        assert!(close(histogram_quantile(0.05, &hist()), 2.5));
    }

    #[test]
    fn a_rank_in_the_inf_bucket_answers_the_highest_finite_bound() {
        assert!(close(histogram_quantile(0.995, &hist()), 100.0));
    }

    #[test]
    fn buckets_are_sorted_merged_and_made_monotonic() {
        let mut shuffled = hist();
        shuffled.reverse();
        assert!(close(histogram_quantile(0.5, &shuffled), 9.0));
        // Two series' buckets: each half of hist(); merged they are hist().
        let halves: Vec<(f64, f64)> = hist()
            .into_iter()
            .flat_map(|(le, c)| [(le, c / 2.0), (le, c / 2.0)])
            .collect();
        assert!(close(histogram_quantile(0.5, &halves), 9.0));
        // A dip (10 ≤ 10 ms after 12 ≤ 5 ms) is lifted to 12.
        let dip = [(5.0, 12.0), (10.0, 10.0), (f64::INFINITY, 20.0)];
        // rank 10 falls in the first bucket: 5 × 10/12.
        assert!(close(histogram_quantile(0.5, &dip), 5.0 * 10.0 / 12.0));
    }

    #[test]
    fn no_observations_or_no_inf_bucket_is_nan() {
        assert!(histogram_quantile(0.5, &[(5.0, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        assert!(histogram_quantile(0.5, &[(5.0, 3.0), (10.0, 4.0)]).is_nan());
        assert!(histogram_quantile(0.5, &[(f64::INFINITY, 4.0)]).is_nan());
        assert!(histogram_quantile(f64::NAN, &hist()).is_nan());
        assert_eq!(histogram_quantile(-0.1, &hist()), f64::NEG_INFINITY);
        assert_eq!(histogram_quantile(1.1, &hist()), f64::INFINITY);
    }
}
