//! One run's output files as a set: written into a hidden staging folder beside their
//! destination and moved into place together only when the run succeeded, so a failed run leaves
//! the previous run's outputs whole (never some old files beside some new ones).

use std::path::{Path, PathBuf};

/// The file names a run may write; on commit, those of a previous run that this run did not
/// write (say `fit.parquet` after a run without `emit_fit`) are removed, so the folder holds
/// exactly one run's outputs.
pub const OUTPUTS: [&str; 6] = [
    "events.parquet",
    "fit.parquet",
    "periods.parquet",
    "shard.json",
    "summary.json",
    "report.html",
];

/// A staging folder `OUT/.deadband-staging-PID`; removed with its content unless committed.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates the staging folder inside `out` (same file system, so the moves are renames).
    pub fn begin(out: &Path) -> std::io::Result<Self> {
        let dir = out.join(format!(".deadband-staging-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            out: out.to_path_buf(),
            dir,
            committed: false,
        })
    }

    /// Where the run writes its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves every staged file into the output folder (replacing the previous run's) and
    /// removes the previous run's outputs this run did not write — all or nothing: the previous
    /// files are first moved aside into the staging folder, and if any move fails, every move
    /// made so far is undone. A destination that is a directory is refused before anything moves.
    pub fn commit(mut self) -> std::io::Result<()> {
        for name in OUTPUTS {
            let dest = self.out.join(name);
            if dest.is_dir() {
                return Err(std::io::Error::other(format!(
                    "{} is a directory; move it away so the run's {name} can be written there",
                    dest.display()
                )));
            }
        }
        let aside = self.dir.join("previous");
        std::fs::create_dir_all(&aside)?;
        let mut undo: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut moves = Vec::new();
        for name in OUTPUTS {
            if self.out.join(name).exists() {
                moves.push((self.out.join(name), aside.join(name)));
            }
        }
        for name in OUTPUTS {
            if self.dir.join(name).exists() {
                moves.push((self.dir.join(name), self.out.join(name)));
            }
        }
        for (from, to) in moves {
            if let Err(e) = std::fs::rename(&from, &to) {
                for (from, to) in undo.iter().rev() {
                    let _ = std::fs::rename(to, from);
                }
                return Err(e);
            }
            undo.push((from, to));
        }
        self.committed = true;
        std::fs::remove_dir_all(&self.dir)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> Option<String> {
        std::fs::read_to_string(p).ok()
    }

    #[test]
    fn a_failed_run_leaves_the_previous_outputs_whole_and_a_good_one_replaces_them_all() {
        let out = tempfile::tempdir().unwrap();
        for name in ["events.parquet", "fit.parquet", "summary.json"] {
            std::fs::write(out.path().join(name), "old").unwrap();
        }
        // A run that fails after writing two of its files.
        {
            let s = Staging::begin(out.path()).unwrap();
            std::fs::write(s.dir().join("events.parquet"), "new").unwrap();
            std::fs::write(s.dir().join("summary.json"), "new").unwrap();
        }
        for name in ["events.parquet", "fit.parquet", "summary.json"] {
            assert_eq!(
                read(&out.path().join(name)).as_deref(),
                Some("old"),
                "{name}"
            );
        }
        assert_eq!(
            std::fs::read_dir(out.path()).unwrap().count(),
            3,
            "staging gone"
        );
        // A run that succeeds without fit rows: no old fit.parquet is left beside the new files.
        let s = Staging::begin(out.path()).unwrap();
        for name in ["events.parquet", "summary.json", "report.html"] {
            std::fs::write(s.dir().join(name), "new").unwrap();
        }
        s.commit().unwrap();
        for name in ["events.parquet", "summary.json", "report.html"] {
            assert_eq!(
                read(&out.path().join(name)).as_deref(),
                Some("new"),
                "{name}"
            );
        }
        assert!(!out.path().join("fit.parquet").exists());
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_commit_that_cannot_place_every_file_moves_none() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("events.parquet"), "old").unwrap();
        std::fs::create_dir(out.path().join("report.html")).unwrap();
        let s = Staging::begin(out.path()).unwrap();
        for name in ["events.parquet", "report.html"] {
            std::fs::write(s.dir().join(name), "new").unwrap();
        }
        let err = s.commit().unwrap_err();
        assert!(
            err.to_string().contains("report.html is a directory"),
            "{err}"
        );
        let events = out.path().join("events.parquet");
        assert_eq!(read(&events).as_deref(), Some("old"));
        assert!(out.path().join("report.html").is_dir());
        assert_eq!(
            std::fs::read_dir(out.path()).unwrap().count(),
            2,
            "staging gone"
        );
    }
}
