//! Thinning a long series for drawing: min/max bucketing keeps every bucket's lowest and
//! highest finite value, so spikes survive.

/// Indices (ascending) of the points kept when `values` is drawn with at most `max_points`
/// points.
///
/// If `values` has at most `max_points` entries, every index is kept. Otherwise the indices
/// are cut into `B = max_points / 2` buckets, bucket `b` being `b*n/B .. (b+1)*n/B` (integer
/// division, `n = values.len()`), and each bucket keeps the index of its smallest and of its
/// largest finite value (the first one on ties; one index if they coincide; none if the
/// bucket has no finite value). So at most `max_points` indices come back, and the minimum
/// and maximum of every bucket, hence of the whole series, survive. `max_points` below 2 is
/// taken as 2.
pub fn decimate_min_max(values: &[f64], max_points: usize) -> Vec<usize> {
    let n = values.len();
    let max_points = max_points.max(2);
    if n <= max_points {
        return (0..n).collect();
    }
    let buckets = max_points / 2;
    let mut kept = Vec::with_capacity(max_points);
    for b in 0..buckets {
        let lo = b * n / buckets;
        let hi = (b + 1) * n / buckets;
        let mut min: Option<(usize, f64)> = None;
        let mut max: Option<(usize, f64)> = None;
        for (i, &v) in values.iter().enumerate().take(hi).skip(lo) {
            if !v.is_finite() {
                continue;
            }
            if min.is_none_or(|(_, m)| v < m) {
                min = Some((i, v));
            }
            if max.is_none_or(|(_, m)| v > m) {
                max = Some((i, v));
            }
        }
        match (min, max) {
            (Some((a, _)), Some((c, _))) if a == c => kept.push(a),
            (Some((a, _)), Some((c, _))) => {
                kept.push(a.min(c));
                kept.push(a.max(c));
            }
            _ => {}
        }
    }
    kept
}
