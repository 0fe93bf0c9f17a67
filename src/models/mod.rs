//! Models: a backbone that turns an input (images, tokenised texts or speech) into features,
//! plus a linear head that turns features into scores. Architectures are found by name in a small
//! [`registry`].
//!
//! Every backbone names its tensors as the PyTorch model it mirrors (torchvision's, or the
//! seed's `Net` for `cnn`), so converting to and from PyTorch is one rule for all of them:
//! the PyTorch classifier layer ([`ArchInfo::torch_head`]) is our `head`, everything else is
//! `backbone.` + its PyTorch name (see [`from_torch_name`], [`to_torch_name`]).

pub mod bert;
pub mod bert2bert;
pub mod cnn;
pub mod convnext;
pub mod efficientnet;
pub mod inception;
mod layers;
pub mod lstm;
mod named;
pub mod registry;
pub mod resnet;
pub mod rnn;
pub mod seq2seq;
pub mod vgg;
pub mod vit;
pub mod whisper;

pub use registry::{ARCHITECTURES, ArchInfo, ArchKind, ImageArch, Interpolation, Sizes, arch};

use anyhow::Result;
use burn::module::{Param, ParamGroup};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bail_input;

/// Choices that change a model's layout beyond its architecture name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelOptions {
    /// For 28x28 and 32x32 images: inputs are resized to 32x32 and ResNets get CIFAR's stem
    /// (3x3 first conv at stride 1, no max-pool).
    #[serde(default)]
    pub small_input: bool,
    /// inception_v3: the model carries the auxiliary classifier (set by `import` when the
    /// weights have one).
    #[serde(default)]
    pub aux_logits: bool,
    /// Sequence-to-sequence models: the sizes of the encoder–decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq2seq: Option<seq2seq::Seq2SeqConfig>,
    /// Square inputs of this side instead of the architecture's own (`--image-size`): the data
    /// is resized to it; a ViT's position embeddings are resampled for its patch grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Text models: the sizes of the BERT encoder (its vocabulary is the checkpoint's tokenizer);
    /// `bert2bert`: of its encoder and of its decoder alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<bert::BertConfig>,
    /// `lstm`: the sizes and dropouts of the AWD-LSTM, and whether it is a language model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lstm: Option<lstm::LstmConfig>,
    /// Speech models: the sizes of the Whisper encoder and decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whisper: Option<whisper::WhisperConfig>,
    /// Contrastive pretraining: the head is SimCLR's projection (features → features, ReLU →
    /// [`PROJECTION_DIM`]), whose outputs are compared at this temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrastive: Option<Contrastive>,
}

/// How a contrastively pretrained model compares its projections.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contrastive {
    /// The NT-Xent loss's temperature: cosine similarities are divided by it.
    pub temperature: f64,
}

/// Outputs of SimCLR's projection head.
pub const PROJECTION_DIM: usize = 128;

impl ModelOptions {
    /// A text or speech model's vocabulary: the rows of the token embedding its tokenizer
    /// indexes (0 for other models).
    pub fn vocab_size(&self) -> usize {
        match (&self.bert, &self.lstm, &self.whisper) {
            (Some(c), _, _) => c.vocab_size,
            (_, Some(c), _) => c.vocab_size,
            (_, _, Some(c)) => c.vocab_size,
            _ => 0,
        }
    }
}

/// What a model takes: a batch of images, of tokenised texts, or of speech.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per batch
pub enum Input {
    /// `[B, C, H, W]`, normalised.
    Images(Tensor<4>),
    /// Token ids, token type ids and attention mask (1 for tokens, 0 for padding), each `[B, T]`.
    Tokens {
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        mask: Tensor<2>,
        /// Language modelling (masked or next-token): flat positions (`b * T + t`) whose tokens
        /// (or next tokens) are predicted. The features are then those positions' hidden
        /// states rather than the text's pooled one.
        predict_at: Option<Tensor<1, Int>>,
    },
    /// Sequence pairs: source ids and mask `[B, S]`, the target shifted right (`<s>` first) and
    /// its mask `[B, T]`, and the flat positions (`b * T + t`) whose next token is predicted.
    Pairs {
        source: Tensor<2, Int>,
        source_mask: Tensor<2>,
        target_in: Tensor<2, Int>,
        target_mask: Tensor<2>,
        predict_at: Tensor<1, Int>,
    },
    /// Speech with its transcript's tokens (`[B, T]`: the prompt, the text, the end token,
    /// padding), read by the decoder as the model reads them when it transcribes (teacher
    /// forcing). The features are the decoder's hidden states at the flat positions
    /// `predict_at` (`b * T + t`), each predicting the token after it.
    Speech {
        audio: Audio,
        tokens: Tensor<2, Int>,
        predict_at: Tensor<1, Int>,
    },
    /// Features `[B, F]` a frozen backbone computed already (once, for many runs): every
    /// backbone passes them through.
    Features(Tensor<2>),
}

/// The audio of a speech batch.
#[derive(Debug, Clone)]
pub enum Audio {
    /// Log-mel spectrograms `[B, mels, frames]`.
    Mel(Tensor<3>),
    /// The encoder's output `[B, positions, d]`, computed once when the encoder does not learn.
    Encoded(Tensor<3>),
}

/// The feature extractor of any architecture. (One model exists per run, so the variants'
/// different sizes cost nothing worth boxing for.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backbone {
    Cnn(cnn::Cnn),
    ResNet(resnet::ResNet),
    Vgg(vgg::Vgg),
    Inception(inception::Inception3),
    EfficientNet(efficientnet::EfficientNet),
    Vit(vit::VisionTransformer),
    ConvNext(convnext::ConvNext),
    Bert(bert::Bert),
    Lstm(lstm::AwdLstm),
    Seq2Seq(seq2seq::Seq2Seq),
    Whisper(whisper::Whisper),
    Bert2Bert(bert2bert::Bert2Bert),
}

impl Backbone {
    /// The parameters of the backbone's stages from input to output (named in
    /// [`ArchInfo::stages`]): the units that `--freeze-until` and `--layer-decay` work on.
    pub fn stages(&self) -> Vec<ParamGroup> {
        match self {
            Backbone::Cnn(m) => vec![
                ParamGroup::ids_from_module(m.conv1.clone()),
                ParamGroup::ids_from_module(m.conv2.clone()),
                ParamGroup::ids_from_module(m.fc1.clone()),
            ],
            Backbone::ResNet(m) => m.stages(),
            Backbone::Vgg(m) => m.stages(),
            Backbone::Inception(m) => m.stages(),
            Backbone::EfficientNet(m) => m.stages(),
            Backbone::Vit(m) => m.stages(),
            Backbone::ConvNext(m) => m.stages(),
            Backbone::Bert(m) => m.stages(),
            Backbone::Lstm(m) => m.stages(),
            Backbone::Seq2Seq(m) => vec![
                ParamGroup::ids_from_module(m.enc_emb.clone())
                    .fuse(&ParamGroup::ids_from_module(m.enc.clone())),
                ParamGroup::ids_from_module(m.dec_emb.clone())
                    .fuse(&ParamGroup::ids_from_module(m.dec.clone()))
                    .fuse(&m.attend.as_ref().map_or_else(
                        || ParamGroup::from_ids(vec![]),
                        |a| ParamGroup::ids_from_module(a.clone()),
                    )),
            ],
            Backbone::Whisper(m) => m.stages(),
            Backbone::Bert2Bert(m) => m.stages(),
        }
    }

    /// The same backbone for square inputs of `image_size`: a ViT resamples its position
    /// embeddings; convolutional backbones take any size as they are.
    pub fn resized(self, image_size: usize) -> Self {
        match self {
            Backbone::Vit(m) => Backbone::Vit(m.resized(image_size)),
            other => other,
        }
    }

    /// Inputs → feature vectors. Image backbones take images, text backbones tokens, speech
    /// backbones speech (reading their tokens' embeddings from `head`, to which they are
    /// tied); a mismatch (a text checkpoint given images) is the caller's input error.
    pub fn forward(&self, input: Input, head: &Head) -> Result<Tensor<2>> {
        Ok(match (self, input) {
            (_, Input::Features(f)) => f,
            (Backbone::Cnn(m), Input::Images(x)) => m.forward(x),
            (Backbone::ResNet(m), Input::Images(x)) => m.forward(x),
            (Backbone::Vgg(m), Input::Images(x)) => m.forward(x),
            (Backbone::Inception(m), Input::Images(x)) => m.forward(x),
            (Backbone::EfficientNet(m), Input::Images(x)) => m.forward(x),
            (Backbone::Vit(m), Input::Images(x)) => m.forward(x),
            (Backbone::ConvNext(m), Input::Images(x)) => m.forward(x),
            (
                Backbone::Bert(m),
                Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at,
                },
            ) => match predict_at {
                None => m.features(ids, types, mask),
                Some(positions) => m.token_features(ids, types, mask, positions),
            },
            (
                Backbone::Lstm(m),
                Input::Tokens {
                    ids,
                    mask,
                    predict_at,
                    ..
                },
            ) => match predict_at {
                None => m.features(ids, mask),
                Some(positions) => m.token_features(ids, mask, positions),
            },
            (
                Backbone::Seq2Seq(m),
                Input::Pairs {
                    source,
                    source_mask,
                    target_in,
                    target_mask,
                    predict_at,
                },
            ) => m.features(source, source_mask, target_in, target_mask, predict_at),
            (
                Backbone::Bert2Bert(m),
                Input::Pairs {
                    source,
                    source_mask,
                    target_in,
                    predict_at,
                    ..
                },
            ) => m.features(source, source_mask, target_in, predict_at),
            (Backbone::Seq2Seq(_) | Backbone::Bert2Bert(_), _) => {
                bail_input!("a sequence-to-sequence model takes sequence pairs")
            }
            (_, Input::Pairs { .. }) => bail_input!("this model does not take sequence pairs"),

            (
                Backbone::Whisper(m),
                Input::Speech {
                    audio,
                    tokens,
                    predict_at,
                },
            ) => {
                let encoded = match audio {
                    Audio::Mel(mel) => m.encode(mel),
                    Audio::Encoded(encoded) => encoded,
                };
                let hidden = m.forward(encoded, tokens, head.table());
                let [b, t, d] = hidden.dims();
                hidden.reshape([b * t, d]).select(0, predict_at)
            }
            (Backbone::Whisper(_), _) => bail_input!("a speech model was given images or texts"),
            (_, Input::Speech { .. }) => bail_input!("an image or text model was given speech"),
            (Backbone::Bert(_) | Backbone::Lstm(_), Input::Images(_)) => {
                bail_input!("a text model was given images")
            }
            (_, Input::Tokens { .. }) => bail_input!("an image model was given texts"),
        })
    }
}

/// What a model's head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// The class of each example (the head has one output per class).
    #[default]
    Classify,
    /// Masked language modelling (BERT models): each masked token, from the vocabulary (the
    /// head has one output per token of the vocabulary).
    Mlm,
    /// Next-token language modelling (`lstm`): each next token of a text, from the vocabulary
    /// (the head is the embedding read backwards).
    Lm,
    /// Sequence to sequence: each next token of the output, from its vocabulary (implied by
    /// the model and the data, not chosen with `--task`).
    #[value(skip)]
    Seq2seq,
    /// Speech recognition (speech models): the transcript, token by token (the head is the
    /// decoder's vocabulary; implied by the model, not chosen with `--task`).
    #[value(skip)]
    Transcribe,
    /// Pretraining without labels (image models): SimCLR's contrastive learning, which tells
    /// two random views of each image from those of the others in the batch (the head is a
    /// projection that fine-tuning drops).
    Contrastive,
}

/// The output layer: scores = features · W + b.
///
/// Two heads of recurrent text models differ (fastai's): a language model's is tied to its
/// input embedding (AWD-LSTM, ULMFiT) — W is the embedding read backwards and the head holds
/// only its bias; a classifier's batch-normalises the pooled features first
/// (`PoolingLinearClassifier`): a trained LSTM's outputs are near-saturated and alike from text
/// to text, and the normalisation is what lets a head tell them apart.
#[derive(Module, Debug)]
pub struct Head {
    pub norm: Option<BatchNorm>,
    /// A projection head's hidden layer, read through a ReLU (SimCLR's).
    pub hidden: Option<Linear>,
    /// `[features, outputs]` (Burn's layout); `None` when tied.
    pub weight: Option<Param<Tensor<2>>>,
    pub bias: Option<Param<Tensor<1>>>,
}

/// PyTorch's layout for our [`Head`] in burn-store's conversions, chained after its
/// `PyTorchToBurnAdapter` / `BurnToPyTorchAdapter`: those transpose the weights of Burn's
/// `nn::Linear` between PyTorch's `[out, in]` and Burn's `[in, out]`, knowing it by its type,
/// and our head is a linear layer of another type.
#[derive(Debug, Clone, Copy)]
pub struct HeadLayout;

impl burn::store::ModuleAdapter for HeadLayout {
    fn adapt(
        &self,
        tensor: burn::store::burn_pack::Tensor,
        ctx: burn::store::ModuleContext<'_>,
    ) -> burn::store::burn_pack::Tensor {
        if ctx.module_type() != Some("Struct:Head")
            || !tensor.name.ends_with("weight")
            || tensor.shape.len() != 2
        {
            return tensor;
        }
        let (name, dtype) = (tensor.name.clone(), tensor.dtype);
        let shape = burn::tensor::Shape::new([tensor.shape[1], tensor.shape[0]]);
        burn::store::bridge::map_data(tensor, name, dtype, shape, |data| {
            let device = Device::flex();
            Tensor::<2>::from_data(data, &device)
                .transpose()
                .into_data()
        })
    }

    fn clone_box(&self) -> Box<dyn burn::store::ModuleAdapter> {
        Box::new(*self)
    }
}

/// burn-store's adapter from PyTorch's layouts to Burn's, our head's included.
pub fn from_pytorch_layout() -> Box<dyn burn::store::ModuleAdapter> {
    use burn::store::ModuleAdapter;
    Box::new(burn::store::PyTorchToBurnAdapter.chain(HeadLayout))
}

/// Which head a model gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadKind {
    Linear,
    /// A language model's, tied to the input embedding.
    Tied,
    /// A recurrent classifier's: batch norm, then linear.
    Normalized,
    /// A speech model's: its decoder's token table too (the decoder reads its embeddings
    /// from the head), without bias, drawn as Whisper draws its embeddings.
    Table,
    /// SimCLR's projection: a hidden layer as wide as the features, a ReLU, then linear.
    Projection,
}

impl HeadKind {
    /// The head `arch` with `options` gets.
    fn of(arch: &ArchInfo, options: &ModelOptions) -> HeadKind {
        match &options.lstm {
            _ if arch.is_speech() => HeadKind::Table,
            _ if arch.name == bert2bert::ARCH => HeadKind::Tied,
            _ if options.contrastive.is_some() => HeadKind::Projection,
            Some(c) if c.tie_weights => HeadKind::Tied,
            Some(_) => HeadKind::Normalized,
            None => HeadKind::Linear,
        }
    }
}

impl Head {
    /// A head drawn as PyTorch's `nn.Linear` is; tied: only its bias, at zero (fastai's
    /// `LinearDecoder`).
    fn new(features: usize, outputs: usize, kind: HeadKind, device: &Device) -> Head {
        let linear = match kind {
            HeadKind::Table => LinearConfig::new(features, outputs)
                .with_bias(false)
                .with_initializer(whisper::init()),
            _ => LinearConfig::new(features, outputs),
        }
        .init(device);
        if kind == HeadKind::Tied {
            return Head {
                norm: None,
                hidden: None,
                weight: None,
                bias: Some(Param::from_tensor(Tensor::zeros([outputs], device))),
            };
        }
        Head {
            norm: (kind == HeadKind::Normalized)
                .then(|| BatchNormConfig::new(features).init(device)),
            hidden: (kind == HeadKind::Projection)
                .then(|| LinearConfig::new(features, features).init(device)),
            weight: Some(linear.weight),
            bias: linear.bias,
        }
    }

    /// Scores for `features` `[N, F]`; a tied head scores with `tied` `[outputs, F]`.
    fn forward(&self, features: Tensor<2>, tied: impl FnOnce() -> Option<Tensor<2>>) -> Tensor<2> {
        let features = match &self.norm {
            Some(norm) => norm.forward(features),
            None => features,
        };
        let features = match &self.hidden {
            Some(hidden) => burn::tensor::activation::relu(hidden.forward(features)),
            None => features,
        };
        let scores = match &self.weight {
            Some(w) => features.matmul(w.val()),
            None => features.matmul(
                tied()
                    .expect("a tied head's backbone has an embedding")
                    .transpose(),
            ),
        };
        match &self.bias {
            Some(b) => scores + b.val().unsqueeze_dim(0),
            None => scores,
        }
    }

    /// A speech model's token table `[features, outputs]`, which its decoder embeds with.
    pub fn table(&self) -> Tensor<2> {
        self.weight
            .as_ref()
            .expect("a speech model's head has its token table")
            .val()
    }

    /// Outputs (classes, or tokens of a vocabulary).
    pub fn outputs(&self) -> usize {
        match (&self.weight, &self.bias) {
            (Some(w), _) => w.dims()[1],
            (None, Some(b)) => b.dims()[0],
            (None, None) => 0,
        }
    }
}

impl Task {
    /// Whether the model predicts tokens of its own input (masked or next).
    pub fn is_language_model(self) -> bool {
        matches!(self, Task::Mlm | Task::Lm)
    }

    /// What a language model is trained by, for people.
    pub fn objective(self) -> &'static str {
        match self {
            Task::Mlm => "masked language modelling",
            Task::Lm => "next-token language modelling",
            Task::Classify => "classification",
            Task::Seq2seq => "sequence to sequence",
            Task::Transcribe => "speech recognition",
            Task::Contrastive => "contrastive learning (SimCLR)",
        }
    }

    /// What a language model's accuracy counts: `masked-token` or `next-token`.
    pub fn predicted_tokens(self) -> &'static str {
        match self {
            Task::Lm => "next-token",
            _ => "masked-token",
        }
    }
}

/// A backbone plus a linear head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Head,
}

impl Classifier {
    /// A freshly initialised `arch` with a head for `num_classes` classes, on `device`. The
    /// weights are drawn on the CPU from `seed` (then moved): the same seed gives the same
    /// weights on every device, and every process of a distributed run starts alike.
    pub fn new(
        arch: &ArchInfo,
        options: &ModelOptions,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let cpu = init_device();
        cpu.seed(seed);
        let model = Classifier {
            backbone: (arch.backbone)(options, num_classes, &cpu),
            head: Head::new(
                arch.features_for(options),
                num_classes,
                HeadKind::of(arch, options),
                &cpu,
            ),
        };
        initialised(model).fork(device)
    }

    /// BERT2BERT warm-started from `pretrained` (of `config`): its weights in both halves,
    /// the cross-attention drawn from `seed` ([`bert2bert::Bert2Bert::warm_start`]). Returns
    /// the model and how many tensors each half took.
    pub fn warm_started_bert2bert(
        pretrained: &bert::Bert,
        config: &bert::BertConfig,
        seed: u64,
        device: &Device,
    ) -> anyhow::Result<(Self, (usize, usize))> {
        let cpu = init_device();
        cpu.seed(seed);
        let mut backbone = initialised(bert2bert::Bert2Bert::new(config, &cpu));
        let taken = backbone.warm_start(pretrained)?;
        let head = Head::new(config.hidden_size, config.vocab_size, HeadKind::Tied, &cpu);
        let model = Classifier {
            backbone: Backbone::Bert2Bert(backbone),
            head: initialised(head),
        };
        Ok((model.fork(device), taken))
    }

    /// `backbone` with a new head of `num_classes` outputs reading `features`, drawn from
    /// `seed`.
    pub fn with_new_head(
        backbone: Backbone,
        features: usize,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let cpu = init_device();
        cpu.seed(seed);
        let kind = match backbone {
            Backbone::Lstm(_) => HeadKind::Normalized,
            Backbone::Whisper(_) => HeadKind::Table,
            Backbone::Bert2Bert(_) => HeadKind::Tied,
            _ => HeadKind::Linear,
        };
        let head = initialised(Head::new(features, num_classes, kind, &cpu)).fork(device);
        Classifier { backbone, head }
    }

    /// The device the model computes on.
    pub fn device(&self) -> Device {
        match (&self.head.bias, &self.head.weight) {
            (Some(b), _) => b.device(),
            (None, Some(w)) => w.device(),
            (None, None) => unreachable!("a head has a weight or a bias"),
        }
    }

    /// Outputs of the head.
    pub fn outputs(&self) -> usize {
        self.head.outputs()
    }

    /// The same backbone with a new head for `num_classes` classes (timm's `reset_classifier`),
    /// drawn from `seed`.
    pub fn reset_head(self, num_classes: usize, seed: u64) -> Self {
        let features = match &self.head.weight {
            Some(w) => w.dims()[0],
            None => panic!("reset_head: a tied head has no width of its own"),
        };
        let device = self.device();
        Self::with_new_head(self.backbone, features, num_classes, seed, &device)
    }

    /// The same model for square inputs of `image_size` (see [`Backbone::resized`]).
    pub fn resized(self, image_size: usize) -> Self {
        Classifier {
            backbone: self.backbone.resized(image_size),
            ..self
        }
    }

    /// Inputs → features (timm's `forward_features`).
    pub fn forward_features(&self, x: Input) -> Result<Tensor<2>> {
        self.backbone.forward(x, &self.head)
    }

    /// Features → class scores (timm's `forward_head`).
    pub fn forward_head(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features, || match &self.backbone {
            Backbone::Lstm(m) => Some(m.tied_weight()),
            Backbone::Bert2Bert(m) => Some(m.tied_weight()),
            _ => None,
        })
    }

    /// Whether the head is also the backbone's token table (a speech model's): it has no
    /// features of its own to train apart from the backbone.
    pub fn head_is_tied(&self) -> bool {
        matches!(self.backbone, Backbone::Whisper(_))
    }

    /// Inputs → class scores (logits).
    pub fn forward(&self, x: Input) -> Result<Tensor<2>> {
        Ok(self.forward_head(self.forward_features(x)?))
    }
}

/// Where weights are drawn: the CPU, with autodiff as training wants them.
fn init_device() -> Device {
    Device::flex().autodiff()
}

/// `module` with every parameter drawn now. Burn draws them lazily, on first use — that is,
/// after whatever the first step seeded the generator with; drawing at once makes the weights
/// a function of the seed the model was built with alone.
fn initialised<M: Module>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

/// Tensor-name prefix of the backbone's parameters in checkpoints.
pub const BACKBONE_PREFIX: &str = "backbone.";
const HEAD_PREFIX: &str = "head.";

/// Our name (without enum variants) of the PyTorch tensor `key` of `arch`. A `module.` prefix
/// (left by `nn.DataParallel`/DDP) is dropped.
pub fn from_torch_name(arch: &ArchInfo, key: &str) -> String {
    let key = key.strip_prefix("module.").unwrap_or(key);
    match key
        .strip_prefix(arch.torch_head)
        .and_then(|r| r.strip_prefix('.'))
    {
        Some(rest) => format!("{HEAD_PREFIX}{rest}"),
        None => format!("{BACKBONE_PREFIX}{key}"),
    }
}

/// The PyTorch name of our tensor `name` (without enum variants).
pub fn to_torch_name(arch: &ArchInfo, name: &str) -> String {
    match name.strip_prefix(HEAD_PREFIX) {
        Some(rest) => format!("{}.{rest}", arch.torch_head),
        None => name
            .strip_prefix(BACKBONE_PREFIX)
            .unwrap_or(name)
            .to_string(),
    }
}

/// A tensor that did not fit when loading weights into a model, for a person: its name (as
/// `rename` gives it) and the shapes, in PyTorch's layout when `torch_layout` (Linear weights
/// there are [out, in]; Burn keeps [in, out]).
pub fn load_error(
    err: &burn::store::ApplyError,
    rename: impl Fn(&str) -> String,
    torch_layout: bool,
) -> String {
    use burn::store::ApplyError;
    let shape = |path: &str, shape: &burn::tensor::Shape| {
        let mut dims = shape.to_vec();
        // (Embedding tables are not transposed: only Linear weights are.)
        if torch_layout
            && dims.len() == 2
            && path.ends_with("weight")
            && !path.contains("embeddings")
        {
            dims.reverse();
        }
        dims
    };
    match err {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor {} has shape {:?}, but the model needs {:?} there",
            rename(path),
            shape(path, found),
            shape(path, expected)
        ),
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor {} is {found:?}, but the model needs {expected:?}",
            rename(path)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_names_map_both_ways() {
        let vgg = arch("vgg16").unwrap();
        for (torch, ours) in [
            ("features.28.weight", "backbone.features.28.weight"),
            ("classifier.3.bias", "backbone.classifier.3.bias"),
            ("classifier.6.weight", "head.weight"),
            ("module.classifier.6.bias", "head.bias"),
        ] {
            assert_eq!(from_torch_name(vgg, torch), ours);
            assert_eq!(
                to_torch_name(vgg, ours),
                torch.trim_start_matches("module.")
            );
        }
        // `fc2` is the cnn's head, `fc1` is not.
        let cnn = arch("cnn").unwrap();
        assert_eq!(from_torch_name(cnn, "fc1.weight"), "backbone.fc1.weight");
        assert_eq!(from_torch_name(cnn, "fc2.weight"), "head.weight");
    }
}
