//! The daemon's desired state on disk: live changes made with edgectl and
//! the ids given to names, so that a restart (or a crash) comes back to the
//! same maps. Written atomically: a temporary file, fsync, rename, fsync of
//! the directory.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::Path,
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::config::Live;

/// Stable ids by name: a name keeps its id for as long as it exists, so a
/// reload that adds a PoP never renumbers the others (the maps stay valid
/// at every step of a diff).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    #[serde(default)]
    pub ports: BTreeMap<String, u32>,
    #[serde(default)]
    pub pops: BTreeMap<String, u32>,
    #[serde(default)]
    pub policies: BTreeMap<String, u32>,
}

impl Ids {
    /// Ids for `names` in order: kept where the name had one, else the lowest
    /// free id below `limit`. Names no longer present lose theirs.
    pub fn assign(previous: &BTreeMap<String, u32>, names: &[&str], limit: u32) -> Vec<u32> {
        let kept: BTreeSet<u32> = names
            .iter()
            .filter_map(|n| previous.get(*n).copied())
            .filter(|&id| id < limit)
            .collect();
        let mut free = (0..limit).filter(|id| !kept.contains(id));
        names
            .iter()
            .map(|n| match previous.get(*n) {
                Some(&id) if id < limit => id,
                _ => free
                    .next()
                    .expect("validation keeps names within the limit"),
            })
            .collect()
    }
}

/// Everything edged must remember beyond its config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub live: Live,
    /// PoPs drained by the operator.
    #[serde(default)]
    pub drained: BTreeSet<String>,
    #[serde(default)]
    pub ids: Ids,
}

impl State {
    /// Reads the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("state file {} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the state file atomically (root-only permissions).
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("tmp");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    pub fn remove(path: &Path) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_by_name() {
        let first = Ids::assign(&BTreeMap::new(), &["a", "b", "c"], 8);
        assert_eq!(first, [0, 1, 2]);
        let prev: BTreeMap<String, u32> = [("a", 0), ("b", 1), ("c", 2)]
            .into_iter()
            .map(|(n, i)| (n.to_string(), i))
            .collect();
        // b leaves, d arrives before c: a and c keep theirs, d takes b's.
        assert_eq!(Ids::assign(&prev, &["a", "d", "c"], 8), [0, 1, 2]);
        assert_eq!(Ids::assign(&prev, &["c", "x", "y"], 8), [2, 0, 1]);
    }

    #[test]
    fn state_round_trips_atomically() {
        let dir = std::env::temp_dir().join(format!("edge-state-{}", std::process::id()));
        let path = dir.join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.drained.insert("ams".into());
        s.live.removed.push("192.0.2.0/24".parse().unwrap());
        s.ids.pops.insert("ams".into(), 3);
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        assert!(!path.with_extension("tmp").exists());
        fs::write(&path, b"{not json").unwrap();
        assert!(State::load(&path).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
