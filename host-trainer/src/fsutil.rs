//! Crash-safe file writing: a temp file beside the target, fsync, then rename.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one,
/// never a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    let written = write_then_rename(&tmp, path, bytes);
    if written.is_err() {
        // A full disk or a failed rename leaves nothing behind.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Like [`write_atomic`], but an existing `path` is first renamed to `prev` (replacing it),
/// so that the file written before this one is kept. A crash between the two renames
/// leaves `prev` and the new file's temporary, never a lost old file.
pub fn write_atomic_keeping_prev(path: &Path, prev: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    let written = write_then_rename_via(&tmp, path, Some(prev), bytes);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_then_rename_via(tmp, path, None, bytes)
}

fn write_then_rename_via(
    tmp: &Path,
    path: &Path,
    prev: Option<&Path>,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut f = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    if let Some(prev) = prev.filter(|_| path.exists()) {
        fs::rename(path, prev).with_context(|| format!("renaming into {}", prev.display()))?;
    }
    fs::rename(tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let d = std::env::temp_dir().join(format!("atomic-{}", std::process::id()));
        let p = d.join("x.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn keeping_prev_renames_the_old_file() {
        let d = std::env::temp_dir().join(format!("atomic-prev-{}", std::process::id()));
        let (p, prev) = (d.join("x.bin"), d.join("x.prev.bin"));
        write_atomic_keeping_prev(&p, &prev, b"1").unwrap();
        assert!(!prev.exists());
        write_atomic_keeping_prev(&p, &prev, b"2").unwrap();
        write_atomic_keeping_prev(&p, &prev, b"3").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"3");
        assert_eq!(fs::read(&prev).unwrap(), b"2");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    /// A write that fails after the temporary file was written (here the rename, onto a
    /// folder that is not empty) removes the temporary file. (A write that fails part way,
    /// as on a full disk, is tested through the binary in `tests/full_disk.rs`.)
    #[test]
    fn a_failed_write_leaves_no_temp() {
        let d = std::env::temp_dir().join(format!("atomic-fail-{}", std::process::id()));
        let p = d.join("x.bin");
        fs::create_dir_all(p.join("inside")).unwrap();
        let e = write_atomic(&p, b"bytes").expect_err("renamed onto a folder");
        assert!(format!("{e:#}").contains("x.bin"), "{e:#}");
        let mut names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["x.bin"], "only the folder that was in the way");
        fs::remove_dir_all(&d).unwrap();
    }
}
