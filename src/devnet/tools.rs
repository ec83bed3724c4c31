//! Finding what a devnet runs: the test runtime wasm and the Chopsticks executable.
//!
//! Taken from `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS` when both are set; otherwise the source
//! checkout's `scripts/devnet-env` builds the runtime and installs Chopsticks (both cached under
//! `~/.cache/minerfleet`; the first run takes 15 to 25 minutes on 2 cores) and prints them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{DevnetError, ENV_CHOPSTICKS, ENV_RUNTIME_WASM};

/// The runtime wasm and the Chopsticks executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetTools {
    /// The runtime wasm.
    pub runtime_wasm: PathBuf,
    /// The `chopsticks` executable.
    pub chopsticks: PathBuf,
}

impl DevnetTools {
    /// Both from the environment, when both variables are set and non-empty.
    pub fn from_env() -> Option<DevnetTools> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(DevnetTools {
            runtime_wasm: var(ENV_RUNTIME_WASM)?,
            chopsticks: var(ENV_CHOPSTICKS)?,
        })
    }

    /// Runs `script` (`scripts/devnet-env`) with its progress on our stderr and reads the paths it exports.
    pub fn from_script(script: &Path) -> Result<DevnetTools, DevnetError> {
        if !script.is_file() {
            return Err(DevnetError::Config(format!(
                "{}: not found. This minerfleet was built from a source checkout that is not there any more; \
                 set {ENV_RUNTIME_WASM} and {ENV_CHOPSTICKS} (a checkout's `eval \"$(scripts/devnet-env)\"` sets \
                 both)",
                script.display()
            )));
        }
        // bash does the unquoting of the script's `export NAME=<printf %q>` lines.
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; exports=\"$(\"$0\")\"; eval \"$exports\"; printf '%s\\0%s\\0' \"${ENV_RUNTIME_WASM}\" \"${ENV_CHOPSTICKS}\""
            ))
            .arg(script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| DevnetError::Io {
                path: script.to_path_buf(),
                source,
            })?;
        if !output.status.success() {
            return Err(DevnetError::Config(format!(
                "{} failed ({}): its messages above say what is missing",
                script.display(),
                output.status
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut parts = text.split('\0');
        match (parts.next(), parts.next()) {
            (Some(wasm), Some(chopsticks)) if !wasm.is_empty() && !chopsticks.is_empty() => {
                Ok(DevnetTools {
                    runtime_wasm: wasm.into(),
                    chopsticks: chopsticks.into(),
                })
            }
            _ => Err(DevnetError::Config(format!(
                "{} did not export {ENV_RUNTIME_WASM} and {ENV_CHOPSTICKS}",
                script.display()
            ))),
        }
    }

    /// Refuses paths that are not files, saying how to get them.
    pub fn check(&self) -> Result<(), DevnetError> {
        for (path, var, how) in [
            (
                &self.runtime_wasm,
                ENV_RUNTIME_WASM,
                "scripts/build-runtime",
            ),
            (
                &self.chopsticks,
                ENV_CHOPSTICKS,
                "scripts/install-chopsticks",
            ),
        ] {
            if !path.is_file() {
                return Err(DevnetError::Config(format!(
                    "{}: no such file ({var}); run {how}, or unset {var} to let `devnet up` run \
                     scripts/devnet-env",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// `scripts/devnet-env` of the source checkout this binary was built from.
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join("devnet-env")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_outputs_are_unquoted_by_bash() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("devnet-env");
        std::fs::write(
            &script,
            "#!/usr/bin/env bash\necho building >&2\n\
             printf 'export MINERFLEET_CHOPSTICKS=%q\\n' '/opt/a b/chopsticks'\n\
             printf 'export MINERFLEET_RUNTIME_WASM=%q\\n' \"/c/it's.wasm\"\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let tools = DevnetTools::from_script(&script).unwrap();
        assert_eq!(tools.chopsticks, PathBuf::from("/opt/a b/chopsticks"));
        assert_eq!(tools.runtime_wasm, PathBuf::from("/c/it's.wasm"));
        let err = tools.check().unwrap_err().to_string();
        assert!(
            err.contains("it's.wasm") && err.contains("build-runtime"),
            "{err}"
        );
    }

    #[test]
    fn a_failing_or_missing_script_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = DevnetTools::from_script(&missing).unwrap_err().to_string();
        assert!(
            err.contains("nope: not found") && err.contains(ENV_CHOPSTICKS),
            "{err}"
        );
        let script = dir.path().join("fails");
        std::fs::write(&script, "#!/usr/bin/env bash\nexit 3\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let err = DevnetTools::from_script(&script).unwrap_err().to_string();
        assert!(err.contains("fails failed"), "{err}");
    }

    #[test]
    fn the_setup_script_is_in_this_checkout() {
        assert!(setup_script().is_file(), "{}", setup_script().display());
    }
}
