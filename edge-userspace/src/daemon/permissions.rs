//! Who else can change the config: a config file anyone can write, or one
//! in a directory anyone can write (without the sticky bit: anyone can
//! replace the file there), is a config anyone can use to reroute traffic
//! at the next reload. Checked like sshd's `StrictModes`: the file and
//! every directory above it, as named and as resolved through symlinks.

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use log::warn;

const WORLD_WRITABLE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// What is wrong with who may write the config file at `path`: one
/// message per world-writable file or directory, nearest first.
pub fn config_file_warnings(path: &Path) -> Vec<String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut files: Vec<PathBuf> = vec![absolute.clone()];
    if let Ok(real) = std::fs::canonicalize(&absolute)
        && real != absolute
    {
        files.push(real);
    }
    let mut warnings = Vec::new();
    let mut checked = BTreeSet::new();
    for file in &files {
        if checked.insert(file.clone())
            && let Ok(m) = std::fs::metadata(file)
            && m.permissions().mode() & WORLD_WRITABLE != 0
        {
            warnings.push(format!(
                "{} is world-writable: anyone on this host can change the forwarding (chmod o-w {})",
                file.display(),
                file.display()
            ));
        }
        for dir in file.ancestors().skip(1) {
            if dir.as_os_str().is_empty() || !checked.insert(dir.to_path_buf()) {
                continue;
            }
            let Ok(m) = std::fs::metadata(dir) else {
                continue;
            };
            let mode = m.permissions().mode();
            if mode & WORLD_WRITABLE != 0 && mode & STICKY == 0 {
                warnings.push(format!(
                    "the config {} is in a world-writable directory {} (mode {:04o}, no sticky bit): anyone on this host can replace the file and change the forwarding (chmod o-w {})",
                    path.display(),
                    dir.display(),
                    mode & 0o7777,
                    dir.display()
                ));
            }
        }
    }
    warnings
}

/// Logs every [`config_file_warnings`] as a WARN line.
pub fn warn_if_writable(path: &Path) {
    for w in config_file_warnings(path) {
        warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn world_writable_files_and_directories_are_named() {
        let top = std::env::temp_dir().join(format!("edge-perm-{}", std::process::id()));
        let dir = top.join("etc");
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&top, 0o755);
        chmod(&dir, 0o755);
        let file = dir.join("edge.toml");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o644);
        // Only what is said about this test's own files and directories.
        let mine = |w: &[String]| {
            let top = top.to_str().unwrap();
            w.iter()
                .filter(|w| w.starts_with(top) || w.contains(&format!("directory {top}")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(mine(&config_file_warnings(&file)), Vec::<String>::new());

        chmod(&file, 0o666);
        let w = mine(&config_file_warnings(&file));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("edge.toml is world-writable"), "{w:?}");
        chmod(&file, 0o644);

        // A parent directory, not the nearest, world-writable: named.
        chmod(&top, 0o777);
        let w = mine(&config_file_warnings(&file));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains(&format!(
                "world-writable directory {} (mode 0777",
                top.display()
            )),
            "{w:?}"
        );
        // With the sticky bit (like /tmp) nobody can replace others' files.
        chmod(&top, 0o1777);
        assert_eq!(mine(&config_file_warnings(&file)), Vec::<String>::new());

        // Named through a symlink in a safe directory: the real place counts.
        chmod(&top, 0o755);
        chmod(&dir, 0o777);
        let safe = top.join("safe");
        std::fs::create_dir_all(&safe).unwrap();
        chmod(&safe, 0o755);
        let link = safe.join("edge.toml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let w = mine(&config_file_warnings(&link));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains(&format!("directory {} ", dir.display())),
            "{w:?}"
        );
        std::fs::remove_dir_all(&top).unwrap();
    }
}
