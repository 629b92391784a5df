//! Two builds of the same inputs with SOURCE_DATE_EPOCH give byte-identical root
//! and root-verity partitions and equal manifests except for the digests of what
//! the db key signs: the UKI and (the demo boots through it) shim.
//!
//! What sbsign signs is not reproducible: its Authenticode signature carries a
//! signing time (measured: 438 differing bytes, all in the ESP, at the UKI's PE
//! checksum, its signature and the manifest's UKI digest). Without a Secure Boot key
//! the whole image is byte-identical. Debian's GRUB and MokManager, the
//! certificate to enrol and GRUB's script must be equal.
//! Both builds pack the root as the other scenarios do (`zstd:3`): the shipped
//! xz takes minutes per build on two cores, twice over, which CI's time cannot
//! hold. Whether xz packs the same root to the same bytes is what `bench` checks
//! (it builds the shipped default twice).
//! (Own test binary: it sets SOURCE_DATE_EPOCH for the builder it runs.)

use qemu_tests::BuiltImage;

fn partition_bytes(built: &BuiltImage, role: &str) -> Vec<u8> {
    let part = built.manifest["partitions"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["role"] == role))
        .unwrap_or_else(|| panic!("manifest lists the {role} partition"));
    let offset = part["offset"].as_u64().expect("offset") as usize;
    let size = part["size"].as_u64().expect("size") as usize;
    let image = std::fs::read(&built.image).expect("read image");
    image[offset..offset + size].to_vec()
}

#[test]
fn same_inputs_give_identical_root_and_manifest() {
    std::env::set_var("SOURCE_DATE_EPOCH", "1700000000");
    qemu_tests::ensure_release_binaries().expect("binaries build");
    let root = qemu_tests::workspace_root();
    let overlays = root.join("overlays");
    let config = root.join("examples/demo.toml");
    let mut builds = Vec::new();
    for name in ["repro-a", "repro-b"] {
        let out = root.join("target/qemu-tests").join(name);
        let built = qemu_tests::run_builder(
            &config,
            &out,
            &[
                std::ffi::OsStr::new("--overlays"),
                overlays.as_os_str(),
                std::ffi::OsStr::new("--compression"),
                std::ffi::OsStr::new(qemu_tests::TEST_COMPRESSION),
            ],
        )
        .expect("image builds");
        assert_eq!(
            built.manifest["build-time"], 1_700_000_000,
            "SOURCE_DATE_EPOCH reaches the manifest"
        );
        builds.push(built);
    }
    for role in ["root", "root-verity"] {
        assert!(
            partition_bytes(&builds[0], role) == partition_bytes(&builds[1], role),
            "{role} partitions must be byte-identical"
        );
    }
    let signed_by_us = [
        image_builder::boot::shim::SHIM_ESP_PATH,
        image_builder::boot::shim::UKI_BEHIND_SHIM_ESP_PATH,
    ];
    let without_signed_digests = |built: &BuiltImage| {
        let mut manifest = built.manifest.clone();
        let files = manifest["esp-files"].as_array_mut().expect("esp-files");
        let mut nulled = 0;
        for file in files.iter_mut() {
            if signed_by_us.iter().any(|path| file["path"] == *path) {
                file["sha256"] = serde_json::Value::Null;
                nulled += 1;
            }
        }
        assert_eq!(nulled, signed_by_us.len(), "{files:?}");
        manifest
    };
    assert_eq!(
        without_signed_digests(&builds[0]),
        without_signed_digests(&builds[1])
    );
}
