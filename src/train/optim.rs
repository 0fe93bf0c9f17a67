//! The optimizer and its parameter groups: which parameters learn in a phase (frozen parts,
//! LoRA adapters), at which rates (per backbone stage), with which weight decay.

use burn::module::{Lora, Module, ParamGroup};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrSchedulerConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate,
    ModuleOptimizer, SgdConfig,
};
use burn::prelude::*;

use super::{Frozen, Optimizer, Phase, Recipe};
use crate::kernels;
use crate::models::Classifier;

/// Freeze what `frozen` says and unfreeze the rest. A LoRA phase attaches its adapters unless
/// the model already has them (`has_adapters`: a resumed run).
pub fn freeze_for(model: Classifier, frozen: &Frozen, has_adapters: bool) -> Classifier {
    match frozen {
        Frozen::Lora { rank, alpha } => {
            let head = ParamGroup::ids_from_module(model.head.clone());
            let tied = model.head_is_tied();
            let model = if has_adapters {
                model
            } else {
                lora(model, *rank, *alpha)
            };
            // Everything but the adapters and the head is frozen; a head that is also the
            // backbone's token table (speech) stays as pretrained, as PEFT leaves embeddings.
            if tied {
                model
            } else {
                model.unfreeze_group(head)
            }
        }
        Frozen::Nothing => model.unfreeze(),
        Frozen::Backbone => {
            let mut model = model.unfreeze();
            model.backbone = model.backbone.freeze();
            model
        }
        Frozen::Stages(last) => {
            let model = model.unfreeze();
            let group = model.backbone.stages()[..=*last]
                .iter()
                .fold(ParamGroup::from_ids(vec![]), |g, s| g.fuse(s));
            model.freeze_group(group)
        }
    }
}

/// `model` with LoRA adapters of `rank` on its attention query and value weights (BERT's
/// `query`/`value`, Whisper's `q_proj`/`v_proj`), and every other parameter frozen.
pub fn lora(model: Classifier, rank: usize, alpha: f64) -> Classifier {
    let targets =
        ParamGroup::from_regex(r"\.(query|value|q_proj|v_proj)\.weight$").expect("a valid pattern");
    model.apply_lora(Lora::new(rank, alpha).set_param_group(targets))
}

/// Parameter groups and their rate relative to the head: the backbone's stages, top stage at
/// `backbone_lr_mult`, each one below at a further `layer_decay`.
pub fn lr_groups(model: &Classifier, phase: &Phase) -> Vec<(ParamGroup, f64)> {
    let stages = model.backbone.stages();
    let n = stages.len();
    stages
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            (
                group,
                phase.backbone_lr_mult * phase.layer_decay.powi((n - 1 - i) as i32),
            )
        })
        .filter(|(_, mult)| *mult != 1.0)
        .collect()
}

/// The rate of every group at a step whose head rate is `lr`.
pub fn learning_rates(lr: f64, groups: &[(ParamGroup, f64)]) -> ModuleLearningRate {
    groups
        .iter()
        .fold(
            ModuleLrSchedulerConfig::new(lr.into()),
            |config, (group, mult)| config.with_group(group.clone(), lr * mult),
        )
        .init()
        .expect("constant learning rates are valid")
        .step()
}

/// The recipe's optimizer; biases are never weight-decayed.
pub fn optimizer(recipe: &Recipe) -> ModuleOptimizer {
    let wd = recipe.weight_decay;
    let biases = ParamGroup::from_predicate("bias");
    let clip = recipe
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32));
    let optim = match recipe.optimizer {
        Optimizer::Sgd => {
            let sgd = |wd: f64| {
                SgdConfig::new()
                    .with_momentum((recipe.momentum > 0.0).then_some(MomentumConfig {
                        momentum: recipe.momentum,
                        dampening: 0.0,
                        nesterov: false,
                    }))
                    .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd as f32)))
            };
            sgd(wd)
                .init()
                .with_group(biases, sgd(0.0).build(), clip.as_ref().map(|c| c.init()))
        }
        Optimizer::Adam => AdamConfig::new().init(),
        Optimizer::Adamw => ModuleOptimizer::from(FusedAdamW::new(wd)).with_group(
            biases,
            FusedAdamW::new(0.0),
            clip.as_ref().map(|c| c.init()),
        ),
    };
    match clip {
        Some(c) => optim.with_grad_clipping(c.init()),
        None => optim,
    }
}

/// Burn's AdamW (its defaults, its state: resume states are the same) with the update fused
/// into one in-place pass per parameter where [`kernels::adamw_step`] applies.
#[derive(Clone)]
pub struct FusedAdamW {
    burn: AdamW,
    weight_decay: f32,
}

/// Burn's AdamW defaults (`AdamWConfig`): its epsilon is added to the corrected root.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

impl FusedAdamW {
    pub fn new(weight_decay: f64) -> Self {
        let weight_decay = weight_decay as f32;
        let burn = AdamWConfig::new()
            .with_beta_1(BETA_1)
            .with_beta_2(BETA_2)
            .with_epsilon(EPSILON)
            .with_weight_decay(weight_decay)
            .build();
        FusedAdamW { burn, weight_decay }
    }
}

impl burn::optim::Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let time = state.as_ref().map_or(0, |s| s.momentum.time) + 1;
        let step = kernels::adamw::Step {
            lr: lr as f32,
            beta_1: BETA_1,
            beta_2: BETA_2,
            epsilon: EPSILON,
            decay: (lr * self.weight_decay as f64) as f32,
            time: time as i32,
        };
        let fused = match &state {
            Some(s) => kernels::adamw_applies(&[
                &tensor,
                &grad,
                &s.momentum.moment_1,
                &s.momentum.moment_2,
            ]),
            None => kernels::adamw_applies(&[&tensor, &grad]),
        };
        if !fused
            || state
                .as_ref()
                .is_some_and(|s| s.momentum.max_moment_2.is_some())
        {
            return self.burn.step(lr, tensor, grad, state);
        }
        let moments = state.map(|s| (s.momentum.moment_1, s.momentum.moment_2));
        let (tensor, moment_1, moment_2) = kernels::adamw_step(tensor, grad, moments, step);
        let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
        (tensor, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{self, Input};
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn weight_decay_skips_biases() {
        let device = crate::DeviceSpec::Cpu.device().unwrap();
        let model = Classifier::new(
            models::arch("cnn").unwrap(),
            &Default::default(),
            3,
            0,
            &device,
        );
        let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(model.forward(Input::Images(x)).unwrap(), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g_w = values(
            grads
                .get::<2>(model.head.weight.as_ref().unwrap().id)
                .unwrap(),
        );
        let g_b = values(
            grads
                .get::<1>(model.head.bias.as_ref().unwrap().id)
                .unwrap(),
        );
        let (w0, b0) = (
            values(model.head.weight.as_ref().unwrap().val()),
            values(model.head.bias.as_ref().unwrap().val()),
        );

        // Plain SGD, rate 1, decay 0.5: w' = w - (g + 0.5 w) but b' = b - g.
        let recipe = Recipe {
            optimizer: Optimizer::Sgd,
            momentum: 0.0,
            weight_decay: 0.5,
            ..Recipe::default()
        };
        let model = optimizer(&recipe).step(1.0, model, grads);
        let (w1, b1) = (
            values(model.head.weight.as_ref().unwrap().val()),
            values(model.head.bias.as_ref().unwrap().val()),
        );
        for i in 0..w0.len() {
            assert!(
                (w1[i] - (w0[i] - g_w[i] - 0.5 * w0[i])).abs() < 1e-5,
                "weight {i} not decayed"
            );
        }
        for i in 0..b0.len() {
            assert!((b1[i] - (b0[i] - g_b[i])).abs() < 1e-6, "bias {i} decayed");
        }
    }

    /// Our fused AdamW moves every parameter as Burn's does, step after step (the state it
    /// keeps is Burn's), and leaves a clone of the model it started from untouched.
    #[test]
    fn fused_adamw_matches_burns() {
        let device = crate::DeviceSpec::Cpu.device().unwrap();
        let start = Classifier::new(
            models::arch("cnn").unwrap(),
            &Default::default(),
            3,
            0,
            &device,
        );
        let before = values(start.head.weight.as_ref().unwrap().val());
        let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &device);
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let train = |mut optim: ModuleOptimizer| {
            let mut model = start.clone();
            for _ in 0..3 {
                let loss =
                    loss_fn.forward(model.forward(Input::Images(x.clone())).unwrap(), y.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-2, model, grads);
            }
            model
        };
        let burns = train(
            AdamWConfig::new()
                .with_weight_decay(0.01)
                .init()
                .with_group(
                    ParamGroup::from_predicate("bias"),
                    AdamWConfig::new().with_weight_decay(0.0).build(),
                    None,
                ),
        );
        let ours = train(optimizer(&Recipe {
            optimizer: Optimizer::Adamw,
            weight_decay: 0.01,
            ..Recipe::default()
        }));
        struct All(Vec<f32>);
        impl burn::module::ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.extend(values(p.val()));
            }
        }
        let params = |m: &Classifier| {
            let mut all = All(Vec::new());
            m.visit(&mut all);
            all.0
        };
        let (a, b) = (params(&burns), params(&ours));
        assert_eq!(a.len(), b.len());
        let moved = a
            .iter()
            .zip(&params(&start))
            .filter(|(x, y)| x != y)
            .count();
        assert!(
            moved > a.len() / 2,
            "Burn's AdamW moved only {moved} of {}",
            a.len()
        );
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "fused AdamW differs from Burn's by {worst}");
        assert_eq!(values(start.head.weight.as_ref().unwrap().val()), before);
    }
}
