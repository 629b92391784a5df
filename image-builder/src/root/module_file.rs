//! Kernel module files by name, packed or not. Debian ships each module as
//! `.ko.xz`; the base tree stores them unpacked (`.ko`, see `trees/base.rs`),
//! since the root's own xz packs them into less than each file packed alone.
//! Lists of modules name the `.ko` and hold for either form.

/// What may follow `.ko` in a module's file name.
pub const PACKED_SUFFIXES: &[&str] = &["", ".xz", ".zst", ".gz"];

/// Whether `path` is the module file `module` (a path ending in `.ko`),
/// unpacked or packed.
pub fn is_module_file(path: &str, module: &str) -> bool {
    module.ends_with(".ko")
        && path
            .strip_prefix(module)
            .is_some_and(|rest| PACKED_SUFFIXES.contains(&rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_found_packed_or_not() {
        let module = "kernel/drivers/firmware/efi/efi-pstore.ko";
        let cases = [
            ("kernel/drivers/firmware/efi/efi-pstore.ko", true),
            ("kernel/drivers/firmware/efi/efi-pstore.ko.xz", true),
            ("kernel/drivers/firmware/efi/efi-pstore.ko.zst", true),
            ("kernel/drivers/firmware/efi/efi-pstore.ko.bak", false),
            ("kernel/drivers/firmware/efi/efi-pstore.kox", false),
            ("kernel/drivers/firmware/efi/efi-pstore2.ko", false),
            ("kernel/drivers/firmware/efi", false),
        ];
        for (path, want) in cases {
            assert_eq!(is_module_file(path, module), want, "{path}");
        }
        // A folder is not a module file.
        assert!(!is_module_file("kernel/net/sctp", "kernel/net/sctp"));
    }
}
