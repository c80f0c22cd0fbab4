//! Inner cross-validation folds on the calibration epochs only.

/// Stratified, chronological folds: each class's epochs, in recording order, are dealt to the
/// folds in turn, so every fold holds every class and early and late trials alike.
/// Returns, per fold, the indices of its validation epochs; `k` is capped by the smallest class.
pub fn stratified_folds(labels: &[usize], n_classes: usize, k: usize) -> Vec<Vec<usize>> {
    let smallest = (0..n_classes)
        .map(|c| labels.iter().filter(|&&l| l == c).count())
        .min()
        .unwrap_or(0);
    let k = k.min(smallest);
    if k < 2 {
        return Vec::new();
    }
    let mut folds = vec![Vec::new(); k];
    for class in 0..n_classes {
        let members = labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == class)
            .map(|(i, _)| i);
        for (n, i) in members.enumerate() {
            folds[n % k].push(i);
        }
    }
    for fold in &mut folds {
        fold.sort_unstable();
    }
    folds
}

/// The rows `indices` of `t` (along its first dimension), in that order.
pub fn rows(
    t: &candle_core::Tensor,
    indices: &[usize],
) -> candle_core::Result<candle_core::Tensor> {
    let ids: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    let ids = candle_core::Tensor::from_vec(ids, indices.len(), t.device())?;
    t.index_select(&ids, 0)
}

/// The indices in `0..n` that are not in `held_out` (sorted).
pub fn complement(n: usize, held_out: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !held_out.contains(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_disjoint_and_complete() {
        let labels = [0, 1, 0, 1, 1, 0, 0, 1, 0, 1];
        let folds = stratified_folds(&labels, 2, 3);
        assert_eq!(folds.len(), 3);
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        for fold in &folds {
            assert!(fold.iter().any(|&i| labels[i] == 0) && fold.iter().any(|&i| labels[i] == 1));
        }
        assert_eq!(complement(10, &folds[0]).len(), 10 - folds[0].len());
    }

    #[test]
    fn too_few_trials_give_no_folds() {
        assert!(stratified_folds(&[0, 1, 1], 2, 5).is_empty());
        assert_eq!(stratified_folds(&[0, 1, 0, 1], 2, 5).len(), 2);
    }
}
