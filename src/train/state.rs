//! The resume state of a run: one file, written atomically, holding where the run is (phase,
//! epoch, step, history, best epoch), the current and best weights, and the optimizer's moments.
//! Killed at any moment, a run resumed from it ends bit-identical to one never interrupted.

use std::path::Path;

use anyhow::{Context, Result};
use bincode::Options;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::{EpochRecord, Keep, Score};
use crate::fs::write_atomic;
use crate::models::Classifier;
use crate::{bail_input, input_error};

const MAGIC: &[u8; 16] = b"PRETUNE-STATE-5\n";

/// How far a run has got. (Encoded with bincode: the field order is the file's layout; add
/// fields at the end only, and bump `MAGIC` when the layout changes.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Index of the current phase.
    pub phase: usize,
    /// Epochs finished in the current phase.
    pub epochs_done: usize,
    /// Steps finished in the current epoch.
    pub steps_done: usize,
    /// Running sums of the current epoch: loss × predictions, correct predictions, predictions
    /// (one per example, or per masked token), examples.
    pub loss_sum: f64,
    pub correct: usize,
    pub predicted: usize,
    pub seen: usize,
    /// Steps of the current epoch skipped for a non-finite loss (`--skip-nonfinite`).
    pub skipped: usize,
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights are kept so far.
    pub best: Best,
    /// Early stopping (or an observer) ended the run.
    pub stopped: bool,
}

/// The kept epoch and its validation score (accuracy, or minus the loss or error rate), as a
/// run goes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Best {
    pub epoch: usize,
    pub score: Option<f64>,
}

impl Best {
    /// Whether epoch `epoch`, which ended with `record`, is to be kept under `keep` (the best
    /// score, earliest on ties; without validation, the latest). If so, it becomes the kept one.
    pub fn improves(&mut self, keep: Keep, epoch: usize, record: &EpochRecord) -> bool {
        let score = match keep {
            Keep::Last => None,
            Keep::Best(Score::Accuracy) => record.val_accuracy,
            Keep::Best(Score::Loss) => record.val_loss.map(|l| -l),
            Keep::Best(Score::ErrorRate) => record.val_error_rate.map(|e| -e),
        };
        let better = match (score, self.score) {
            _ if keep == Keep::Last => true,
            (Some(new), Some(old)) => new > old,
            _ => true,
        };
        if better {
            *self = Best { epoch, score };
        }
        better
    }
}

impl Progress {
    /// The same progress with the current epoch's running sums cleared.
    pub fn next_epoch(self) -> Progress {
        Progress {
            steps_done: 0,
            loss_sum: 0.0,
            correct: 0,
            predicted: 0,
            seen: 0,
            skipped: 0,
            ..self
        }
    }
}

/// Everything needed to continue a run: what it is (the caller's description `D`, e.g. the
/// metadata of the checkpoint to be), its current weights, and where the loop was.
pub struct Snapshot<D> {
    pub run: D,
    pub model: Classifier,
    pub resume: Resume,
}

/// What [`super::fit`] continues from.
pub struct Resume {
    pub progress: Progress,
    /// The weights kept so far.
    pub best: Classifier,
    /// The current phase's optimizer state.
    pub optim: Bytes,
}

/// Encoded with bincode, not JSON: its floats come back bit for bit (serde_json's default
/// parser can be one unit in the last place off, and a resumed run must repeat exactly).
#[derive(Serialize, Deserialize)]
struct Header {
    /// The run description as JSON text (bincode cannot encode a free-form JSON value).
    run: String,
    progress: Progress,
}

/// Write `run`, `progress`, weights and optimizer state to `path` in one atomic write.
pub fn save(
    path: &Path,
    run: &serde_json::Value,
    progress: &Progress,
    model: &Classifier,
    best: &Classifier,
    optim: &Bytes,
) -> Result<()> {
    let header = bincode::serialize(&Header {
        run: run.to_string(),
        progress: progress.clone(),
    })?;
    let record = |m: &Classifier| {
        m.clone()
            .into_record()
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("serialising the weights: {e}"))
    };
    let (model, best) = (record(model)?, record(best)?);
    // `model` and `best` were detached (see `step::detached`): BatchNorm statistics included.
    let mut out = Vec::with_capacity(header.len() + model.len() + best.len() + optim.len() + 48);
    out.extend_from_slice(MAGIC);
    for part in [&header[..], &model[..], &best[..], &optim[..]] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    write_atomic(path, &out)
}

/// Read a state file written by [`save`], restoring weights into fresh models that `fresh` makes
/// for the run description.
pub fn load<D: serde::de::DeserializeOwned>(
    path: &Path,
    fresh: impl Fn(&D) -> Result<Classifier>,
) -> Result<Snapshot<D>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the resume state", path.display()))?;
    parse(&bytes, path, fresh)
}

/// A state file's `bytes` (read from `path`, or received from the process that read it).
pub fn parse<D: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    fresh: impl Fn(&D) -> Result<Classifier>,
) -> Result<Snapshot<D>> {
    let shown = path.display();
    if !bytes.starts_with(MAGIC) {
        // Resume states live only while a run is unfinished; an older layout is not converted.
        if bytes.starts_with(&MAGIC[..14]) {
            bail_input!(
                "{shown}: a resume state of another pretune version (format {}, this one reads {}): \
                 finish the run with the version that began it, or start it again",
                String::from_utf8_lossy(&bytes[14..15]),
                String::from_utf8_lossy(&MAGIC[14..15])
            );
        }
        bail_input!("{shown}: not a pretune resume state");
    }
    let mut parts = Vec::with_capacity(4);
    let mut at = MAGIC.len();
    for _ in 0..4 {
        let len = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
        let part = len.and_then(|n| bytes.get(at + 8..(at + 8).checked_add(n)?));
        let Some(part) = part else {
            bail_input!("{shown}: truncated resume state")
        };
        parts.push(part);
        at += 8 + part.len();
    }
    // Bounded by the part's length: a damaged length field cannot make us allocate more.
    let header: Header = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(parts[0].len() as u64)
        .deserialize(parts[0])
        .map_err(|e| input_error!("{shown}: damaged resume state: {e}"))?;
    let run: D = serde_json::from_str(&header.run)
        .map_err(|e| input_error!("{shown}: damaged run description: {e}"))?;
    let restore = |b: &[u8]| -> Result<Classifier> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(b.to_vec()))
            .map_err(|e| input_error!("{shown}: damaged weights: {e}"))?;
        fresh(&run)?
            .try_load_record(record)
            .map_err(|e| input_error!("{shown}: weights do not fit: {e}"))
    };
    Ok(Snapshot {
        model: restore(parts[1])?,
        resume: Resume {
            progress: header.progress,
            best: restore(parts[2])?,
            optim: Bytes::from_bytes_vec(parts[3].to_vec()),
        },
        run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(acc: Option<f64>, loss: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch: 1,
            phase: "all".into(),
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss: loss,
            val_accuracy: acc,
            lr: 1e-3,
            seconds: 1.0,
            examples_per_second: 1.0,
            skipped_steps: 0,
            val_error_rate: None,
        }
    }

    #[test]
    fn the_best_epoch_is_kept_earliest_on_ties() {
        let mut best = Best::default();
        let accuracy = Keep::Best(Score::Accuracy);
        assert!(best.improves(accuracy, 1, &epoch(Some(0.5), Some(1.0))));
        assert!(best.improves(accuracy, 2, &epoch(Some(0.7), Some(0.9))));
        assert!(!best.improves(accuracy, 3, &epoch(Some(0.7), Some(0.1))));
        assert!(!best.improves(accuracy, 4, &epoch(Some(0.6), Some(0.1))));
        assert_eq!(best.epoch, 2);
        // Loss: lower is better.
        let mut best = Best::default();
        let loss = Keep::Best(Score::Loss);
        assert!(best.improves(loss, 1, &epoch(Some(0.5), Some(2.0))));
        assert!(best.improves(loss, 2, &epoch(Some(0.1), Some(1.5))));
        assert!(!best.improves(loss, 3, &epoch(Some(0.9), Some(1.6))));
        // Without validation, or keeping the last: every epoch.
        let mut best = Best::default();
        assert!(best.improves(accuracy, 1, &epoch(None, None)));
        assert!(best.improves(accuracy, 2, &epoch(None, None)));
        let mut best = Best::default();
        assert!(best.improves(Keep::Last, 1, &epoch(Some(0.9), None)));
        assert!(best.improves(Keep::Last, 2, &epoch(Some(0.1), None)));
        assert_eq!(
            best,
            Best {
                epoch: 2,
                score: None
            }
        );
    }
}
