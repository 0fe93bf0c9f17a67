//! [`Named`]: a list of modules whose children are named `prefix0`, `prefix1`, … rather than
//! `0`, `1`, … — PyTorch's `nn.Sequential` built from an `OrderedDict` (torchvision's ViT
//! encoder: `layers.encoder_layer_0`), so such tensor names stay PyTorch's own.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::prelude::*;

/// Modules named `prefix` + their index.
#[derive(Debug, Clone)]
pub struct Named<T> {
    prefix: &'static str,
    items: Vec<T>,
}

impl<T> Named<T> {
    /// `items`, named `prefix0`, `prefix1`, ….
    pub fn new(prefix: &'static str, items: Vec<T>) -> Self {
        Named { prefix, items }
    }

    /// The modules in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    fn name(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    fn each(self, f: impl FnMut(T) -> T) -> Self {
        Named {
            prefix: self.prefix,
            items: self.items.into_iter().map(f).collect(),
        }
    }
}

impl<T: Module> Module for Named<T> {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.items.iter().fold(devices, |d, m| m.collect_devices(d))
    }

    fn fork(self, device: &Device) -> Self {
        self.each(|m| m.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.each(|m| m.to_device(device))
    }

    fn train(self) -> Self {
        self.each(Module::train)
    }

    fn valid(&self) -> Self {
        Named {
            prefix: self.prefix,
            items: self.items.iter().map(Module::valid).collect(),
        }
    }

    fn materialize(self) -> Self {
        self.each(Module::materialize)
    }

    fn num_params(&self) -> usize {
        self.items.iter().map(Module::num_params).sum()
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (i, m) in self.items.iter().enumerate() {
            let name = self.name(i);
            visitor.enter_module(&name, "Named");
            m.visit(visitor);
            visitor.exit_module(&name, "Named");
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let names: Vec<String> = (0..self.items.len()).map(|i| self.name(i)).collect();
        let mut names = names.into_iter();
        self.each(|m| {
            let name = names.next().expect("one name per module");
            mapper.enter_module(&name, "Named");
            let m = m.map(mapper);
            mapper.exit_module(&name, "Named");
            m
        })
    }
}

impl<T: ModuleDisplay> ModuleDisplayDefault for Named<T> {
    fn content(&self, content: Content) -> Option<Content> {
        self.items
            .iter()
            .enumerate()
            .fold(content, |acc, (i, m)| acc.add(&self.name(i), m))
            .optional()
    }
}

impl<T: ModuleDisplay> ModuleDisplay for Named<T> {}
