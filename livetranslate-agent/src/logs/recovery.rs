//! Orphan recovery at startup: a saved position whose file is no longer at its path was
//! rotated while the agent was stopped. Its file is looked for in the same directory, by
//! inode (renamed) or by its head (a copytruncate copy), and drained from the saved offset.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::fingerprint::Fingerprint;
use super::positions::Positions;

/// A rotated file found for a saved position.
#[derive(Debug)]
pub struct Orphan {
    /// Where it is now.
    pub path: PathBuf,
    /// The open file.
    pub file: File,
    /// Its identity now.
    pub fingerprint: Fingerprint,
    /// The saved (acknowledged) offset to read from.
    pub offset: u64,
    /// The path the position was saved under.
    pub saved_path: String,
    /// The device and inode the position was saved under.
    pub saved: (u64, u64),
}

/// Finds the files of the `saved` positions not taken up by discovery. `tailed` holds the
/// (device, inode) of every file already tailed; a file is never returned twice.
pub fn find_orphans(saved: &Positions, tailed: &HashSet<(u64, u64)>) -> Vec<Orphan> {
    let mut taken = tailed.clone();
    let mut out = Vec::new();
    for pos in saved.iter() {
        let saved_path = Path::new(&pos.path);
        let Some(dir) = saved_path.parent() else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if !meta.is_file() || meta.len() <= pos.offset {
                continue;
            }
            let Ok(fp) = Fingerprint::of(&file) else {
                continue;
            };
            let same_inode = (fp.dev, fp.ino) == (pos.fingerprint.dev, pos.fingerprint.ino);
            let same_head = pos.fingerprint.head_matches(&file).unwrap_or(false);
            if same_head && (same_inode || pos.fingerprint.head_len > 0) {
                if taken.insert((fp.dev, fp.ino)) {
                    out.push(Orphan {
                        path,
                        file,
                        fingerprint: fp,
                        offset: pos.offset,
                        saved_path: pos.path.clone(),
                        saved: (pos.fingerprint.dev, pos.fingerprint.ino),
                    });
                }
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::positions::Position;

    #[test]
    fn a_renamed_file_is_found_by_its_head_and_drained_from_the_saved_offset() {
        let dir = std::env::temp_dir().join(format!("orphans-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let old = dir.join("app.log");
        std::fs::write(&old, "one\ntwo\nthree\n").expect("write");
        let fp = Fingerprint::of(&File::open(&old).expect("open")).expect("fp");
        let mut saved = Positions::default();
        saved.set(Position {
            path: old.display().to_string(),
            fingerprint: fp,
            offset: 4,
        });
        std::fs::rename(&old, dir.join("app.log.1")).expect("rename");
        std::fs::write(&old, "new\n").expect("new file");
        let found = find_orphans(&saved, &HashSet::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, dir.join("app.log.1"));
        assert_eq!(found[0].offset, 4);
        let tailed = HashSet::from([(fp.dev, fp.ino)]);
        assert!(find_orphans(&saved, &tailed).is_empty(), "already tailed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
