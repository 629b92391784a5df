//! Two builds of the same inputs with SOURCE_DATE_EPOCH give byte-identical images.
//! (Own test binary: it sets SOURCE_DATE_EPOCH for the builder it runs.)

#[test]
fn same_inputs_give_identical_images() {
    std::env::set_var("SOURCE_DATE_EPOCH", "1700000000");
    qemu_tests::ensure_release_binaries().expect("binaries build");
    let root = qemu_tests::workspace_root();
    let overlays = root.join("overlays");
    let config = root.join("examples/demo.toml");
    let mut digests = Vec::new();
    for name in ["repro-a", "repro-b"] {
        let out = root.join("target/qemu-tests").join(name);
        let built = qemu_tests::run_builder(
            &config,
            &out,
            &[std::ffi::OsStr::new("--overlays"), overlays.as_os_str()],
        )
        .expect("image builds");
        assert_eq!(
            built.manifest["build-time"], 1_700_000_000,
            "SOURCE_DATE_EPOCH reaches the manifest"
        );
        digests.push((
            std::fs::read(&built.image).expect("read image"),
            std::fs::read(&built.manifest_path).expect("read manifest"),
        ));
    }
    assert!(
        digests[0].0 == digests[1].0,
        "images must be byte-identical"
    );
    assert_eq!(
        digests[0].1, digests[1].1,
        "manifests must be byte-identical"
    );
}
