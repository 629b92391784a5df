//! One class of kernel modules the image leaves out: its folder (or one module)
//! and why. The tables are `module_classes` (by bus) and `unused_stacks` (by
//! purpose); `module_classes` plans and prunes them.

/// A folder of modules, or one module (relative to the kernel's module
/// folder), left out, and why the stick never needs what is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardwareClass {
    pub folder: &'static str,
    pub why: &'static str,
}
