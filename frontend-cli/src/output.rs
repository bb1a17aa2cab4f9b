//! Writing output files so that a failure leaves nothing half-written behind, and the
//! files of an earlier run in the same directory exactly as they were.
//!
//! What is atomic, and what is not: each file is replaced by one `rename(2)` within its
//! directory, which is atomic: a reader sees the whole earlier file or the whole new
//! one. A set of files cannot be replaced atomically (a directory swap cannot replace a
//! directory that also holds the user's other files), so [`write_files`] makes the set
//! all-or-nothing for every failure the system reports: it writes and syncs every new
//! file under a temporary name first, then moves each earlier file aside to a backup
//! name and the new one into place; if any step fails, it moves every earlier file back
//! (again by rename) and deletes the new ones, so the directory holds exactly what it
//! held before. Only a crash (power loss, SIGKILL) between two renames can leave a mix
//! of new files and earlier ones; the earlier ones are then still in the directory
//! under their backup names (`.log.csv.XXXXXX.old`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::Failure;

/// Writes every `(file name, contents)` pair into `dir`, all or nothing: on success
/// every file holds its new contents; on failure `dir` holds exactly what it held
/// before (earlier files of the same names included, see the module's documentation),
/// and `dir` itself is removed if this call created it. An existing target that is not
/// a regular file (a directory, a FIFO, a symlink) is refused before anything is
/// written. Returns the paths written.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>, Failure> {
    write_files_with(dir, files, &mut |from, to| fs::rename(from, to))
}

/// [`write_files`], with the rename step given (the tests make it fail at every step).
fn write_files_with(
    dir: &Path,
    files: &[(&str, &str)],
    rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
) -> Result<Vec<PathBuf>, Failure> {
    let created = create_dir(dir)?;
    let result = check_targets(dir, files.iter().map(|(name, _)| *name))
        .and_then(|()| write_staged(dir, files, rename));
    if result.is_err() {
        for dir in created.iter().rev() {
            // Only removes a directory that is still empty: nothing of the user's is lost.
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

/// Checks, before a long computation, that the files `names` can be written into
/// `dir`: creates it (and its missing parents), writes and deletes a temporary file
/// there, refuses an existing target that is not a regular file, and removes again the
/// directories it created. A failure is the one [`write_files`] would report, found
/// before anything is printed.
pub fn check_writable(dir: &Path, names: &[&str]) -> Result<(), Failure> {
    let created = create_dir(dir)?;
    let probe = tempfile::Builder::new()
        .prefix(".gradstep-probe.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Failure::io(format!("cannot write into {}: {e}", dir.display())))
        .and_then(|()| check_targets(dir, names.iter().copied()));
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
    probe
}

/// Creates `dir` and its missing parents, returning the directories it created
/// (outermost first).
fn create_dir(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(d) = cursor {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cursor = d.parent();
    }
    missing.reverse();
    fs::create_dir_all(dir).map_err(|e| {
        for d in missing.iter().rev() {
            let _ = fs::remove_dir(d);
        }
        Failure::io(format!(
            "cannot create output directory {}: {e}",
            dir.display()
        ))
    })?;
    if !dir.is_dir() {
        return Err(Failure::io(format!(
            "output path {} is not a directory",
            dir.display()
        )));
    }
    Ok(missing)
}

/// Refuses a target in `dir` that exists and is not a regular file: replacing it would
/// lose it (and a rename over a directory fails anyway, after others succeeded).
fn check_targets<'a>(dir: &Path, names: impl Iterator<Item = &'a str>) -> Result<(), Failure> {
    for name in names {
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.is_file() => {
                return Err(Failure::io(format!(
                    "cannot write {}: it exists and is not a regular file",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn cannot_write(path: &Path, e: &dyn std::fmt::Display) -> Failure {
    Failure::io(format!("cannot write {}: {e}", path.display()))
}

/// A file put in place: where, and the earlier file's backup if there was one.
struct Installed {
    path: PathBuf,
    backup: Option<TempPath>,
}

fn write_staged(
    dir: &Path,
    files: &[(&str, &str)],
    rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
) -> Result<Vec<PathBuf>, Failure> {
    // 1. Every new file, written and synced under a temporary name in `dir` (deleted
    //    when dropped, on any early return).
    let mut staged = Vec::with_capacity(files.len());
    for (name, contents) in files {
        let path = dir.join(name);
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile creates files readable by their owner only; these are ordinary
        // output files (the umask still applies).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| cannot_write(&path, &e))?;
        tmp.write_all(contents.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| cannot_write(&path, &e))?;
        staged.push((tmp.into_temp_path(), path));
    }
    // 2. Each earlier file moved aside, the new one moved in; any failure puts every
    //    earlier file back.
    let mut installed: Vec<Installed> = Vec::with_capacity(staged.len());
    for (tmp, path) in staged {
        match install(dir, &tmp, &path, rename) {
            Ok(backup) => {
                // In place: the temporary name no longer exists, nothing to delete.
                let _ = tmp.keep();
                installed.push(Installed { path, backup });
            }
            Err(e) => {
                let kept = roll_back(installed, rename);
                let mut message = format!("cannot write {}: {e}", path.display());
                if !kept.is_empty() {
                    let kept: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
                    message += &format!("; earlier files left as {}", kept.join(", "));
                }
                return Err(Failure::io(message));
            }
        }
    }
    // 3. Done: the backups are deleted when dropped.
    sync_dir(dir);
    Ok(installed.into_iter().map(|i| i.path).collect())
}

/// Moves an earlier `path` aside (to a fresh backup name in `dir`) and `tmp` to `path`.
/// On failure nothing has changed: the earlier file is back at `path`. The error says
/// what failed; if even the restore failed, the backup is kept and named.
fn install(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
) -> Result<Option<TempPath>, String> {
    let backup = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.to_string()),
        Ok(_) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // A fresh name, reserved by an empty file that the rename replaces.
            let reserved = tempfile::Builder::new()
                .prefix(&format!(".{name}."))
                .suffix(".old")
                .tempfile_in(dir)
                .map_err(|e| e.to_string())?
                .into_temp_path();
            rename(path, &reserved).map_err(|e| e.to_string())?;
            Some(reserved)
        }
    };
    match rename(tmp, path) {
        Ok(()) => Ok(backup),
        Err(e) => match backup {
            None => Err(e.to_string()),
            Some(b) => match rename(&b, path) {
                Ok(()) => {
                    let _ = b.keep();
                    Err(e.to_string())
                }
                Err(restore) => {
                    let kept = b
                        .keep()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    Err(format!(
                        "{e}; the earlier file is left as {kept} ({restore})"
                    ))
                }
            },
        },
    }
}

/// Undoes `installed`, last first: each earlier file back in place (replacing the new
/// one), each new file without an earlier one deleted. Returns the backups it could not
/// put back (kept, not deleted).
fn roll_back(
    installed: Vec<Installed>,
    rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    for Installed { path, backup } in installed.into_iter().rev() {
        match backup {
            None => {
                let _ = fs::remove_file(&path);
            }
            Some(b) => match rename(&b, &path) {
                Ok(()) => {
                    let _ = b.keep();
                }
                Err(_) => {
                    if let Ok(p) = b.keep() {
                        kept.push(p);
                    }
                }
            },
        }
    }
    kept
}

/// Makes the renames durable where the system allows it (best effort: the files are
/// already complete and in place).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `dir` with its contents, sorted.
    fn contents(dir: &Path) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        all.sort();
        all
    }

    /// With the k-th rename failing, for every k: the directory is left as it was.
    #[test]
    fn a_failure_at_any_rename_restores_the_earlier_files() {
        let new = [("a.csv", "new a"), ("b.json", "new b"), ("c.svg", "new c")];
        for earlier in [&["a.csv", "b.json", "c.svg"][..], &["b.json"], &[]] {
            let mut k = 1;
            loop {
                let dir = tempfile::tempdir().unwrap();
                fs::write(dir.path().join("other.txt"), "the user's").unwrap();
                for name in earlier {
                    fs::write(dir.path().join(name), format!("old {name}")).unwrap();
                }
                let before = contents(dir.path());
                let mut calls = 0;
                let mut rename = |from: &Path, to: &Path| {
                    calls += 1;
                    if calls == k {
                        Err(io::Error::other("injected"))
                    } else {
                        fs::rename(from, to)
                    }
                };
                let result = write_files_with(dir.path(), &new, &mut rename);
                if calls < k {
                    // Every rename done, none failed: the new files are in place.
                    assert!(result.is_ok(), "{earlier:?}");
                    let after = contents(dir.path());
                    for (name, text) in new {
                        assert!(after.contains(&(name.to_string(), text.to_string())));
                    }
                    assert_eq!(after.len(), 4, "no temporary files left: {after:?}");
                    break;
                }
                let Err(Failure::Io(message)) = result else {
                    panic!("rename {k} failed, the write did not");
                };
                assert!(message.contains("injected"), "{message}");
                assert_eq!(contents(dir.path()), before, "rename {k} of {earlier:?}");
                k += 1;
            }
            // 3 installs, and a move aside per earlier file.
            assert_eq!(k, 4 + earlier.len(), "{earlier:?}");
        }
    }

    #[test]
    fn a_target_that_is_not_a_file_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.csv"), "old").unwrap();
        fs::create_dir(dir.path().join("c.svg")).unwrap();
        let result = write_files(dir.path(), &[("a.csv", "new"), ("c.svg", "new")]);
        let Err(Failure::Io(message)) = result else {
            panic!("written over a directory");
        };
        assert!(message.contains("is not a regular file"), "{message}");
        assert_eq!(fs::read_to_string(dir.path().join("a.csv")).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(check_writable(dir.path(), &["c.svg"]).is_err());
        assert!(check_writable(dir.path(), &["a.csv", "new.svg"]).is_ok());
    }
}
