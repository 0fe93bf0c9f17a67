//! Recurrent layers as PyTorch's `nn.GRU` and `nn.LSTM` compute and store them: gate weights
//! fused (`weight_ih` `[gates·H, in]`, `weight_hh` `[gates·H, H]`, two biases; GRU gates r, z, n
//! with the reset gate applied after the hidden product, LSTM gates i, f, g, o), one or more
//! layers, optionally bidirectional, batch first. [`torch_name`] maps our tensor names to
//! PyTorch's (`layers.1.reverse.weight_ih` ↔ `weight_ih_l1_reverse`).

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};
use serde::{Deserialize, Serialize};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Gru,
    Lstm,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }
}

/// The sizes of a recurrent stack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RnnConfig {
    pub cell: Cell,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
}

/// One direction of one layer: PyTorch's four tensors.
#[derive(Module, Debug)]
pub struct Direction {
    pub weight_ih: Param<Tensor<2>>,
    pub weight_hh: Param<Tensor<2>>,
    pub bias_ih: Param<Tensor<1>>,
    pub bias_hh: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub forward: Direction,
    pub reverse: Option<Direction>,
}

/// A stack of recurrent layers.
#[derive(Module, Debug)]
pub struct Rnn {
    pub layers: Vec<Layer>,
    #[module(skip)]
    cell: Cell,
    hidden: usize,
}

/// The hidden state of every layer and direction, `[layers · directions, B, H]` (PyTorch's
/// `h_n` order: layer 0 forward, layer 0 reverse, layer 1 forward, …), and an LSTM's cells.
#[derive(Debug, Clone)]
pub struct State {
    pub h: Tensor<3>,
    pub c: Option<Tensor<3>>,
}

impl RnnConfig {
    /// A freshly initialised stack, as PyTorch initialises it (uniform ±1/√H).
    pub fn init(&self, device: &Device) -> Rnn {
        let bound = 1.0 / (self.hidden as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let g = self.cell.gates() * self.hidden;
        let direction = |input: usize| Direction {
            weight_ih: init.init([g, input], device),
            weight_hh: init.init([g, self.hidden], device),
            bias_ih: init.init([g], device),
            bias_hh: init.init([g], device),
        };
        let dirs = if self.bidirectional { 2 } else { 1 };
        let layers = (0..self.layers)
            .map(|l| {
                let input = if l == 0 {
                    self.input
                } else {
                    dirs * self.hidden
                };
                Layer {
                    forward: direction(input),
                    reverse: self.bidirectional.then(|| direction(input)),
                }
            })
            .collect();
        Rnn {
            layers,
            cell: self.cell,
            hidden: self.hidden,
        }
    }
}

impl Rnn {
    /// Directions per layer.
    pub fn directions(&self) -> usize {
        if self.layers.first().is_some_and(|l| l.reverse.is_some()) {
            2
        } else {
            1
        }
    }

    /// A state of zeros for a batch of `batch`.
    pub fn zeros(&self, batch: usize, device: &Device) -> State {
        let shape = [self.layers.len() * self.directions(), batch, self.hidden];
        State {
            h: Tensor::zeros(shape, device),
            c: (self.cell == Cell::Lstm).then(|| Tensor::zeros(shape, device)),
        }
    }

    /// Run `x` `[B, T, in]` through the stack from `state` (zeros when `None`). `mask` `[B, T]`
    /// (1 for real steps, 0 for padding at the end) keeps each sequence's state at its own last
    /// real step, as PyTorch's packed sequences do. Returns the last layer's outputs
    /// `[B, T, H · directions]` (zeros at padding) and the final state.
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<2>>,
        state: Option<State>,
    ) -> (Tensor<3>, State) {
        self.forward_with(x, mask, state, |w| w)
    }

    /// [`forward`](Self::forward) with each hidden-to-hidden weight passed through `hidden`
    /// first, once per sequence (AWD-LSTM's weight dropout masks it).
    pub fn forward_with(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<2>>,
        state: Option<State>,
        hidden: impl Fn(Tensor<2>) -> Tensor<2>,
    ) -> (Tensor<3>, State) {
        let [b, _, _] = x.dims();
        let state = state.unwrap_or_else(|| self.zeros(b, &x.device()));
        let dirs = self.directions();
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let mut input = x;
        for (l, layer) in self.layers.iter().enumerate() {
            let mut outputs = Vec::new();
            let directions = std::iter::once((&layer.forward, false))
                .chain(layer.reverse.as_ref().map(|r| (r, true)));
            for (d, (direction, reverse)) in directions.enumerate() {
                let k = l * dirs + d;
                let h0 = state.h.clone().narrow(0, k, 1).squeeze_dim::<2>(0);
                let c0 = state
                    .c
                    .as_ref()
                    .map(|c| c.clone().narrow(0, k, 1).squeeze_dim::<2>(0));
                let weights = Weights::of(direction, &hidden);
                let (out, h, c) = self.run(&weights, input.clone(), mask.clone(), h0, c0, reverse);
                outputs.push(out);
                hs.push(h);
                cs.extend(c);
            }
            input = Tensor::cat(outputs, 2);
        }
        let state = State {
            h: Tensor::stack(hs, 0),
            c: (!cs.is_empty()).then(|| Tensor::stack(cs, 0)),
        };
        (input, state)
    }

    /// One direction over the whole sequence.
    fn run(
        &self,
        w: &Weights,
        x: Tensor<3>,
        mask: Option<Tensor<2>>,
        mut h: Tensor<2>,
        mut c: Option<Tensor<2>>,
        reverse: bool,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let [_, t, _] = x.dims();
        // The input's share of every gate for all steps at once: one matrix product.
        let gi = x.matmul(w.ih.clone().unsqueeze_dim(0))
            + w.bias_ih.clone().unsqueeze_dim::<2>(0).unsqueeze_dim(0);
        let mut outputs = vec![None; t];
        let steps: Box<dyn Iterator<Item = usize>> = if reverse {
            Box::new((0..t).rev())
        } else {
            Box::new(0..t)
        };
        for s in steps {
            let gi_s = gi.clone().narrow(1, s, 1).squeeze_dim::<2>(1);
            let (h_new, c_new) = self.cell_step(w, gi_s, h.clone(), c.clone());
            let (h_next, c_next, out) = match &mask {
                Some(mask) => {
                    let m = mask.clone().narrow(1, s, 1); // [B, 1]
                    let keep = m.clone().neg().add_scalar(1.0);
                    let h_next = h_new.clone() * m.clone() + h * keep.clone();
                    let c_next = c_new.map(|cn| cn * m.clone() + c.unwrap() * keep);
                    (h_next, c_next, h_new * m)
                }
                None => (h_new.clone(), c_new, h_new),
            };
            h = h_next;
            c = c_next;
            outputs[s] = Some(out);
        }
        let outputs: Vec<Tensor<2>> = outputs
            .into_iter()
            .map(|o| o.expect("every step ran"))
            .collect();
        (Tensor::stack(outputs, 1), h, c)
    }

    /// One step of the cell given the input's gate contributions `gi` `[B, gates·H]`.
    fn cell_step(
        &self,
        w: &Weights,
        gi: Tensor<2>,
        h: Tensor<2>,
        c: Option<Tensor<2>>,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        let n = self.hidden;
        let gh = h.clone().matmul(w.hh.clone()) + w.bias_hh.clone().unsqueeze_dim(0);
        let gate = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i * n, n);
        match self.cell {
            Cell::Gru => {
                let r = sigmoid(gate(&gi, 0) + gate(&gh, 0));
                let z = sigmoid(gate(&gi, 1) + gate(&gh, 1));
                let cand = tanh(gate(&gi, 2) + r * gate(&gh, 2));
                // h' = (1 - z) n + z h
                let h_new = cand.clone() + z * (h - cand);
                (h_new, None)
            }
            Cell::Lstm => {
                let gates = gi + gh;
                let i = sigmoid(gate(&gates, 0));
                let f = sigmoid(gate(&gates, 1));
                let g = tanh(gate(&gates, 2));
                let o = sigmoid(gate(&gates, 3));
                let c_new = f * c.expect("an LSTM carries cells") + i * g;
                (o * tanh(c_new.clone()), Some(c_new))
            }
        }
    }

    /// One step for a batch of single inputs `x` `[B, in]` through the whole stack
    /// (unidirectional stacks only: generation feeds one token at a time).
    pub fn step(&self, x: Tensor<2>, state: State) -> (Tensor<2>, State) {
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let mut input = x;
        for (l, layer) in self.layers.iter().enumerate() {
            let w = Weights::of(&layer.forward, |w| w);
            let h = state.h.clone().narrow(0, l, 1).squeeze_dim::<2>(0);
            let c = state
                .c
                .as_ref()
                .map(|c| c.clone().narrow(0, l, 1).squeeze_dim::<2>(0));
            let gi = input.matmul(w.ih.clone()) + w.bias_ih.clone().unsqueeze_dim(0);
            let (h, c) = self.cell_step(&w, gi, h, c);
            input = h.clone();
            hs.push(h);
            cs.extend(c);
        }
        let state = State {
            h: Tensor::stack(hs, 0),
            c: (!cs.is_empty()).then(|| Tensor::stack(cs, 0)),
        };
        (input, state)
    }
}

/// One direction's weights as a sequence uses them: transposed for `x · W`, once.
struct Weights {
    ih: Tensor<2>,
    hh: Tensor<2>,
    bias_ih: Tensor<1>,
    bias_hh: Tensor<1>,
}

impl Weights {
    fn of(dir: &Direction, hidden: impl Fn(Tensor<2>) -> Tensor<2>) -> Weights {
        Weights {
            ih: dir.weight_ih.val().transpose(),
            hh: hidden(dir.weight_hh.val()).transpose(),
            bias_ih: dir.bias_ih.val(),
            bias_hh: dir.bias_hh.val(),
        }
    }
}

/// PyTorch's name of one of an RNN's tensors (`layers.1.reverse.weight_ih` →
/// `weight_ih_l1_reverse`), or `None` for a name that is not one.
pub fn torch_name(ours: &str) -> Option<String> {
    let rest = ours.strip_prefix("layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (direction, tensor) = rest.split_once('.')?;
    let suffix = match direction {
        "forward" => "",
        "reverse" => "_reverse",
        _ => return None,
    };
    layer.parse::<usize>().ok()?;
    Some(format!("{tensor}_l{layer}{suffix}"))
}

/// Our name of PyTorch's RNN tensor `name` (the inverse of [`torch_name`]).
pub fn from_torch_name(name: &str) -> Option<String> {
    let (tensor, rest) = name.rsplit_once("_l")?;
    let (layer, reverse) = match rest.strip_suffix("_reverse") {
        Some(layer) => (layer, true),
        None => (rest, false),
    };
    layer.parse::<usize>().ok()?;
    let direction = if reverse { "reverse" } else { "forward" };
    Some(format!("layers.{layer}.{direction}.{tensor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_pytorchs_both_ways() {
        for (ours, theirs) in [
            ("layers.0.forward.weight_ih", "weight_ih_l0"),
            ("layers.1.reverse.bias_hh", "bias_hh_l1_reverse"),
        ] {
            assert_eq!(torch_name(ours).as_deref(), Some(theirs));
            assert_eq!(from_torch_name(theirs).as_deref(), Some(ours));
        }
        assert_eq!(torch_name("cell"), None);
    }
}
