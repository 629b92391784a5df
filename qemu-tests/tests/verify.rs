//! `image-builder verify` on the real demo image: untouched it passes; each offline
//! tamper is found and named. No boot needed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use image_builder::commands::verify::{verify_image, VerifyError};
use image_builder::disk::gpt::{GptTable, ESP_TYPE, ROOT_X86_64_TYPE, ROOT_X86_64_VERITY_TYPE};

fn flip_byte(image: &Path, offset: u64) {
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(image)
        .expect("open copy");
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x01;
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.write_all(&byte).expect("write");
}

/// Offset of the first occurrence of `needle` inside the ESP partition.
fn find_in_esp(image: &Path, table: &GptTable, needle: &[u8]) -> u64 {
    let esp = table.find(ESP_TYPE).expect("ESP");
    let bytes = std::fs::read(image).expect("read image");
    let region = &bytes[esp.offset() as usize..(esp.offset() + esp.size()) as usize];
    let at = region
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle on the ESP");
    esp.offset() + at as u64
}

#[test]
fn verify_accepts_the_image_and_names_each_tamper() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let pem = std::fs::read_to_string(
        qemu_tests::workspace_root().join("keys/test-manifest-signing.pub"),
    )
    .expect("test public key");
    let key = stick_manifest::verifying_key_from_pem(&pem).expect("key parses");
    let verified = verify_image(&built.image, &key).expect("untouched image verifies");
    assert_eq!(verified.partitions_checked, 2);
    // The demo boots through shim (`[signing] shim = true`): shim, GRUB and its
    // script, the UKI, MokManager and the certificate to enrol.
    assert_eq!(verified.esp_files_checked, 6);
    let shim = verified
        .manifest
        .shim
        .as_ref()
        .expect("the manifest records shim");
    let shim_signers = shim.shim_signers.join(" | ");
    assert!(
        shim_signers.contains("Microsoft") && shim_signers.contains("TEST ONLY"),
        "shim carries Microsoft's signature and ours: {shim_signers}"
    );
    assert!(!shim.mok_manager_signers.is_empty(), "{shim:?}");
    assert!(!shim.grub_signers.is_empty(), "{shim:?}");
    assert!(shim.shim_vendor_certificate.contains("Debian"), "{shim:?}");

    let table =
        GptTable::read_from(&mut std::fs::File::open(&built.image).expect("open")).expect("GPT");
    let root = table.find(ROOT_X86_64_TYPE).expect("root").offset();
    let verity = table
        .find(ROOT_X86_64_VERITY_TYPE)
        .expect("verity")
        .offset();
    let uki_cmdline = find_in_esp(&built.image, &table, b"roothash=");
    let shim = find_in_esp(
        &built.image,
        &table,
        &middle_of(&built.image, "EFI/BOOT/BOOTX64.EFI"),
    );
    let grub_script = find_in_esp(&built.image, &table, b"chainloader /EFI/BOOT/stick.efi");
    let mok_manager = find_in_esp(
        &built.image,
        &table,
        &middle_of(&built.image, "EFI/BOOT/mmx64.efi"),
    );
    let manifest_text = find_in_esp(&built.image, &table, b"\"rollback-index\"");
    let other_key = unrelated_key();

    // (name, offset to flip or None, key, expected error variant)
    let cases: Vec<(
        &str,
        Option<u64>,
        &stick_manifest::ManifestVerifyingKey,
        &str,
    )> = vec![
        (
            "byte in the squashfs superblock",
            Some(root),
            &key,
            "PartitionHash",
        ),
        (
            "byte deep in the root data",
            Some(root + 50 * 1024 * 1024),
            &key,
            "PartitionHash",
        ),
        (
            "byte in the verity superblock",
            Some(verity + 100),
            &key,
            "PartitionHash",
        ),
        (
            "byte in the UKI's cmdline",
            Some(uki_cmdline + 9),
            &key,
            "EspFileHash",
        ),
        ("byte in shim", Some(shim), &key, "EspFileHash"),
        ("byte in MokManager", Some(mok_manager), &key, "EspFileHash"),
        (
            "byte in GRUB's script",
            Some(grub_script + 12),
            &key,
            "EspFileHash",
        ),
        (
            "byte in the manifest",
            Some(manifest_text + 2),
            &key,
            "Signature",
        ),
        ("another signing key", None, &other_key, "Signature"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, offset, key, want) in cases {
        let copy = dir.path().join("tampered.raw");
        std::fs::copy(&built.image, &copy).expect("copy image");
        if let Some(offset) = offset {
            flip_byte(&copy, offset);
        }
        let err: VerifyError = verify_image(&copy, key).expect_err(name);
        let got = format!("{err:?}");
        assert!(got.starts_with(want), "{name}: expected {want}, got {err}");
        eprintln!("{name}: {err}");
    }
}

/// 256 bytes from the middle of an ESP file: found once on the ESP.
fn middle_of(image: &Path, path: &str) -> Vec<u8> {
    let files = image_builder::commands::verify::read_esp(image)
        .expect("reads the ESP")
        .files;
    let file = files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} on the ESP"));
    let mid = file.contents.len() / 2;
    file.contents[mid..mid + 256].to_vec()
}

fn unrelated_key() -> stick_manifest::ManifestVerifyingKey {
    // A fixed, valid key that is not the test key.
    stick_manifest::verifying_key_from_pem(
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
    )
    .expect("fixed key parses")
}
