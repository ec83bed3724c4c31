//! Which devices validation runs on: `cpu` or `cuda:N`, parsed from the command line and checked against what
//! libtorch can see.

#![allow(unsafe_code, reason = "CUDA support is probed with dlopen/dlerror")]

use std::fmt;
use std::str::FromStr;

/// One device a pool worker owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Device {
    /// The CPU.
    Cpu,
    /// The CUDA device with this index.
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// A device name that is not `cpu` or `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device `{0}`: use `cpu` or `cuda:N` (e.g. `cuda:0`), several separated by commas")]
pub struct DeviceParseError(pub String);

impl FromStr for Device {
    type Err = DeviceParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("cpu") {
            return Ok(Device::Cpu);
        }
        let index = t
            .strip_prefix("cuda:")
            .ok_or_else(|| DeviceParseError(s.to_string()))?;
        index
            .parse::<usize>()
            .map(Device::Cuda)
            .map_err(|_| DeviceParseError(s.to_string()))
    }
}

/// Parse `cuda:0,cuda:1` or `cpu`. Duplicates and an empty list are errors.
pub fn parse_devices(list: &str) -> Result<Vec<Device>, DeviceParseError> {
    let mut devices = Vec::new();
    for part in list.split(',') {
        let device: Device = part.parse()?;
        if devices.contains(&device) {
            return Err(DeviceParseError(format!("{part} (listed twice)")));
        }
        devices.push(device);
    }
    Ok(devices)
}

/// A device list as given on the command line (`cuda:0,cuda:1` or `cpu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(pub Vec<Device>);

impl FromStr for DeviceList {
    type Err = DeviceParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_devices(s).map(DeviceList)
    }
}

/// Loads libtorch's CUDA backend if the libtorch in use has one, so that `tch::Cuda::is_available()` can become
/// true. rustc links with `--as-needed`, which drops `libtorch_cuda.so` (it registers itself only through static
/// initialisers); loading it by hand before the first CUDA query brings the backend in. On the slim CPU install
/// this fails harmlessly and the error text says why.
#[cfg(feature = "torch")]
pub fn load_cuda_backend() -> Result<(), String> {
    use std::sync::OnceLock;
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            // SAFETY: dlopen with a valid NUL-terminated name; the handle is intentionally never closed, since
            // closing would unload the backend.
            let handle = unsafe {
                libc::dlopen(
                    c"libtorch_cuda.so".as_ptr(),
                    libc::RTLD_NOW | libc::RTLD_GLOBAL,
                )
            };
            if !handle.is_null() {
                return Ok(());
            }
            // SAFETY: dlerror returns a thread-local NUL-terminated string or null.
            let err = unsafe { libc::dlerror() };
            Err(if err.is_null() {
                "dlopen(libtorch_cuda.so) failed".to_owned()
            } else {
                // SAFETY: non-null pointer from dlerror, valid until the next dl* call on this thread.
                unsafe { std::ffi::CStr::from_ptr(err) }
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .clone()
}

/// The devices to use when the operator names none: every CUDA device libtorch sees, else the CPU.
#[cfg(feature = "torch")]
pub fn default_devices() -> Vec<Device> {
    let _ = load_cuda_backend();
    if tch::Cuda::is_available() {
        (0..tch::Cuda::device_count().max(0) as usize)
            .map(Device::Cuda)
            .collect()
    } else {
        vec![Device::Cpu]
    }
}

/// Check that every listed device exists, so a typo fails before any work starts.
#[cfg(feature = "torch")]
pub fn check_available(devices: &[Device]) -> Result<(), String> {
    let cuda: Vec<usize> = devices
        .iter()
        .filter_map(|d| {
            if let Device::Cuda(i) = d {
                Some(*i)
            } else {
                None
            }
        })
        .collect();
    if cuda.is_empty() {
        return Ok(());
    }
    let backend = load_cuda_backend();
    if !tch::Cuda::is_available() {
        let why = backend.err().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(format!(
            "no CUDA device is available to libtorch{why}: use `--devices cpu`, or run with a full CUDA PyTorch \
             2.13.0 install on LD_LIBRARY_PATH"
        ));
    }
    let count = tch::Cuda::device_count().max(0) as usize;
    match cuda.iter().find(|&&i| i >= count) {
        Some(i) => Err(format!(
            "cuda:{i} does not exist: libtorch sees {count} CUDA device(s) (cuda:0..cuda:{})",
            count.saturating_sub(1)
        )),
        None => Ok(()),
    }
}

#[cfg(feature = "torch")]
impl From<Device> for tch::Device {
    fn from(d: Device) -> tch::Device {
        match d {
            Device::Cpu => tch::Device::Cpu,
            Device::Cuda(i) => tch::Device::Cuda(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_lists() {
        assert_eq!(parse_devices("cpu").unwrap(), vec![Device::Cpu]);
        assert_eq!(
            parse_devices("cuda:0, cuda:1").unwrap(),
            vec![Device::Cuda(0), Device::Cuda(1)]
        );
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        let err = parse_devices("cuda:0,gpu").unwrap_err();
        assert!(err.to_string().contains("unknown device `gpu`"), "{err}");
        assert!(parse_devices("cuda:x").is_err());
        assert!(parse_devices("").is_err());
        assert!(
            parse_devices("cuda:1,cuda:1")
                .unwrap_err()
                .to_string()
                .contains("listed twice")
        );
    }
}
