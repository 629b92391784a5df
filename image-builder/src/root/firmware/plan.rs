//! Which firmware files the image's drivers can load: what a module names
//! (`MODULE_FIRMWARE`, a name or a `*` pattern), the file a driver falls back
//! to when the named API version is not shipped, the named file's companions,
//! and the few folders a driver loads without naming them. Pure: for tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::wifi::FirmwareFamily;

/// One kernel module and the firmware names it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFirmware {
    /// The module's path as modinfo printed it.
    pub module: String,
    pub names: Vec<String>,
}

/// A file (or symlink) under the firmware folder, relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareFile {
    pub path: String,
    /// 0 for a symlink.
    pub size: u64,
    /// A symlink's target, relative to the firmware folder.
    pub link: Option<String>,
}

/// Whose driver keeps a file: a Wi-Fi family, or any other driver.
pub type Owner = Option<FirmwareFamily>;

/// A folder a driver loads from without declaring any file of it.
struct Undeclared {
    driver: &'static str,
    folder: &'static str,
}

/// ath12k (Qualcomm Wi-Fi 7, WCN7850) loads `ath12k/<chip>/<revision>/` but
/// declares none of it (kernel 6.12).
const UNDECLARED: &[Undeclared] = &[Undeclared {
    driver: "/kernel/drivers/net/wireless/ath/ath12k/",
    folder: "ath12k/",
}];

/// What stays and what goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwarePlan {
    pub kept: BTreeMap<String, Owner>,
    pub removed: Vec<String>,
}

/// The owner of a module: the family whose driver folder holds it.
pub fn owner_of(module: &str) -> Owner {
    FirmwareFamily::ALL
        .into_iter()
        .find(|f| module.contains(&format!("/{}/", f.driver_folder())))
}

/// `path`'s folder and name without extension and API version, the version,
/// and the extension: `iwlwifi-cc-a0-77.ucode` is (`iwlwifi-cc-a0`, 77,
/// `ucode`), `iwlwifi-so-a0-gf-a0.pnvm` is (`iwlwifi-so-a0-gf-a0`, none, `pnvm`).
fn versioned(path: &str) -> (String, Option<u32>, String) {
    let (stem, extension) = match path.rfind('.') {
        Some(dot) if dot > path.rfind('/').map_or(0, |s| s + 1) => {
            (&path[..dot], path[dot + 1..].to_string())
        }
        _ => (path, String::new()),
    };
    if let Some((base, version)) = stem.rsplit_once('-') {
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(version) = version.parse() {
                return (base.to_string(), Some(version), extension);
            }
        }
    }
    (stem.to_string(), None, extension)
}

/// `*` and `?` within one path component, as the kernel's patterns use them.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && matches(p, &s[1..]))
            }
            (Some(b'?'), Some(&c)) => c != b'/' && matches(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && matches(&p[1..], &s[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
}

/// The names declared with one base: per extension, the newest version named,
/// and the extensions named without a version (rtw89 names `rtw8852c_fw.bin`
/// and loads `rtw8852c_fw-1.bin`; Intel names `X.pnvm` beside `X-93.ucode`).
#[derive(Debug, Default)]
struct Family {
    owner: Owner,
    newest_named: BTreeMap<String, u32>,
    unversioned_named: BTreeSet<String>,
}

/// What the modules declare, and the versions the firmware folder ships.
struct Declarations<'a> {
    exact: BTreeMap<&'a str, Owner>,
    patterns: Vec<(&'a str, Owner)>,
    families: BTreeMap<String, Family>,
    /// Per base and extension, the versions shipped.
    shipped: BTreeMap<(String, String), BTreeSet<u32>>,
    undeclared: Vec<&'static Undeclared>,
}

impl<'a> Declarations<'a> {
    fn new(modules: &'a [ModuleFirmware], files: &[FirmwareFile]) -> Declarations<'a> {
        let mut declared = Declarations {
            exact: BTreeMap::new(),
            patterns: Vec::new(),
            families: BTreeMap::new(),
            shipped: BTreeMap::new(),
            undeclared: UNDECLARED
                .iter()
                .filter(|u| modules.iter().any(|m| m.module.contains(u.driver)))
                .collect(),
        };
        for module in modules {
            let owner = owner_of(&module.module);
            for name in &module.names {
                declared.add(name, owner);
            }
        }
        for file in files {
            if let (base, Some(v), extension) = versioned(&file.path) {
                declared
                    .shipped
                    .entry((base, extension))
                    .or_default()
                    .insert(v);
            }
        }
        declared
    }

    fn add(&mut self, name: &'a str, owner: Owner) {
        if name.contains(['*', '?']) {
            self.patterns.push((name, owner));
            return;
        }
        self.exact.entry(name).or_insert(owner);
        let (base, version, extension) = versioned(name);
        let family = self.families.entry(base).or_default();
        family.owner = family.owner.or(owner);
        match version {
            Some(v) => {
                let newest = family.newest_named.entry(extension).or_insert(v);
                *newest = (*newest).max(v);
            }
            None => {
                family.unversioned_named.insert(extension);
            }
        }
    }

    /// Whose driver loads `path`, if any driver does.
    fn owner(&self, path: &str) -> Option<Owner> {
        if let Some(owner) = self.exact.get(path) {
            return Some(*owner);
        }
        if let Some((_, owner)) = self.patterns.iter().find(|(p, _)| pattern_matches(p, path)) {
            return Some(*owner);
        }
        let (base, version, extension) = versioned(path);
        if let Some(family) = self.families.get(&base) {
            let loaded = match (version, family.newest_named.get(&extension)) {
                // A companion of a declared name (Intel's .pnvm beside its .ucode).
                (None, _) => true,
                (Some(_), _) if family.unversioned_named.contains(&extension) => true,
                // The version a driver falls back to: the newest shipped at or
                // below the newest declared.
                (Some(v), Some(&newest)) => {
                    let fallback = self
                        .shipped
                        .get(&(base, extension))
                        .and_then(|vs| vs.range(..=newest).next_back().copied());
                    fallback == Some(v)
                }
                (Some(_), None) => false,
            };
            if loaded {
                return Some(family.owner);
            }
        }
        self.undeclared
            .iter()
            .find(|u| path.starts_with(u.folder))
            .map(|u| owner_of(u.driver))
    }
}

/// Splits `files` into what the `modules` can load and the rest.
pub fn plan(modules: &[ModuleFirmware], files: &[FirmwareFile]) -> FirmwarePlan {
    let declared = Declarations::new(modules, files);
    let mut kept: BTreeMap<String, Owner> = files
        .iter()
        .filter_map(|f| declared.owner(&f.path).map(|o| (f.path.clone(), o)))
        .collect();
    // A kept symlink keeps its target.
    let targets: Vec<(String, Owner)> = files
        .iter()
        .filter_map(|f| Some((f.link.clone()?, *kept.get(&f.path)?)))
        .collect();
    let present: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for (target, owner) in targets {
        if present.contains(target.as_str()) {
            kept.entry(target).or_insert(owner);
        }
    }
    let removed = files
        .iter()
        .filter(|f| !kept.contains_key(&f.path))
        .map(|f| f.path.clone())
        .collect();
    FirmwarePlan { kept, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIRELESS: &str = "/usr/lib/modules/6.12/kernel/drivers/net/wireless";

    fn module(path: &str, names: &[&str]) -> ModuleFirmware {
        ModuleFirmware {
            module: path.replace("@W", WIRELESS),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn file(path: &str) -> FirmwareFile {
        FirmwareFile {
            path: path.into(),
            size: 1,
            link: None,
        }
    }

    #[test]
    fn versions_are_split_from_names() {
        let cases: &[(&str, &str, Option<u32>, &str)] = &[
            ("iwlwifi-cc-a0-77.ucode", "iwlwifi-cc-a0", Some(77), "ucode"),
            (
                "iwlwifi-so-a0-gf-a0.pnvm",
                "iwlwifi-so-a0-gf-a0",
                None,
                "pnvm",
            ),
            (
                "ath10k/QCA6174/hw3.0/firmware-6.bin",
                "ath10k/QCA6174/hw3.0/firmware",
                Some(6),
                "bin",
            ),
            (
                "ath9k_htc/htc_9271-1.4.0.fw",
                "ath9k_htc/htc_9271-1.4.0",
                None,
                "fw",
            ),
            (
                "rtw89/rtw8852c_fw-1.bin",
                "rtw89/rtw8852c_fw",
                Some(1),
                "bin",
            ),
            (
                "ath11k/WCN6855/hw2.0/amss.bin",
                "ath11k/WCN6855/hw2.0/amss",
                None,
                "bin",
            ),
            ("regulatory.db", "regulatory", None, "db"),
            ("a.b/noext", "a.b/noext", None, ""),
        ];
        for (path, base, version, extension) in cases {
            assert_eq!(
                versioned(path),
                (base.to_string(), *version, extension.to_string()),
                "{path}"
            );
        }
    }

    #[test]
    fn patterns_match_within_one_folder() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "ath11k/WCN6855/hw2.0/*",
                "ath11k/WCN6855/hw2.0/amss.bin",
                true,
            ),
            (
                "ath11k/WCN6855/hw2.0/*",
                "ath11k/WCN6855/hw2.0/x/y.bin",
                false,
            ),
            (
                "ath11k/WCN6855/hw2.0/*",
                "ath11k/WCN6855/hw2.1/amss.bin",
                false,
            ),
            ("mt7?.bin", "mt76.bin", true),
            ("mt7?.bin", "mt7.bin", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(pattern_matches(pattern, path), *want, "{pattern} {path}");
        }
    }

    #[test]
    fn only_what_the_drivers_can_load_stays() {
        let modules = [
            module(
                "@W/intel/iwlwifi/iwlwifi.ko.xz",
                &[
                    "iwlwifi-cc-a0-77.ucode",
                    "iwlwifi-so-a0-gf-a0-89.ucode",
                    "iwlwifi-gl-c0-fm-c0.pnvm",
                    "iwlwifi-gl-c0-fm-c0-93.ucode",
                ],
            ),
            module(
                "@W/realtek/rtw89/rtw89_8852ce.ko.xz",
                &["rtw89/rtw8852c_fw.bin"],
            ),
            module(
                "@W/ath/ath11k/ath11k_pci.ko.xz",
                &["ath11k/WCN6855/hw2.0/*"],
            ),
            module("@W/ath/ath12k/ath12k.ko.xz", &[]),
            module(
                "/usr/lib/modules/6.12/kernel/drivers/net/ethernet/realtek/r8169.ko.xz",
                &["rtl_nic/rtl8168h-2.fw"],
            ),
        ];
        let mut files: Vec<FirmwareFile> = [
            // Intel: 77 is named but not shipped, so the driver falls back to 74.
            "iwlwifi-cc-a0-72.ucode",
            "iwlwifi-cc-a0-74.ucode",
            "iwlwifi-cc-a0-79.ucode",
            "iwlwifi-so-a0-gf-a0-89.ucode",
            "iwlwifi-so-a0-gf-a0-86.ucode",
            "iwlwifi-so-a0-gf-a0.pnvm",
            "iwlwifi-ty-a0-gf-a0-89.ucode",
            // A named .pnvm keeps itself, not every version of the .ucode.
            "iwlwifi-gl-c0-fm-c0-92.ucode",
            "iwlwifi-gl-c0-fm-c0-94.ucode",
            "iwlwifi-gl-c0-fm-c0.pnvm",
            "rtw89/rtw8852c_fw.bin",
            "rtw89/rtw8852c_fw-1.bin",
            "rtw89/rtw8852b_fw-1.bin",
            "ath11k/WCN6855/hw2.0/amss.bin",
            "ath11k/WCN6855/hw2.0/board-2.bin",
            "ath11k/QCN9074/hw1.0/amss.bin",
            "ath12k/WCN7850/hw2.0/amss.bin",
            "rtl_nic/rtl8168h-2.fw",
            "rtl_bt/rtl8852cu_fw.bin",
            "ibt-0040-0041.sfi",
        ]
        .iter()
        .map(|p| file(p))
        .collect();
        files.push(FirmwareFile {
            path: "iwlwifi-so-a0-gf-a0-89.ucode.link".into(),
            size: 0,
            link: Some("iwlwifi-so-a0-gf-a0-86.ucode".into()),
        });
        let plan = plan(&modules, &files);
        let kept: Vec<(&str, Option<&str>)> = plan
            .kept
            .iter()
            .map(|(p, o)| (p.as_str(), o.map(|f| f.name())))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("ath11k/WCN6855/hw2.0/amss.bin", Some("atheros")),
                ("ath11k/WCN6855/hw2.0/board-2.bin", Some("atheros")),
                ("ath12k/WCN7850/hw2.0/amss.bin", Some("atheros")),
                ("iwlwifi-cc-a0-74.ucode", Some("intel")),
                ("iwlwifi-gl-c0-fm-c0-92.ucode", Some("intel")),
                ("iwlwifi-gl-c0-fm-c0.pnvm", Some("intel")),
                ("iwlwifi-so-a0-gf-a0-89.ucode", Some("intel")),
                ("iwlwifi-so-a0-gf-a0.pnvm", Some("intel")),
                ("rtl_nic/rtl8168h-2.fw", None),
                ("rtw89/rtw8852c_fw-1.bin", Some("realtek")),
                ("rtw89/rtw8852c_fw.bin", Some("realtek")),
            ]
        );
        assert_eq!(
            plan.removed,
            vec![
                "iwlwifi-cc-a0-72.ucode",
                "iwlwifi-cc-a0-79.ucode",
                "iwlwifi-so-a0-gf-a0-86.ucode",
                "iwlwifi-ty-a0-gf-a0-89.ucode",
                "iwlwifi-gl-c0-fm-c0-94.ucode",
                "rtw89/rtw8852b_fw-1.bin",
                "ath11k/QCN9074/hw1.0/amss.bin",
                "rtl_bt/rtl8852cu_fw.bin",
                "ibt-0040-0041.sfi",
                "iwlwifi-so-a0-gf-a0-89.ucode.link",
            ]
        );
    }

    #[test]
    fn a_kept_symlink_keeps_its_target_and_undeclared_folders_need_their_driver() {
        let modules = [module(
            "@W/intel/iwlwifi/iwlwifi.ko.xz",
            &["iwlwifi-x-5.ucode"],
        )];
        let files = vec![
            FirmwareFile {
                path: "iwlwifi-x-5.ucode".into(),
                size: 0,
                link: Some("intel/iwlwifi-x-5.ucode".into()),
            },
            file("intel/iwlwifi-x-5.ucode"),
            file("ath12k/WCN7850/hw2.0/amss.bin"),
        ];
        let plan = plan(&modules, &files);
        assert_eq!(
            plan.kept.keys().collect::<Vec<_>>(),
            ["intel/iwlwifi-x-5.ucode", "iwlwifi-x-5.ucode"]
        );
        assert_eq!(plan.removed, ["ath12k/WCN7850/hw2.0/amss.bin"]);
    }
}
