//! The positions file: for every file, its identity and the offset up to which Loki has
//! acknowledged every line. Written atomically (temp file, fsync, rename, fsync directory).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;

/// One file's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The path it was last seen at.
    pub path: String,
    /// Its identity.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Acknowledged offset: every line before it reached Loki.
    pub offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsFile {
    version: u32,
    files: Vec<Position>,
}

/// A positions file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// I/O.
    #[error("positions file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not a positions file.
    #[error("positions file {path} is corrupt ({reason}); move it away to start over")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
}

/// Saved positions, keyed by device and inode.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Positions {
    by_inode: BTreeMap<(u64, u64), Position>,
}

impl Positions {
    /// Loads `path`; a missing file is an empty set.
    pub fn load(path: &Path) -> Result<Positions, PositionsError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Positions::default()),
            Err(source) => {
                return Err(PositionsError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        if text.trim().is_empty() {
            return Ok(Positions::default());
        }
        let file: PositionsFile =
            serde_yaml_ng::from_str(&text).map_err(|e| PositionsError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Positions {
            by_inode: file
                .files
                .into_iter()
                .map(|p| ((p.fingerprint.dev, p.fingerprint.ino), p))
                .collect(),
        })
    }

    /// Writes `self` to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), PositionsError> {
        let err = |source| PositionsError::Io {
            path: path.to_owned(),
            source,
        };
        let file = PositionsFile {
            version: 1,
            files: self.by_inode.values().cloned().collect(),
        };
        let text = serde_yaml_ng::to_string(&file).map_err(|e| PositionsError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("positions")
        ));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        fs::rename(&tmp, path).map_err(err)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The saved position of the file with this device and inode.
    pub fn get(&self, dev: u64, ino: u64) -> Option<&Position> {
        self.by_inode.get(&(dev, ino))
    }

    /// Records a position.
    pub fn set(&mut self, position: Position) {
        self.by_inode.insert(
            (position.fingerprint.dev, position.fingerprint.ino),
            position,
        );
    }

    /// Forgets a file.
    pub fn remove(&mut self, dev: u64, ino: u64) {
        self.by_inode.remove(&(dev, ino));
    }

    /// Every saved position.
    pub fn iter(&self) -> impl Iterator<Item = &Position> {
        self.by_inode.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_and_corruption_is_an_error() {
        let dir = std::env::temp_dir().join(format!("pos-{}", std::process::id()));
        let path = dir.join("sub/positions.yml");
        assert_eq!(
            Positions::load(&path).expect("missing is empty"),
            Positions::default()
        );
        let mut p = Positions::default();
        p.set(Position {
            path: "/app/logs/a.log".into(),
            fingerprint: Fingerprint {
                dev: 1,
                ino: 2,
                head_len: 3,
                head_hash: 4,
            },
            offset: 1234,
        });
        p.save(&path).expect("save");
        let loaded = Positions::load(&path).expect("load");
        assert_eq!(loaded, p);
        assert_eq!(loaded.get(1, 2).map(|p| p.offset), Some(1234));
        fs::write(&path, "files: [[[").expect("corrupt");
        let err = Positions::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("corrupt"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
