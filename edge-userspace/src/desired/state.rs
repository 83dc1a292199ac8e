//! The daemon's desired state on disk: live changes made with edgectl and
//! the ids given to names, so that a restart (or a crash) comes back to the
//! same maps.
//!
//! Written in two steps, so that a change can find out that it cannot be
//! recorded before it touches the kernel: [`State::prepare`] writes the new
//! contents to a temporary file next to it (created with `O_EXCL |
//! O_NOFOLLOW`: a symlink planted there is never followed) and fsyncs it;
//! [`Prepared::commit`] renames it onto the state file (atomic) and fsyncs
//! the directory. [`State::save`] does both. Read back, the file is
//! validated like the config: unknown fields, a name given twice, two names
//! sharing an id, an id beyond its map's limit are errors naming the file.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt, fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use edge_common::limits;
use ipnet::IpNet;
use log::warn;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{Live, PrefixSpec};

/// Stable ids by name: a name keeps its id for as long as it exists, so a
/// reload that adds a PoP never renumbers the others (the maps stay valid
/// at every step of a diff).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    #[serde(default, deserialize_with = "unique_names")]
    pub ports: BTreeMap<String, u32>,
    #[serde(default, deserialize_with = "unique_names")]
    pub pops: BTreeMap<String, u32>,
    #[serde(default, deserialize_with = "unique_names")]
    pub policies: BTreeMap<String, u32>,
    /// Private domains (ids from 1; 0 is the public domain).
    #[serde(default, deserialize_with = "unique_names")]
    pub domains: BTreeMap<String, u32>,
}

impl Ids {
    /// Ids for `names` in order: kept where the name had one (below `limit`
    /// and not taken by an earlier name), else the lowest free id below
    /// `limit`. Names no longer present lose theirs.
    pub fn assign(previous: &BTreeMap<String, u32>, names: &[&str], limit: u32) -> Vec<u32> {
        let mut taken = BTreeSet::new();
        let kept: Vec<Option<u32>> = names
            .iter()
            .map(|n| {
                previous
                    .get(*n)
                    .copied()
                    .filter(|&id| id < limit && taken.insert(id))
            })
            .collect();
        let mut free = (0..limit).filter(|id| !taken.contains(id));
        kept.into_iter()
            .map(|id| {
                id.unwrap_or_else(|| {
                    free.next()
                        .expect("validation keeps names within the limit")
                })
            })
            .collect()
    }

    /// What is wrong with these ids: two names sharing an id, ids beyond
    /// their map's limit (`ids.KIND: ...`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, ids, limit, what) in [
            ("ports", &self.ports, limits::MAX_PORTS, "ports"),
            ("pops", &self.pops, limits::MAX_POPS, "PoPs"),
            (
                "policies",
                &self.policies,
                limits::MAX_POLICIES,
                "policy tables",
            ),
        ] {
            let mut by_id: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
            for (name, &id) in ids {
                by_id.entry(id).or_default().push(name);
                if id >= limit {
                    out.push(format!(
                        "ids.{kind}: {name:?} has id {id}, beyond the limit of {limit} {what} (ids 0 to {})",
                        limit - 1
                    ));
                }
            }
            for (id, names) in by_id {
                if names.len() > 1 {
                    out.push(format!(
                        "ids.{kind}: {} share id {id} (each needs its own)",
                        names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                }
            }
        }
        out
    }
}

/// A map of names to ids in which a name appears once: serde_json would keep
/// the last of two entries for one name silently.
fn unique_names<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u32>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, u32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of names to ids")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, id)) = map.next_entry::<String, u32>()? {
                if out.insert(name.clone(), id).is_some() {
                    return Err(serde::de::Error::custom(format!("{name:?} is given twice")));
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visitor)
}

/// [`Live`] as the state file holds it: unknown fields are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveOnDisk {
    #[serde(default)]
    added: Vec<PrefixSpec>,
    #[serde(default)]
    removed: Vec<IpNet>,
    #[serde(default)]
    removed_private: Vec<crate::config::DomainNet>,
}

fn live_on_disk<'de, D: Deserializer<'de>>(d: D) -> Result<Live, D::Error> {
    let l = LiveOnDisk::deserialize(d)?;
    Ok(Live {
        added: l.added,
        removed: l.removed,
        removed_private: l.removed_private,
    })
}

/// Everything edged must remember beyond its config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default, deserialize_with = "live_on_disk")]
    pub live: Live,
    /// PoPs drained by the operator.
    #[serde(default)]
    pub drained: BTreeSet<String>,
    #[serde(default)]
    pub ids: Ids,
    /// When and by whom each network's live change (in `live.added` or
    /// `live.removed`) was made, for `edgectl live list`. A change made by
    /// an edged that did not record it has none.
    #[serde(default)]
    pub stamps: BTreeMap<IpNet, Stamp>,
}

/// When and by whom a live change was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// The operator: the user who sent the request (`root (uid 0)`), if
    /// known.
    #[serde(default)]
    pub by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Stamp {
    /// A stamp for now, by `by`.
    pub fn now(by: Option<String>) -> Self {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self { by, time_ms }
    }
}

/// What to do about a state file edged refuses.
const FIX: &str = "fix it, or move it away (the live changes and drained PoPs it holds are then lost, and names get new ids); nothing was changed";

impl State {
    /// Reads and validates the state file; a missing file is an empty state.
    /// A file edged cannot trust (not JSON, an unknown field, a name given
    /// twice, two names sharing an id, an id beyond its limit) is an error
    /// naming the file and every problem: applying it could give two ports
    /// or PoPs one id (a protected prefix then accepted on the wrong port).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::decode(&bytes, &format!("state file {}", path.display()))
    }

    /// Decodes and validates a state file's contents (`what`: the file,
    /// for the error).
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let state: Self = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("{what} is invalid: {e}; {FIX}"))?;
        let problems = state.ids.problems();
        if !problems.is_empty() {
            anyhow::bail!("{what} is invalid: {}; {FIX}", problems.join("; "));
        }
        Ok(state)
    }

    /// Writes the state file atomically (root-only permissions).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.prepare(path)?.commit()
    }

    /// Writes the new contents next to the state file at `path` (`*.tmp`,
    /// mode 0600) and fsyncs them; [`Prepared::commit`] puts them in place.
    /// A full disk, a read-only or missing directory fail here, before
    /// anything else changes. A leftover temporary file (a crash, or a
    /// symlink someone planted) is removed first, never followed.
    pub fn prepare(&self, path: &Path) -> Result<Prepared> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        let tmp = temp_path(path);
        let mut f = create_exclusive(&tmp)?;
        let prepared = Prepared {
            tmp: tmp.clone(),
            path: path.to_path_buf(),
            done: false,
        };
        let text = self.encode().context("encoding the state")?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        Ok(prepared)
    }

    /// The file's text: JSON with one live entry per line (readable, and
    /// quick to write with a hundred thousand of them), the rest pretty.
    pub fn encode(&self) -> serde_json::Result<Vec<u8>> {
        fn list<T: Serialize>(out: &mut Vec<u8>, items: &[T]) -> serde_json::Result<()> {
            if items.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"\n      " } else { b",\n      " });
                serde_json::to_writer(&mut *out, item)?;
            }
            out.extend_from_slice(b"\n    ]");
            Ok(())
        }
        let mut out = Vec::with_capacity(64 + self.live.added.len() * 80);
        out.extend_from_slice(b"{\n  \"live\": {\n    \"added\": ");
        list(&mut out, &self.live.added)?;
        out.extend_from_slice(b",\n    \"removed\": ");
        list(&mut out, &self.live.removed)?;
        if !self.live.removed_private.is_empty() {
            out.extend_from_slice(b",\n    \"removed_private\": ");
            list(&mut out, &self.live.removed_private)?;
        }
        out.extend_from_slice(b"\n  },\n  \"drained\": ");
        serde_json::to_writer(&mut out, &self.drained)?;
        out.extend_from_slice(b",\n  \"ids\": ");
        serde_json::to_writer(&mut out, &self.ids)?;
        if !self.stamps.is_empty() {
            // One network per line, like the live entries.
            out.extend_from_slice(b",\n  \"stamps\": {");
            for (i, (net, stamp)) in self.stamps.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
                serde_json::to_writer(&mut out, &net.to_string())?;
                out.push(b':');
                serde_json::to_writer(&mut out, stamp)?;
            }
            out.extend_from_slice(b"\n  }");
        }
        out.extend_from_slice(b"\n}\n");
        Ok(out)
    }

    /// Checks that the state file can be written: its directory exists (or
    /// is created) and takes a new file. Creates nothing that stays.
    pub fn check_writable(path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        let tmp = temp_path(path);
        drop(create_exclusive(&tmp)?);
        fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))
    }

    pub fn remove(path: &Path) {
        let _ = fs::remove_file(path);
    }
}

/// The temporary file next to the state file.
fn temp_path(path: &Path) -> PathBuf {
    path.with_extension("tmp")
}

/// Creates `tmp` anew (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600): whatever
/// is there already (a file left by a crash, a symlink) is removed first,
/// and a symlink is never followed.
fn create_exclusive(tmp: &Path) -> Result<fs::File> {
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)
    };
    match open() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let what = match fs::symlink_metadata(tmp) {
                Ok(m) if m.file_type().is_symlink() => "a symlink",
                _ => "a file",
            };
            warn!(
                "{} is left over ({what}; an interrupted write, or planted): removing it, not following it",
                tmp.display()
            );
            fs::remove_file(tmp)
                .with_context(|| format!("removing the leftover {}", tmp.display()))?;
            open().with_context(|| format!("creating {}", tmp.display()))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", tmp.display())),
    }
}

/// New state contents written and synced next to the state file, not yet
/// in place: [`Prepared::commit`] renames them onto it; dropped without
/// that, the temporary file is removed and the state file is as it was.
#[derive(Debug)]
#[must_use = "the state is recorded only by commit"]
pub struct Prepared {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl Prepared {
    /// Renames the temporary file onto the state file (atomic), then
    /// fsyncs the directory so that the rename lasts.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "renaming {} onto {}",
                self.tmp.display(),
                self.path.display()
            )
        })?;
        self.done = true;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
            // The new state is in place and read back from here on; only
            // its durability across a power loss is in doubt.
            warn!(
                "fsync of {} after writing {}: {e}",
                dir.display(),
                self.path.display()
            );
        }
        Ok(())
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the temp dir, removed on drop.
    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("edge-state-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Self(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

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
        // Two names with one id (never from a file edged accepts): the
        // first keeps it, the second gets a free one.
        let shared: BTreeMap<String, u32> = [("a", 1), ("b", 1)]
            .into_iter()
            .map(|(n, i)| (n.to_string(), i))
            .collect();
        assert_eq!(Ids::assign(&shared, &["a", "b"], 8), [1, 0]);
    }

    #[test]
    fn state_round_trips_atomically() {
        let dir = Dir::new("rt");
        let path = dir.0.join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.drained.insert("ams".into());
        s.live.removed.push("192.0.2.0/24".parse().unwrap());
        // A private domain's removal of the same network, and its live entry.
        s.live.removed_private.push(crate::config::DomainNet {
            domain: "red".into(),
            network: "192.0.2.0/24".parse().unwrap(),
        });
        s.live.added.push(PrefixSpec {
            prefix: "198.18.0.0/24".into(),
            pop: Some("red-gw".into()),
            domain: Some("red".into()),
            ..PrefixSpec::default()
        });
        s.ids.pops.insert("ams".into(), 3);
        s.ids.domains.insert("red".into(), 1);
        s.stamps.insert(
            "192.0.2.0/24".parse().unwrap(),
            Stamp {
                by: Some("root (uid 0)".into()),
                time_ms: 1_764_741_953_341,
            },
        );
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        assert!(!path.with_extension("tmp").exists());
        // One live entry per line.
        s.live.added = (0..3)
            .map(|i| PrefixSpec {
                prefix: format!("203.0.113.{i}/32"),
                pop: Some("ams".into()),
                ..PrefixSpec::default()
            })
            .collect();
        s.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines()
                .filter(|l| l.contains(r#"{"prefix":"203.0.113."#))
                .count(),
            3,
            "{text}"
        );
        assert_eq!(State::load(&path).unwrap(), s);
        State::default().save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), State::default());
        fs::write(&path, b"{not json").unwrap();
        let e = format!("{:#}", State::load(&path).unwrap_err());
        assert!(
            e.contains(&format!("state file {} is invalid", path.display())),
            "{e}"
        );
    }

    /// Prepared but not committed: the state file is as it was, and the
    /// temporary file is gone.
    #[test]
    fn a_prepared_state_is_recorded_only_by_commit() {
        let dir = Dir::new("prep");
        let path = dir.0.join("state.json");
        let old = State::default();
        old.save(&path).unwrap();
        let before = fs::read(&path).unwrap();
        let mut new = State::default();
        new.drained.insert("ams".into());
        let p = new.prepare(&path).unwrap();
        assert!(path.with_extension("tmp").exists());
        drop(p);
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!path.with_extension("tmp").exists());
        new.prepare(&path).unwrap().commit().unwrap();
        assert_eq!(State::load(&path).unwrap(), new);
    }

    /// A symlink planted at the temporary file's name is removed, not
    /// followed: its target keeps its contents (issue 15).
    #[test]
    fn a_symlink_at_the_temporary_file_is_not_followed() {
        let dir = Dir::new("link");
        let path = dir.0.join("state.json");
        let target = dir.0.join("precious");
        fs::write(&target, b"do not overwrite").unwrap();
        std::os::unix::fs::symlink(&target, path.with_extension("tmp")).unwrap();
        let mut s = State::default();
        s.drained.insert("ams".into());
        s.save(&path).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"do not overwrite");
        assert_eq!(State::load(&path).unwrap(), s);
        assert!(fs::symlink_metadata(path.with_extension("tmp")).is_err());
        // The same for the writability check.
        std::os::unix::fs::symlink(&target, path.with_extension("tmp")).unwrap();
        State::check_writable(&path).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"do not overwrite");
        let mode = fs::metadata(&path).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    /// A hand-edited state file is validated like the config (issue 15):
    /// two names sharing an id, an id beyond its limit, a name given twice,
    /// an unknown field: an error naming the file and the problem.
    #[test]
    fn a_state_file_that_cannot_be_trusted_is_refused() {
        let dir = Dir::new("bad");
        let path = dir.0.join("state.json");
        for (text, needles) in [
            (
                r#"{"ids": {"ports": {"peer0": 0, "peer1": 0}}}"#,
                &[r#"ids.ports: "peer0" and "peer1" share id 0"#][..],
            ),
            (
                r#"{"ids": {"pops": {"a": 300}, "policies": {"p": 256}}}"#,
                &[
                    r#"ids.pops: "a" has id 300, beyond the limit of 256 PoPs"#,
                    r#"ids.policies: "p" has id 256, beyond the limit of 256 policy tables"#,
                ][..],
            ),
            (
                r#"{"ids": {"pops": {"a": 1, "a": 2}}}"#,
                &[r#""a" is given twice"#][..],
            ),
            (r#"{"idz": {}}"#, &["unknown field `idz`"][..]),
            (
                r#"{"live": {"added": [], "remove": []}}"#,
                &["unknown field `remove`"][..],
            ),
            (
                r#"{"live": {"added": [{"prefix": "192.0.2.0/24", "colour": "red"}]}}"#,
                &["unknown field `colour`"][..],
            ),
        ] {
            fs::write(&path, text).unwrap();
            let e = format!("{:#}", State::load(&path).unwrap_err());
            assert!(
                e.starts_with(&format!("state file {} is invalid: ", path.display())),
                "{text}: {e}"
            );
            for n in needles {
                assert!(e.contains(n), "{text}: {n:?} missing in {e}");
            }
            assert!(e.contains("nothing was changed"), "{e}");
        }
        // What edged writes is accepted.
        fs::write(
            &path,
            r#"{"live": {"added": [{"prefix": "192.0.2.0/24", "pop": "a"}], "removed": ["198.51.100.0/24"]}, "drained": ["a"], "ids": {"ports": {"peer0": 0, "peer1": 1}, "pops": {"a": 0}, "policies": {"pop:a": 0}}}"#,
        )
        .unwrap();
        State::load(&path).unwrap();
    }

    /// A state directory that takes no new file (read-only, full) fails
    /// the check and the prepare, naming the file.
    #[test]
    fn an_unwritable_state_directory_is_found_before_anything_changes() {
        let dir = Dir::new("ro");
        // A directory where the state file's directory should be is a
        // regular file: creating anything in it fails, also for root.
        let blocker = dir.0.join("notadir");
        fs::write(&blocker, b"").unwrap();
        let path = blocker.join("state.json");
        let e = format!("{:#}", State::check_writable(&path).unwrap_err());
        assert!(e.contains(&blocker.display().to_string()), "{e}");
        let e = format!("{:#}", State::default().prepare(&path).unwrap_err());
        assert!(e.contains(&blocker.display().to_string()), "{e}");
    }
}
