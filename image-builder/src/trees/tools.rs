//! The tools tree: a Debian chroot with the build's tools, so the host needs little
//! beyond mmdebstrap (as mkosi does). Tools run in a private mount namespace with
//! the build folder bound at `/work`; the mounts vanish with the namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::trees::cache::{TreeCache, TreeError, TreeRecipe};

/// Where the build folder appears inside the tools tree.
pub const WORK_MOUNT: &str = "/work";

/// Packages of the tools tree: what the pipeline runs.
pub const TOOLS_PACKAGES: &[&str] = &[
    "systemd-ukify",
    "systemd-boot-efi",
    "python3-pefile",
    "squashfs-tools",
    "cryptsetup-bin",
    "sbsigntool",
    "dosfstools",
    "mtools",
    // The kiosk's part of the initrd, packed (`boot/uki.rs`).
    "zstd",
    // Debian's Microsoft-signed shim, MokManager and Debian-signed GRUB
    // (`[signing] shim`).
    "shim-signed",
    "shim-helpers-amd64-signed",
    "grub-efi-amd64-signed",
];

/// The systemd EFI stub inside the tools tree.
pub const EFI_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// A finished tools tree.
#[derive(Debug, Clone)]
pub struct ToolsTree {
    root: PathBuf,
}

impl ToolsTree {
    /// The tools tree for `suite` from `sources`, built once and then cached.
    pub fn ensure(
        cache: &TreeCache,
        suite: &str,
        sources: &[String],
    ) -> Result<ToolsTree, TreeError> {
        let recipe = TreeRecipe {
            kind: "tools",
            suite: suite.to_string(),
            sources: sources.to_vec(),
            packages: TOOLS_PACKAGES.iter().map(|p| p.to_string()).collect(),
            customize_hooks: vec![],
        };
        let dir = cache.ensure(&recipe, |_| Ok(()))?;
        Ok(ToolsTree {
            root: dir.join("root"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A command that runs `program` inside the tools tree with `work` at `/work`.
    /// Paths given to the program must be `/work/...` paths.
    pub fn command(&self, work: &Path, program: &str) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(concat!(
                "set -e; tree=$1; work=$2; shift 2; ",
                "mount --rbind /dev \"$tree/dev\"; ",
                "mount -t proc proc \"$tree/proc\"; ",
                "mkdir -p \"$tree/work\"; mount --bind \"$work\" \"$tree/work\"; ",
                "exec chroot \"$tree\" \"$@\""
            ))
            .arg("in-tools-tree")
            .arg(&self.root)
            .arg(work)
            .arg(program);
        cmd
    }
}

/// Runs build tools either inside the tools tree or from the host (unit tests).
pub trait Tools {
    /// A command for `program`.
    fn command(&self, program: &str) -> Command;
    /// How `path` (inside the build folder) is named to the program.
    fn path(&self, path: &Path) -> String;
}

/// The tools tree, with a build folder bound at `/work`.
#[derive(Debug, Clone)]
pub struct InToolsTree<'a> {
    pub tree: &'a ToolsTree,
    pub work: &'a Path,
}

impl Tools for InToolsTree<'_> {
    fn command(&self, program: &str) -> Command {
        self.tree.command(self.work, program)
    }
    fn path(&self, path: &Path) -> String {
        in_work(self.work, path)
    }
}

/// The host's own tools.
#[derive(Debug, Clone, Copy)]
pub struct HostTools;

impl Tools for HostTools {
    fn command(&self, program: &str) -> Command {
        Command::new(program)
    }
    fn path(&self, path: &Path) -> String {
        path.display().to_string()
    }
}

/// The `/work/...` path of `path`, which must lie inside the build folder `work`.
pub fn in_work(work: &Path, path: &Path) -> String {
    let relative = path
        .strip_prefix(work)
        .expect("tool paths lie inside the build folder");
    format!("{WORK_MOUNT}/{}", relative.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_into_the_work_mount() {
        let cases = [
            ("/var/tmp/b", "/var/tmp/b/rootfs", "/work/rootfs"),
            ("/var/tmp/b", "/var/tmp/b/out/uki.efi", "/work/out/uki.efi"),
        ];
        for (work, path, want) in cases {
            assert_eq!(in_work(Path::new(work), Path::new(path)), want);
        }
    }

    #[test]
    fn command_binds_work_and_chroots() {
        let tree = ToolsTree {
            root: PathBuf::from("/cache/tools/root"),
        };
        let cmd = tree.command(Path::new("/b"), "mksquashfs");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "unshare");
        assert_eq!(
            &args[args.len() - 4..],
            ["in-tools-tree", "/cache/tools/root", "/b", "mksquashfs"]
        );
    }
}
