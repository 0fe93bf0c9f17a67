//! Where pretune computes: one choice per command (`--device`), made here and nowhere else.
//!
//! `cpu` is Burn's flex backend with pretune's own kernels. The GPU devices come with cargo
//! features of the same names (off by default): `wgpu` (whatever graphics API the machine
//! offers), `vulkan` (pinned to Vulkan, SPIR-V), `cuda` (NVIDIA). `:N` picks the N-th GPU;
//! `:cpu` a software adapter (Mesa's lavapipe), which wgpu never picks by itself.

use std::fmt;
use std::str::FromStr;

use anyhow::Result;
use burn::prelude::Device;

use crate::bail_input;

/// A compute device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// Burn's `flex` CPU backend, with pretune's own kernels.
    #[default]
    Cpu,
    /// wgpu on the machine's graphics API.
    Wgpu(Adapter),
    /// wgpu pinned to Vulkan.
    Vulkan(Adapter),
    /// CUDA; `None`: the rank's local GPU (GPU 0 for one process).
    Cuda(Option<usize>),
}

/// Which adapter a wgpu device runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// The best GPU wgpu finds (or `CUBECL_WGPU_DEFAULT_DEVICE`); with several ranks on one
    /// machine, the rank's local GPU.
    Default,
    /// The N-th discrete GPU.
    Gpu(usize),
    /// A software adapter on the CPU (lavapipe).
    Cpu,
}

impl DeviceSpec {
    /// The Burn device to train on (with autodiff); inference runs on the same device through
    /// `model.valid()`. Exit 2 when this build lacks the device's feature, or the machine a
    /// driver for it.
    pub fn device(self) -> Result<Device> {
        let device = match self {
            DeviceSpec::Cpu => return Ok(Device::flex().autodiff()),
            DeviceSpec::Wgpu(adapter) => wgpu(adapter, false)?,
            DeviceSpec::Vulkan(adapter) => wgpu(adapter, true)?,
            DeviceSpec::Cuda(index) => cuda(index)?,
        };
        probe(&device, self)?;
        Ok(device.autodiff())
    }
}

/// The cargo feature a device needs, for messages.
fn missing(feature: &str) -> anyhow::Error {
    crate::input_error!(
        "--device {feature}: this pretune was built without the `{feature}` feature (cargo build \
         --release --features {feature})"
    )
}

#[allow(unused_variables)]
fn wgpu(adapter: Adapter, vulkan: bool) -> Result<Device> {
    #[cfg(any(feature = "wgpu", feature = "vulkan"))]
    {
        use burn::tensor::DeviceKind;
        let kind = match adapter {
            Adapter::Cpu => DeviceKind::Cpu,
            Adapter::Gpu(n) => DeviceKind::DiscreteGpu(n),
            Adapter::Default if crate::parallel::place().size > 1 => {
                DeviceKind::DiscreteGpu(crate::parallel::place().local_rank)
            }
            Adapter::Default => DeviceKind::DefaultDevice,
        };
        if vulkan {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(kind));
        } else {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(kind));
        }
    }
    Err(missing(if vulkan { "vulkan" } else { "wgpu" }))
}

#[allow(unused_variables)]
fn cuda(index: Option<usize>) -> Result<Device> {
    #[cfg(feature = "cuda")]
    return Ok(Device::cuda(
        index.unwrap_or_else(|| crate::parallel::place().local_rank),
    ));
    #[cfg(not(feature = "cuda"))]
    Err(missing("cuda"))
}

/// Run one small computation on `device`, so that a missing driver or adapter is one clear
/// line here rather than a panic at the first tensor of a run.
fn probe(device: &Device, spec: DeviceSpec) -> Result<()> {
    use burn::tensor::{Tensor, TensorData};
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), device);
        x.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(hook);
    match result {
        Ok(3.0) => Ok(()),
        Ok(sum) => bail_input!("--device {spec}: a test sum gave {sum}, not 3"),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let why = why
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            bail_input!(
                "--device {spec}: no usable adapter or driver on this machine ({why}); for a \
                 software adapter install Mesa's Vulkan driver (apt-get install \
                 mesa-vulkan-drivers) and use {}:cpu",
                match spec {
                    DeviceSpec::Vulkan(_) => "vulkan",
                    _ => "wgpu",
                }
            )
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, which) = match s.split_once(':') {
            Some((n, w)) => (n, Some(w)),
            None => (s, None),
        };
        let adapter = |which: Option<&str>| match which {
            None => Ok(Adapter::Default),
            Some("cpu") => Ok(Adapter::Cpu),
            Some(n) => n
                .parse()
                .map(Adapter::Gpu)
                .map_err(|_| format!("{s:?}: after ':' comes a GPU index or `cpu`")),
        };
        match name {
            "cpu" if which.is_none() => Ok(DeviceSpec::Cpu),
            "wgpu" => adapter(which).map(DeviceSpec::Wgpu),
            "vulkan" => adapter(which).map(DeviceSpec::Vulkan),
            "cuda" => match which {
                None => Ok(DeviceSpec::Cuda(None)),
                Some(n) => n
                    .parse()
                    .map(|n| DeviceSpec::Cuda(Some(n)))
                    .map_err(|_| format!("{s:?}: after 'cuda:' comes a GPU index")),
            },
            _ => Err(format!(
                "unknown device {s:?}; expected cpu, wgpu[:N|:cpu], vulkan[:N|:cpu] or cuda[:N]"
            )),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let adapter = |f: &mut fmt::Formatter, name: &str, a: &Adapter| match a {
            Adapter::Default => write!(f, "{name}"),
            Adapter::Gpu(n) => write!(f, "{name}:{n}"),
            Adapter::Cpu => write!(f, "{name}:cpu"),
        };
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Wgpu(a) => adapter(f, "wgpu", a),
            DeviceSpec::Vulkan(a) => adapter(f, "vulkan", a),
            DeviceSpec::Cuda(None) => f.write_str("cuda"),
            DeviceSpec::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_as_the_user_types_them() {
        for name in [
            "cpu",
            "wgpu",
            "wgpu:1",
            "wgpu:cpu",
            "vulkan:cpu",
            "cuda",
            "cuda:3",
        ] {
            let spec: DeviceSpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
        assert_eq!("wgpu:cpu".parse(), Ok(DeviceSpec::Wgpu(Adapter::Cpu)));
        for bad in ["gpu", "cpu:0", "wgpu:x", "cuda:cpu", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
    }
}
