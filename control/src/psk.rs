//! The cluster's pre-shared key, from the file every node holds.

use std::io;
use std::path::{Path, PathBuf};

/// Why the cluster key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PskError {
    #[error("cannot read the cluster key `cluster.psk_file` = {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error(
        "{}: the cluster key must be 64 hex digits (32 bytes); make one with `openssl rand -hex 32`",
        path.display()
    )]
    Malformed { path: PathBuf },
}

/// Reads the cluster key: 64 hex digits, surrounding white space ignored.
pub fn read_psk(path: &Path) -> Result<[u8; 32], PskError> {
    let text = std::fs::read_to_string(path).map_err(|error| PskError::Read {
        path: path.to_owned(),
        error,
    })?;
    let hex = text.trim();
    let bad = || PskError::Malformed {
        path: path.to_owned(),
    };
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        let digits = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_key_is_64_hex_digits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(read_psk(&path).unwrap(), [0xab; 32]);
        for bad in [
            "ab".repeat(31),
            "zz".repeat(32),
            String::new(),
            "é".repeat(32),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = read_psk(&path).unwrap_err().to_string();
            assert!(err.contains("64 hex digits"), "{err}");
        }
        let err = read_psk(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("cluster.psk_file"), "{err}");
    }
}
