//! Where pretune computes: one choice per command (`--device`), made here and nowhere else.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

/// A compute device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// Burn's `flex` CPU backend, with pretune's own kernels.
    #[default]
    Cpu,
}

impl DeviceSpec {
    /// The Burn device to train on (with autodiff). Inference runs on the same device through
    /// `model.valid()`, so one checkpoint loads the same way for both.
    pub fn device(self) -> Device {
        match self {
            DeviceSpec::Cpu => Device::flex().autodiff(),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            other => Err(format!("unknown device {other:?}; expected cpu")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
        }
    }
}
