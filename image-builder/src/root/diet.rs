//! What the stick never reads, left out of the root: documentation (the
//! packages' copyright files stay: they go with the binaries), manual and info
//! pages, translations and GTK's emoji names other than the stick's languages,
//! Chromium's developer leftovers (the Vulkan validation layer, 24 MB, and the
//! mock Vulkan driver of its tests), and Mesa's GPU drivers with LLVM (192 MiB:
//! the stick draws in software). Each rule's saving is measured on the tree and
//! logged.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One thing left out, and why the stick never needs it.
#[derive(Debug, Clone, Copy)]
pub struct DietRule {
    pub name: &'static str,
    pub why: &'static str,
    selector: Selector,
}

#[derive(Debug, Clone, Copy)]
enum Selector {
    /// Every file under these folders, but files named `keep` (and symlinks).
    Files {
        folders: &'static [&'static str],
        keep: Option<&'static str>,
    },
    /// The subfolders of `folder` named for a language the stick does not speak.
    OtherLanguages { folder: &'static str },
    /// The files in `folder` named `LANGUAGE{suffix}` for a language the stick
    /// does not speak.
    OtherLanguageFiles {
        folder: &'static str,
        suffix: &'static str,
    },
    /// These files.
    Exact(&'static [&'static str]),
    /// The files and symlinks directly in `folder` whose names start with one
    /// of `prefixes` (`""`: all of them).
    Named {
        folder: &'static str,
        prefixes: &'static [&'static str],
    },
}

/// Where Debian puts the x86-64 libraries.
const LIB: &str = "usr/lib/x86_64-linux-gnu";

/// The rules, in the order they run.
pub const RULES: &[DietRule] = &[
    DietRule {
        name: "documentation",
        why: "nobody reads /usr/share/doc on the stick; the copyright files stay",
        selector: Selector::Files {
            folders: &["usr/share/doc"],
            keep: Some("copyright"),
        },
    },
    DietRule {
        name: "manual and info pages",
        why: "the stick has no shell and no man",
        selector: Selector::Files {
            folders: &["usr/share/man", "usr/share/info", "usr/share/lintian"],
            keep: None,
        },
    },
    DietRule {
        name: "translations",
        why: "programs' messages in languages the stick does not show",
        selector: Selector::OtherLanguages {
            folder: "usr/share/locale",
        },
    },
    DietRule {
        name: "emoji names in other languages",
        why: "GTK's emoji chooser in languages the stick does not show; GTK falls back \
              to the English names built into it",
        selector: Selector::OtherLanguageFiles {
            folder: "usr/share/gtk-3.0/emoji",
            suffix: ".gresource",
        },
    },
    DietRule {
        name: "Chromium's Vulkan validation layer and mock driver",
        why: "developer tools: loaded only when Vulkan validation or Chromium's tests ask for them",
        selector: Selector::Exact(&[
            "usr/lib/chromium/libVkLayer_khronos_validation.so",
            "usr/lib/chromium/libVkICD_mock_icd.so",
        ]),
    },
    DietRule {
        name: "Mesa's GPU drivers and LLVM",
        why: "the stick renders in software (labwc's pixman renderer, Chromium's \
              --disable-gpu); libgbm, libEGL and libGLESv2, which labwc and Chromium \
              link, stay and load these only when asked for a GPU",
        selector: Selector::Named {
            folder: LIB,
            prefixes: &[
                "libgallium-",
                "libLLVM",
                "libz3.so",
                "libEGL_mesa.so",
                "libGLX_mesa.so",
                "libGLX_indirect.so",
            ],
        },
    },
    DietRule {
        name: "Mesa's DRI drivers",
        why: "the loaders' entry points into libgallium, which is gone",
        selector: Selector::Named {
            folder: "usr/lib/x86_64-linux-gnu/dri",
            prefixes: &[""],
        },
    },
    DietRule {
        name: "Mesa's GBM backend",
        why: "libgbm's entry point into libgallium, which is gone",
        selector: Selector::Named {
            folder: "usr/lib/x86_64-linux-gnu/gbm",
            prefixes: &[""],
        },
    },
    DietRule {
        name: "Mesa's EGL vendor entry",
        why: "glvnd would look for libEGL_mesa, which is gone",
        selector: Selector::Exact(&["usr/share/glvnd/egl_vendor.d/50_mesa.json"]),
    },
];

/// What one rule took out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DietSaving {
    pub rule: &'static str,
    pub files: u64,
    pub bytes: u64,
}

/// Whether a translation folder (`de`, `de_AT`, `en@quot`, `pt_BR`) is for one
/// of `languages` (ISO 639-1 codes).
pub fn language_kept(folder: &str, languages: &[&str]) -> bool {
    let code = folder.split(['_', '@', '.']).next().unwrap_or(folder);
    languages.contains(&code)
}

/// Applies every rule to `root`, keeping translations for `languages`; the
/// saving of each rule.
pub fn apply(root: &Path, languages: &[&str]) -> Result<Vec<DietSaving>> {
    RULES
        .iter()
        .map(|rule| {
            let files = select(root, rule.selector, languages)?;
            let mut saving = DietSaving {
                rule: rule.name,
                files: 0,
                bytes: 0,
            };
            for file in files {
                let meta = std::fs::symlink_metadata(&file)
                    .with_context(|| format!("cannot stat {}", file.display()))?;
                std::fs::remove_file(&file)
                    .with_context(|| format!("cannot remove {}", file.display()))?;
                saving.files += 1;
                saving.bytes += meta.len();
            }
            match rule.selector {
                Selector::Files { folders, .. } => {
                    for folder in folders {
                        remove_empty_folders(&root.join(folder))?;
                    }
                }
                Selector::Named { folder, .. } if folder != LIB => {
                    remove_empty_folders(&root.join(folder))?;
                }
                _ => {}
            }
            tracing::info!(
                "diet: {}: {} files, {:.1} MiB ({})",
                rule.name,
                saving.files,
                saving.bytes as f64 / (1024.0 * 1024.0),
                rule.why
            );
            Ok(saving)
        })
        .collect()
}

/// The files a rule takes out of `root`.
fn select(root: &Path, selector: Selector, languages: &[&str]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    match selector {
        Selector::Files { folders, keep } => {
            for folder in folders {
                walk(&root.join(folder), &mut |path, meta| {
                    let kept = meta.file_type().is_symlink()
                        || keep.is_some_and(|k| path.file_name().is_some_and(|n| n == k));
                    if !kept {
                        found.push(path.to_path_buf());
                    }
                })?;
            }
        }
        Selector::OtherLanguages { folder } => {
            for (name, path, is_dir) in entries_of(&root.join(folder))? {
                if is_dir && !language_kept(&name, languages) {
                    walk(&path, &mut |path, meta| {
                        if !meta.is_dir() {
                            found.push(path.to_path_buf());
                        }
                    })?;
                }
            }
        }
        Selector::OtherLanguageFiles { folder, suffix } => {
            for (name, path, is_dir) in entries_of(&root.join(folder))? {
                let language = name.strip_suffix(suffix);
                if !is_dir && language.is_some_and(|l| !language_kept(l, languages)) {
                    found.push(path);
                }
            }
            found.sort();
        }
        Selector::Named { folder, prefixes } => {
            for (name, path, is_dir) in entries_of(&root.join(folder))? {
                if !is_dir && prefixes.iter().any(|p| name.starts_with(p)) {
                    found.push(path);
                }
            }
            found.sort();
        }
        Selector::Exact(files) => {
            found.extend(
                files
                    .iter()
                    .map(|file| root.join(file))
                    .filter(|path| path.symlink_metadata().is_ok()),
            );
        }
    }
    Ok(found)
}

/// The entries directly in `folder` as (name, path, whether it is a folder,
/// symlinks not followed); a missing folder has none.
fn entries_of(folder: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(Vec::new());
    };
    entries
        .map(|entry| {
            let entry = entry.with_context(|| format!("cannot read {}", folder.display()))?;
            let is_dir = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?
                .is_dir();
            Ok((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
                is_dir,
            ))
        })
        .collect()
}

/// Calls `visit` for every file and symlink under `folder` (not following
/// symlinks); a missing folder has none.
pub(crate) fn walk(folder: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", folder.display()))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if meta.is_dir() {
            walk(&path, visit)?;
        } else {
            visit(&path, &meta);
        }
    }
    Ok(())
}

/// Removes the folders under `folder` (and `folder`) that the diet left empty.
pub(crate) fn remove_empty_folders(folder: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_folders(&entry.path())?;
        }
    }
    match std::fs::remove_dir(folder) {
        Ok(()) => Ok(()),
        // Not empty (a copyright file stayed): that is fine.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translations_stay_for_the_sticks_languages_only() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("de", &["de", "en"], true),
            ("de_AT", &["de", "en"], true),
            ("en@quot", &["de", "en"], true),
            ("en_GB", &["en"], true),
            ("fr", &["de", "en"], false),
            ("pt_BR", &["de", "en"], false),
            ("de", &["en"], false),
            ("sr@latin", &["de", "en"], false),
        ];
        for (folder, languages, kept) in cases {
            assert_eq!(language_kept(folder, languages), *kept, "{folder}");
        }
    }

    #[test]
    fn the_diet_takes_what_its_rules_name_and_keeps_copyright() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let files: &[(&str, usize)] = &[
            ("usr/share/doc/foo/copyright", 10),
            ("usr/share/doc/foo/changelog.Debian.gz", 100),
            ("usr/share/doc/bar/README", 50),
            ("usr/share/man/man1/foo.1.gz", 30),
            ("usr/share/locale/de/LC_MESSAGES/foo.mo", 7),
            ("usr/share/locale/fr/LC_MESSAGES/foo.mo", 8),
            ("usr/share/locale/locale.alias", 3),
            ("usr/share/gtk-3.0/emoji/de.gresource", 11),
            ("usr/share/gtk-3.0/emoji/pt_BR.gresource", 12),
            ("usr/share/gtk-3.0/emoji/README", 13),
            ("usr/lib/chromium/libVkLayer_khronos_validation.so", 40),
            ("usr/lib/chromium/libvk_swiftshader.so", 20),
            ("usr/lib/x86_64-linux-gnu/libLLVM.so.19.1", 60),
            (
                "usr/lib/x86_64-linux-gnu/libgallium-25.0.7-2+deb13u1.so",
                30,
            ),
            ("usr/lib/x86_64-linux-gnu/libgbm.so.1.0.0", 5),
            ("usr/lib/x86_64-linux-gnu/libEGL.so.1.1.0", 4),
            ("usr/lib/x86_64-linux-gnu/dri/libdril_dri.so", 6),
            ("usr/lib/x86_64-linux-gnu/gbm/dri_gbm.so", 2),
        ];
        for (file, size) in files {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, vec![0u8; *size]).expect("write");
        }
        std::os::unix::fs::symlink("foo", root.join("usr/share/doc/baz")).expect("symlink");
        // Symlinks go with the libraries they point at (they would dangle).
        std::os::unix::fs::symlink(
            "libLLVM.so.19.1",
            root.join("usr/lib/x86_64-linux-gnu/libLLVM-19.so"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(
            "libdril_dri.so",
            root.join("usr/lib/x86_64-linux-gnu/dri/iris_dri.so"),
        )
        .expect("symlink");
        let savings = apply(root, &["de", "en"]).expect("diet");
        let by_rule: Vec<(&str, u64, u64)> =
            savings.iter().map(|s| (s.rule, s.files, s.bytes)).collect();
        assert_eq!(
            by_rule,
            vec![
                ("documentation", 2, 150),
                ("manual and info pages", 1, 30),
                ("translations", 1, 8),
                ("emoji names in other languages", 1, 12),
                ("Chromium's Vulkan validation layer and mock driver", 1, 40),
                ("Mesa's GPU drivers and LLVM", 3, 90 + 15),
                ("Mesa's DRI drivers", 2, 6 + 14),
                ("Mesa's GBM backend", 1, 2),
                ("Mesa's EGL vendor entry", 0, 0),
            ]
        );
        let left: Vec<bool> = files
            .iter()
            .map(|(file, _)| root.join(file).exists())
            .collect();
        assert_eq!(
            left,
            vec![
                true, false, false, false, true, false, true, true, false, true, false, true,
                false, false, true, true, false, false
            ]
        );
        assert!(
            !root.join("usr/lib/x86_64-linux-gnu/dri").exists(),
            "empty folder left"
        );
        assert!(root.join("usr/share/doc/baz").symlink_metadata().is_ok());
        assert!(
            !root.join("usr/share/doc/bar").exists(),
            "empty folder left"
        );
        assert!(!root.join("usr/share/man").exists(), "empty folder left");
    }
}
