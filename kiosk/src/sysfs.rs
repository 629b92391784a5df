//! Small readers for sysfs folders.

use std::path::Path;

/// Names of the entries of `dir`, sorted; empty when it cannot be read (a
/// missing bus or class simply has no devices).
pub fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_a_missing_folder_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["sdb", "nvme0n1", "sda1"] {
            std::fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        assert_eq!(entry_names(dir.path()), ["nvme0n1", "sda1", "sdb"]);
        assert!(entry_names(&dir.path().join("absent")).is_empty());
    }
}
