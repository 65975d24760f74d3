//! `--device cpu|cuda[:N]|auto`: which device trains and evaluates, and how it is named in the
//! provenance.

use candle_core::Device;

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (bit-exact runs).
    Cpu,
    /// CUDA GPU with this ordinal.
    Cuda(usize),
    /// CUDA GPU 0 when this build has CUDA and one is present, else the CPU.
    Auto,
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda`, `cuda:N` or `auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "auto" => Ok(Self::Auto),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "--device {s}: expected cpu, cuda, cuda:N (N = GPU ordinal) or auto"
                    ))
                }),
        }
    }

    /// Opens the device; a CUDA request without CUDA support or without that GPU is an error
    /// that says which.
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(open_cuda(0).unwrap_or(Device::Cpu)),
            Self::Cuda(n) => open_cuda(n),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(n: usize) -> Result<Device> {
    Device::new_cuda(n).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default().to_string();
        Error::Config(format!(
            "--device cuda:{n}: no usable CUDA GPU {n} ({first}); check `nvidia-smi` and that the driver's libcuda.so.1 and the CUDA 13 libraries are on LD_LIBRARY_PATH, or use --device cpu"
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(n: usize) -> Result<Device> {
    Err(Error::Config(format!(
        "--device cuda:{n}: this mixbench was built without CUDA; build it with `tools/cuda/build.sh` (or `cargo build --release --features cuda`), or use --device cpu"
    )))
}

/// The device and what it is, for provenance: `cpu (AMD EPYC 7B13)`, `cuda:0 (driver 580.65)`.
pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => match cpu_model() {
            Some(m) => format!("cpu ({m})"),
            None => "cpu".into(),
        },
        other => {
            let loc = match other.location() {
                candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
                l => format!("{l:?}").to_lowercase(),
            };
            match nvidia_driver() {
                Some(v) => format!("{loc} (driver {v})"),
                None => loc,
            }
        }
    }
}

/// Whether results from this device are bit-exact across runs (the CPU path is; GPU kernels
/// may reorder sums).
pub fn is_bit_exact(device_name: &str) -> bool {
    device_name.starts_with("cpu")
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
}

fn nvidia_driver() -> Option<String> {
    let text = std::fs::read_to_string("/proc/driver/nvidia/version").ok()?;
    // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ..."
    text.split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_cuda_without_a_gpu_is_a_clear_error() {
        assert_eq!(DeviceSpec::parse("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse("cuda").unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(DeviceSpec::parse("cuda:3").unwrap(), DeviceSpec::Cuda(3));
        assert_eq!(DeviceSpec::parse("auto").unwrap(), DeviceSpec::Auto);
        for bad in ["gpu", "cuda:", "cuda:x", "CPU"] {
            let e = DeviceSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda, cuda:N"), "{e}");
        }
        assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
        // This machine has no GPU: auto falls back to the CPU, an explicit request fails.
        if std::fs::metadata("/dev/nvidia0").is_err() {
            assert!(DeviceSpec::Auto.open().unwrap().is_cpu());
            let e = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
            assert!(e.starts_with("--device cuda:0: "), "{e}");
        }
        assert!(device_name(&Device::Cpu).starts_with("cpu"));
        assert!(is_bit_exact("cpu (x)") && !is_bit_exact("cuda:0 (driver 580.65.06)"));
    }
}
