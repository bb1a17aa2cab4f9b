//! Writing output files so that a failure leaves nothing half-written behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Failure;

/// Writes every `(file name, contents)` pair into `dir`, all or nothing.
///
/// Each file is first written in full to a temporary file in `dir` (so that the final
/// rename stays on one file system and is atomic), then all are renamed into place. If
/// anything fails, the files already renamed are removed again, the temporary files are
/// deleted, and `dir` itself is removed if this call created it. Returns the paths
/// written.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>, Failure> {
    let created = create_dir(dir)?;
    let result = write_staged(dir, files);
    if result.is_err() {
        for dir in created.iter().rev() {
            // Only removes a directory that is still empty: nothing of the user's is lost.
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

/// Checks, before a long computation, that files can be written into `dir`: creates it
/// (and its missing parents), writes and deletes a temporary file there, and removes
/// again the directories it created. A failure is the one [`write_files`] would report,
/// found before anything is printed.
pub fn check_writable(dir: &Path) -> Result<(), Failure> {
    let created = create_dir(dir)?;
    let probe = tempfile::Builder::new()
        .prefix(".gradstep-probe.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Failure::io(format!("cannot write into {}: {e}", dir.display())));
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

fn write_staged(dir: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>, Failure> {
    let cannot_write = |path: &Path, e: &dyn std::fmt::Display| {
        Failure::io(format!("cannot write {}: {e}", path.display()))
    };
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
        staged.push((tmp, path));
    }
    let mut written: Vec<PathBuf> = Vec::with_capacity(staged.len());
    for (tmp, path) in staged {
        if let Err(e) = tmp.persist(&path) {
            for done in &written {
                let _ = fs::remove_file(done);
            }
            return Err(cannot_write(&path, &e.error));
        }
        written.push(path);
    }
    Ok(written)
}
