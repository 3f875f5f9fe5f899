//! A config directory laid out like a Kubernetes ConfigMap volume:
//! `config.yaml -> ..data/config.yaml`, `..data -> ..<version>/`. An update
//! writes a new version directory and renames a fresh `..data` symlink over
//! the old one, so readers see the old file or the new one, never a mix.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

pub struct ConfigMap {
    dir: tempfile::TempDir,
    version: usize,
}

impl ConfigMap {
    pub fn new(yaml: &str) -> ConfigMap {
        let dir = tempfile::tempdir().expect("configmap dir");
        let mut map = ConfigMap { dir, version: 0 };
        let first = map.write_version(yaml);
        symlink(&first, map.dir.path().join("..data")).expect("..data symlink");
        symlink("..data/config.yaml", map.path()).expect("config.yaml symlink");
        map
    }

    /// The path jwtgate is started with (the outer symlink).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// The kubelet's atomic swap: new version dir, new `..data` renamed over the old.
    pub fn swap(&mut self, yaml: &str) {
        let next = self.write_version(yaml);
        let tmp = self.dir.path().join("..data_tmp");
        symlink(&next, &tmp).expect("temp ..data symlink");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("rename ..data");
    }

    /// Replaces the file inside the current version directory in one step
    /// (an edit without a new version: the poller must notice it too).
    pub fn rewrite(&self, yaml: &str) {
        replace_file(&self.dir.path().join("..data").join("config.yaml"), yaml);
    }

    fn write_version(&mut self, yaml: &str) -> PathBuf {
        self.version += 1;
        let name = format!("..2026_{:02}", self.version);
        let dir = self.dir.path().join(&name);
        std::fs::create_dir(&dir).expect("version dir");
        std::fs::write(dir.join("config.yaml"), yaml).expect("write config version");
        PathBuf::from(name)
    }
}

/// Replaces the file at `path` in one step (write a sibling, rename over):
/// a poller never reads a half-written file.
pub fn replace_file(path: &Path, yaml: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, yaml).expect("write temp config");
    std::fs::rename(&tmp, path).expect("rename config into place");
}
