//! Pretraining without labels (SimCLR, Chen et al. 2020): each image of a batch gives two
//! random views; the model's outputs (its projection head's) score every view against every
//! other by cosine similarity over a temperature, and the cross-entropy of those scores with
//! each view's twin as its target is the NT-Xent loss. The one training loop trains it as a
//! classifier of 2N − 1 "classes" per batch.

use anyhow::Result;
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::examples::{Batch, Examples, ImageExamples, Training, image_tensor};
use super::{Augment, ImageSet, Normalization};
use crate::bail_input;
use crate::models::{Classifier, Input};
use crate::{infer, parallel};

/// Training images remembered by the k-nearest-neighbour monitor, and validation images it
/// classifies: enough to rank representations, little next to an epoch.
const KNN_BANK: usize = 10_000;
const KNN_QUERIES: usize = 2_000;
/// Neighbours that vote, and the temperature of their votes (solo-learn's weighted kNN).
const KNN_K: usize = 20;
const KNN_TEMPERATURE: f32 = 0.07;

/// Images seen as pairs of random views; with `knn`, validation images whose backbone
/// features are classified by their nearest training images after every epoch.
pub struct Views<'a> {
    pub images: ImageExamples<'a>,
    pub augment: Augment,
    pub temperature: f64,
    pub knn: Option<Knn>,
}

/// The labelled images of the k-nearest-neighbour monitor (evenly spaced subsets).
pub struct Knn {
    bank: ImageSet,
    queries: ImageSet,
}

impl<'a> Views<'a> {
    /// Training views of `set`.
    pub fn new(set: &'a ImageSet, norm: &'a Normalization, augment: Augment, t: f64) -> Self {
        Views {
            images: set.normalized(norm),
            augment,
            temperature: t,
            knn: None,
        }
    }

    /// Validation views of `set`, monitored by nearest neighbours in `train` when both have
    /// labels of at least two classes (an unlabelled folder is one class).
    pub fn validation(self, train: &ImageSet) -> Self {
        let labelled = |s: &ImageSet| s.class_names.len() > 1 && !s.is_empty();
        let knn = (labelled(train) && labelled(self.images.set)).then(|| Knn {
            bank: spaced(train, KNN_BANK),
            queries: spaced(self.images.set, KNN_QUERIES),
        });
        Views { knn, ..self }
    }
}

/// At most `n` images of `set`, evenly spaced (the whole set when it is smaller).
fn spaced(set: &ImageSet, n: usize) -> ImageSet {
    let m = set.len().min(n);
    let indices: Vec<usize> = (0..m).map(|k| k * set.len() / m).collect();
    set.subset(&indices)
}

impl Examples for Views<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn labels(&self) -> &[usize] {
        self.images.labels()
    }

    /// Rows 0..N: the first view of each image; rows N..2N: the second; each row's target is
    /// its twin. Training draws view `v` of position `p` from `rng(v·N + p)`; evaluation draws
    /// from the image's index, the same views every time.
    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let n = indices.len();
        if let Some(t) = training
            && t.part != (0..n)
        {
            bail_input!("contrastive pretraining needs the whole batch in one process");
        }
        let set = self.images.set;
        let mut scratch = vec![0u8; set.image_len()];
        let mut values = Vec::with_capacity(2 * n * set.image_len());
        for view in 0..2 {
            for (p, &i) in indices.iter().enumerate() {
                let mut rng = match training {
                    Some(t) => t.rng(view * n + p),
                    None => StdRng::seed_from_u64((i as u64) << 1 | view as u64),
                };
                self.augment
                    .apply(set.image(i), &mut scratch, set.height, set.width, &mut rng);
                self.images.norm.extend(&mut values, &scratch);
            }
        }
        let shape = [2 * n, set.channels, set.height, set.width];
        let twins: Vec<i64> = (0..2 * n).map(|r| ((r + n) % (2 * n)) as i64).collect();
        Ok(Batch {
            input: Input::Images(image_tensor(values, shape, device)),
            targets: Tensor::from_data(TensorData::new(twins, [2 * n]), device),
        })
    }

    /// Half the images of a plain batch: each gives two views.
    fn inference_batch(&self) -> usize {
        (self.images.inference_batch() / 2).max(4)
    }

    fn noun(&self) -> &'static str {
        "img"
    }

    /// Views differ every epoch.
    fn fixed_features(&self) -> bool {
        false
    }

    /// The cosine similarity of every view with every other over the temperature; a view's
    /// similarity with itself is masked out.
    fn scores(&self, outputs: Tensor<2>) -> Tensor<2> {
        let rows = outputs.dims()[0];
        let z = unit_rows(outputs);
        let similarity = z.clone().matmul(z.transpose()) / self.temperature;
        let device = similarity.device();
        similarity - Tensor::<2>::eye(rows, &device) * 1e9
    }

    /// 1 − the k-nearest-neighbour accuracy (the backbone's features, cosine similarity) of
    /// the validation images, the training images their neighbours.
    fn error_rate(&self, model: &Classifier) -> Result<Option<f64>> {
        let Some(knn) = &self.knn else {
            return Ok(None);
        };
        let norm = self.images.norm;
        let bank = unit_rows(infer::features(model, &knn.bank.normalized(norm))?);
        let queries = unit_rows(infer::features(model, &knn.queries.normalized(norm))?);
        let classes = knn
            .bank
            .class_names
            .len()
            .max(knn.queries.class_names.len());
        let mut hits = 0;
        let mut start = 0;
        for chunk in queries.split(500, 0) {
            let rows = chunk.dims()[0];
            let similarity: Vec<f32> = chunk
                .matmul(bank.clone().transpose())
                .into_data()
                .try_to_vec()
                .expect("f32 similarities");
            for (r, sims) in similarity.chunks(knn.bank.len()).enumerate() {
                let mut order: Vec<usize> = (0..sims.len()).collect();
                let k = KNN_K.min(order.len());
                order.select_nth_unstable_by(k - 1, |&a, &b| sims[b].total_cmp(&sims[a]));
                let mut votes = vec![0f32; classes];
                for &j in &order[..k] {
                    votes[knn.bank.labels[j]] += (sims[j] / KNN_TEMPERATURE).exp();
                }
                hits += (infer::argmax(&votes) == knn.queries.labels[start + r]) as usize;
            }
            start += rows;
        }
        Ok(Some(1.0 - hits as f64 / knn.queries.len().max(1) as f64))
    }
}

/// Each row scaled to unit length.
fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norms = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norms
}

/// Contrastive pretraining compares the views of the whole batch: refused when the batch is
/// split across processes.
pub fn check_single_process() -> Result<()> {
    if parallel::place().size > 1 {
        bail_input!(
            "--task contrastive: the NT-Xent loss compares every view of a batch with every \
             other, and a batch split across {} processes does not see them all; run it in one \
             process",
            parallel::place().size
        );
    }
    Ok(())
}
