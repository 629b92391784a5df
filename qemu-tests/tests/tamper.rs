//! Tampered sticks under OVMF with Secure Boot enforcing: each one must end without
//! a session, with the reason on the console, and (past the firmware) power off.
//! `boot.rs` boots the untampered demo image in the same run, so every failure
//! here is known to be the tamper's.

use std::time::{Duration, Instant};

use image_builder::boot::shim::{FIRST_START_HEADLINE, SHIM_ESP_PATH, UKI_BEHIND_SHIM_ESP_PATH};
use image_builder::disk::gpt::ROOT_X86_64_VERITY_TYPE;
use qemu_tests::machine::qemu::{Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::{find_forbidden, parse_event, parse_status, KioskStatus};
use qemu_tests::machine::tamper::{resigned_uki, unsigned_uki, ForeignDbKey, TamperedStick};
use stick_manifest::{MANIFEST_FILE, SIGNATURE_FILE};

/// The line the fail-closed unit prints when dm-verity reports a corrupted block.
const INTEGRITY_FAILURE: &str = "@stick@ fail-closed reason=integrity";
/// What OVMF prints when Secure Boot rejects the stick's UKI.
const FIRMWARE_REFUSAL: &str = "Access Denied";
/// What the stick's GRUB script shows when shim refuses the UKI GRUB chainloads.
const SHIM_REFUSAL: &str = FIRST_START_HEADLINE;
/// The demo boots through shim and GRUB: the UKI's path behind them.
const UKI: &str = UKI_BEHIND_SHIM_ESP_PATH;
/// OVMF has tried every boot option and stops.
const FIRMWARE_GAVE_UP: &str = "No bootable option or device was found";
/// From a start to a refusal under TCG takes well under a minute; this bounds a hang.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(300);
/// A text refusal shows for 10 s, the stick's refusal screen (images with a
/// `[conference]`, such as the demo) for 60 s; then the machine must be off.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(90);
/// From the refusal to the compositor showing the refusal screen (labwc's start
/// under TCG).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

fn demo() -> qemu_tests::BuiltImage {
    qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds")
}

fn start(name: &str, stick: &TamperedStick) -> Machine {
    let config = MachineConfig::new(name)
        .stick(&stick.path)
        .secure_boot(SecureBootKeys::test_keys());
    Machine::start(&config).expect("QEMU starts")
}

/// Nothing that means a session or a way in appears on the console.
fn assert_no_session(vm: &Machine, console: &str) {
    let started: Vec<KioskStatus> = console
        .lines()
        .filter_map(parse_status)
        .filter(|s| s.ok)
        .collect();
    assert!(
        started.is_empty(),
        "a kiosk reported ok: {started:?}\n{}",
        vm.diagnostics()
    );
    if let Some((pattern, at)) = find_forbidden(console) {
        panic!(
            "forbidden console output {pattern:?} in line {at:?}\n{}",
            vm.diagnostics()
        );
    }
}

/// No kernel started, and nothing that means a session or a way in appeared.
fn assert_no_kernel(name: &str, vm: &Machine, console: &str) {
    for kernel_sign in ["EFI stub", "Linux version"] {
        assert!(
            !console.contains(kernel_sign),
            "{name}: the kernel started ({kernel_sign:?})\n{}",
            vm.diagnostics()
        );
    }
    assert_no_session(vm, console);
}

/// The firmware must refuse to run the stick's UKI: no kernel ever starts.
fn expect_firmware_refusal(name: &str, stick: &TamperedStick) {
    let mut vm = start(name, stick);
    let refusal = vm
        .wait_for_line(REFUSAL_TIMEOUT, |l| {
            l.contains("failed to load Boot") && l.contains(FIRMWARE_REFUSAL)
        })
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let refused_after = vm.elapsed();
    vm.wait_for_line(Duration::from_secs(120), |l| l.contains(FIRMWARE_GAVE_UP))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    assert!(
        refusal.contains("USB"),
        "the refused boot option is the USB stick: {refusal}"
    );
    assert_no_kernel(name, &vm, &console);
    eprintln!(
        "tamper {name}: refused by the firmware ({refusal:?}) {:.1} s after QEMU started",
        refused_after.as_secs_f64()
    );
}

/// Shim (accepted by the firmware) must refuse to run the stick's UKI: no kernel
/// ever starts. The stick's guide then shows; nobody presses a key.
fn expect_shim_refusal(name: &str, stick: &TamperedStick) {
    let vm = start(name, stick);
    let refused =
        qemu_tests::machine::qemu::wait_until(REFUSAL_TIMEOUT, Duration::from_secs(1), || {
            vm.console().contains(SHIM_REFUSAL).then(|| vm.elapsed())
        })
        .unwrap_or_else(|| panic!("{name}: shim did not refuse\n{}", vm.diagnostics()));
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    assert_no_kernel(name, &vm, &console);
    eprintln!(
        "tamper {name}: refused by shim ({SHIM_REFUSAL:?}) {:.1} s after QEMU started",
        refused.as_secs_f64()
    );
}

/// dm-verity must catch the change; the fail-closed unit says so and powers off.
fn expect_integrity_refusal(name: &str, stick: &TamperedStick) {
    let mut vm = start(name, stick);
    vm.wait_for_line(REFUSAL_TIMEOUT, |l| l.contains(INTEGRITY_FAILURE))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let refused_after = vm.elapsed();
    let seen = Instant::now();
    let exit = vm.wait_for_exit(POWEROFF_TIMEOUT);
    let off_after = seen.elapsed();
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    exit.unwrap_or_else(|e| panic!("{name}: the machine must power off by itself: {e:#}"));
    assert!(
        console.contains("device-mapper: verity") && console.contains("is corrupted"),
        "{name}: the kernel names the corrupted block\n{}",
        vm.diagnostics()
    );
    assert!(
        console.contains("REFUSED: a block of the signed system does not match"),
        "{name}\n{}",
        vm.diagnostics()
    );
    assert_no_session(&vm, &console);
    eprintln!(
        "tamper {name}: refused by dm-verity {:.1} s after QEMU started, off {:.1} s later",
        refused_after.as_secs_f64(),
        off_after.as_secs_f64()
    );
}

/// What a hostile PC adds through SMBIOS type 11, which systemd-stub appends to
/// the signed command line even with Secure Boot on.
const SMBIOS_EXTRA: &str = "rd.systemd.unit=emergency.target";
/// A credential through SMBIOS, which systemd would import and turn into a unit
/// of the initrd (`systemd.extra-unit.*`).
const SMBIOS_CREDENTIAL: &str = "io.systemd.credential:systemd.extra-unit.evil.service";
/// The init gate's line (`kiosk::boot::init_gate`).
const CMDLINE_REFUSAL: &str = "@stick@ fail-closed reason=cmdline";

/// The untampered stick on a PC whose SMBIOS extends the command line and hands
/// systemd a credential: the initrd's first program names both and refuses
/// before systemd starts, then powers off.
#[test]
fn kernel_cmdline_extended_through_smbios() {
    let name = "cmdline-smbios-extra";
    let built = demo();
    let mut config = MachineConfig::new(name)
        .stick(&built.image)
        .secure_boot(SecureBootKeys::test_keys());
    config.extra_args.extend([
        "-smbios".to_string(),
        format!(
            "type=11,value=io.systemd.stub.kernel-cmdline-extra={SMBIOS_EXTRA},\
             value={SMBIOS_CREDENTIAL}=[Service]"
        ),
    ]);
    let mut vm = Machine::start(&config).expect("QEMU starts");
    vm.wait_for_line(REFUSAL_TIMEOUT, |l| l.contains(CMDLINE_REFUSAL))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let refused_after = vm.elapsed();
    let seen = Instant::now();
    // What the person sees during the 10 s before power-off (kept for people).
    let shot = qemu_tests::artifacts_dir().join(format!("{name}.png"));
    vm.screenshot(&shot)
        .unwrap_or_else(|e| panic!("{name}: screendump: {e:#}"));
    let exit = vm.wait_for_exit(POWEROFF_TIMEOUT);
    let off_after = seen.elapsed();
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    exit.unwrap_or_else(|e| panic!("{name}: the machine must power off by itself: {e:#}"));
    // The stub did append it, after the signed line's closing `--`.
    let kernel_line = console
        .lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap_or_else(|| panic!("{name}: no kernel command line\n{}", vm.diagnostics()));
    assert!(
        kernel_line.contains(&format!(" -- {SMBIOS_EXTRA}")),
        "{name}: the SMBIOS words follow `--`: {kernel_line}"
    );
    for reason in [
        format!("REFUSED: the kernel command line differs from the signed one: added `{SMBIOS_EXTRA}`."),
        format!("REFUSED: the PC's firmware passes settings to systemd (SMBIOS OEM strings io.systemd.stub.kernel-cmdline-extra, {SMBIOS_CREDENTIAL})."),
    ] {
        assert!(console.contains(&reason), "{name}: {reason:?}\n{}", vm.diagnostics());
    }
    // Refused before systemd ran in the initrd: it logs as `systemd[1]`.
    for later in ["systemd[1]", "Reached target", "Switching root"] {
        assert!(
            !console.contains(later),
            "{name}: {later:?} on the console\n{}",
            vm.diagnostics()
        );
    }
    assert_no_session(&vm, &console);
    eprintln!(
        "tamper {name}: refused by the init gate {:.1} s after QEMU started, off {:.1} s later",
        refused_after.as_secs_f64(),
        off_after.as_secs_f64()
    );
}

/// The kiosk must refuse with a reason containing `reason`, show the stick's
/// refusal screen `screen` (its helpdesk code; `None`: an image without a
/// `[conference]` has no compositor and shows text), then power off.
fn expect_kiosk_refusal(
    name: &str,
    stick: &TamperedStick,
    reason: &str,
    screen: Option<&str>,
) -> KioskStatus {
    let mut vm = start(name, stick);
    let line = vm
        .wait_for_line(REFUSAL_TIMEOUT, |l| parse_status(l).is_some())
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let refused_after = vm.elapsed();
    let status = parse_status(&line).expect("status parses");
    // An image with a `[conference]` shows the stick's refusal screen.
    let timeout = if screen.is_some() {
        SCREEN_TIMEOUT
    } else {
        Duration::ZERO
    };
    let shown = vm
        .wait_for_line(timeout, |l| {
            parse_event(l, "screen").is_some_and(|e| e["state"] == "shown")
        })
        .ok()
        .and_then(|l| parse_event(&l, "screen"));
    let shot = qemu_tests::artifacts_dir().join(format!("screen-{name}.png"));
    let _ = std::fs::create_dir_all(qemu_tests::artifacts_dir());
    let _ = vm.screenshot(&shot);
    let exit = vm.wait_for_exit(POWEROFF_TIMEOUT);
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    let context = || format!("{name}: status line: {line}\n{}", vm.diagnostics());
    assert!(!status.ok, "{}", context());
    assert!(
        status.refusals.iter().any(|r| r.contains(reason)),
        "refusal naming {reason:?} expected: {}",
        context()
    );
    assert!(
        console.contains(&format!("REFUSED: {}", status.refusals[0])),
        "{}",
        context()
    );
    let code = shown.as_ref().and_then(|e| e["code"].as_str());
    assert_eq!(
        code,
        screen,
        "{name}: the refusal screen ({shown:?}, {})\n{}",
        shot.display(),
        context()
    );
    let code = code.unwrap_or("text");
    exit.unwrap_or_else(|e| panic!("{name}: the machine must power off by itself: {e:#}"));
    assert_no_session(&vm, &console);
    eprintln!(
        "tamper {name}: refused by the kiosk ({:?}) {:.1} s after QEMU started; screen {code} ({})",
        status.refusals,
        refused_after.as_secs_f64(),
        shot.display()
    );
    status
}

#[test]
fn byte_flipped_in_a_root_file_read_at_boot() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    // The kiosk binary (`/usr/bin/kiosk` links to it): executed on every boot,
    // its first block holds the ELF header.
    let kiosk = format!("/{}", image_builder::root::customize::KIOSK_BINARY_PATH);
    let offset = stick
        .root_file_data_offset(&kiosk)
        .expect("kiosk's data in the squashfs");
    stick.xor_byte(offset + 100, 0x01).expect("flip");
    expect_integrity_refusal("tamper-root-file", &stick);
}

#[test]
fn byte_flipped_in_the_verity_partition() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    // After the 4 KiB verity superblock comes the top level of the hash tree,
    // which every read of the root goes through.
    let verity = stick
        .partition(ROOT_X86_64_VERITY_TYPE)
        .expect("verity partition")
        .offset();
    stick.xor_byte(verity + 4096 + 10, 0x01).expect("flip");
    expect_integrity_refusal("tamper-verity", &stick);
}

#[test]
fn shim_changed() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let mut shim = stick.read_esp_file(SHIM_ESP_PATH).expect("shim on the ESP");
    // A byte in the middle of shim's code: neither Microsoft's signature nor
    // ours matches any more.
    let middle = shim.len() / 2;
    shim[middle] ^= 0x01;
    stick
        .write_esp_file(SHIM_ESP_PATH, &shim)
        .expect("write shim");
    expect_firmware_refusal("tamper-shim-changed", &stick);
}

#[test]
fn uki_changed_after_signing() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let mut uki = stick.read_esp_file(UKI).expect("UKI on the ESP");
    // What an attacker wants: the initrd shell back (`rd.shell=0` -> `rd.shell=1`).
    let at = uki
        .windows(b"rd.shell=0".len())
        .position(|w| w == b"rd.shell=0")
        .expect("the UKI's cmdline says rd.shell=0");
    uki[at + 9] = b'1';
    stick.write_esp_file(UKI, &uki).expect("write UKI");
    expect_shim_refusal("tamper-uki-changed", &stick);
}

#[test]
fn uki_signed_with_another_db_key() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let uki = stick.read_esp_file(UKI).expect("UKI on the ESP");
    let foreign = ForeignDbKey::generate().expect("openssl makes a key");
    let resigned = resigned_uki(&uki, &foreign, stick.scratch()).expect("sbsign");
    assert_ne!(resigned, uki);
    stick.write_esp_file(UKI, &resigned).expect("write UKI");
    expect_shim_refusal("tamper-uki-foreign-key", &stick);
}

#[test]
fn uki_without_signature() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let uki = stick.read_esp_file(UKI).expect("UKI on the ESP");
    let unsigned = unsigned_uki(&uki, stick.scratch()).expect("sbattach --remove");
    assert!(unsigned.len() < uki.len(), "the signature was removed");
    stick.write_esp_file(UKI, &unsigned).expect("write UKI");
    expect_shim_refusal("tamper-uki-unsigned", &stick);
}

/// The manifest as an attacker would want it: the rollback index raised so an old
/// image passes a newer minimum.
fn raised_rollback_index(manifest: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(manifest.to_vec()).expect("manifest is UTF-8");
    let changed = text.replacen("\"rollback-index\": 1,", "\"rollback-index\": 9,", 1);
    assert_ne!(changed, text, "the demo manifest states rollback-index 1");
    changed.into_bytes()
}

#[test]
fn manifest_changed() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let manifest = stick
        .read_esp_file(MANIFEST_FILE)
        .expect("manifest on the ESP");
    stick
        .write_esp_file(MANIFEST_FILE, &raised_rollback_index(&manifest))
        .expect("write manifest");
    let status = expect_kiosk_refusal(
        "tamper-manifest-changed",
        &stick,
        "manifest signature",
        Some("SBS-BOOT-01"),
    );
    assert_eq!(status.signature, "invalid");
}

#[test]
fn manifest_signature_replaced() {
    let stick = TamperedStick::copy_of(&demo().image).expect("copy");
    let manifest = raised_rollback_index(&stick.read_esp_file(MANIFEST_FILE).expect("manifest"));
    // Signed, but by a key the image does not carry.
    let attacker = stick_manifest::ManifestSigningKey::from_bytes(&[0x5a; 32]);
    stick
        .write_esp_file(MANIFEST_FILE, &manifest)
        .expect("write manifest");
    stick
        .write_esp_file(
            SIGNATURE_FILE,
            stick_manifest::signature_file(&manifest, &attacker).as_bytes(),
        )
        .expect("write signature");
    let status = expect_kiosk_refusal(
        "tamper-manifest-resigned",
        &stick,
        "manifest signature",
        Some("SBS-BOOT-01"),
    );
    assert_eq!(status.signature, "invalid");
}

#[test]
fn image_below_the_minimum_rollback_index() {
    let built = qemu_tests::built_image("qemu-tests/configs/rollback.toml", "rollback")
        .expect("rollback test image builds");
    assert_eq!(built.manifest["rollback-index"], 1);
    // Not tampered with at all: a properly signed, older image.
    let stick = TamperedStick::copy_of(&built.image).expect("copy");
    let status = expect_kiosk_refusal("old-rollback-index", &stick, "rollback index", None);
    assert_eq!(status.signature, "valid");
    assert_eq!(status.secure_boot, "enabled");
}
