//! The local Hub token, `hub-token`: one line, mode 0600, generated on the first `devnet up` and kept.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use super::{LocalError, StateDir, io_err};

impl StateDir {
    /// The Hub token from `hub-token`, if the file exists.
    pub fn read_token(&self) -> Result<Option<String>, LocalError> {
        let path = self.token_file();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(LocalError::BadFile {
                        path,
                        message:
                            "empty: delete it and run `minerfleet devnet up` to make a new token"
                                .into(),
                    });
                }
                Ok(Some(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The Hub token, generated (`hf_` and 34 random letters and digits, file mode 0600) when `hub-token` does not
    /// exist yet. Returns the token and whether it was generated now.
    pub fn ensure_token(&self) -> Result<(String, bool), LocalError> {
        if let Some(token) = self.read_token()? {
            restrict_mode(&self.token_file())?;
            return Ok((token, false));
        }
        use rand::Rng as _;
        let suffix: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(34)
            .map(char::from)
            .collect();
        let token = format!("hf_{suffix}");
        let path = self.token_file();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io_err(&path))?;
        writeln!(file, "{token}")
            .and_then(|()| file.sync_all())
            .map_err(io_err(&path))?;
        Ok((token, true))
    }
}

#[cfg(unix)]
fn restrict_mode(path: &Path) -> Result<(), LocalError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path) -> Result<(), LocalError> {
    Ok(())
}
