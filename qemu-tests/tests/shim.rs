//! A PC that trusts only Microsoft's keys (OVMF with Debian's Microsoft variable
//! store, Secure Boot on) and the demo image, which boots through Debian's shim.
//!
//! The first boot stops at the stick's guide (GRUB, started by shim, shows it in
//! German and English when shim does not trust the UKI: the PC does not know our
//! key yet); MokManager enrols our certificate from the stick's ESP, with the
//! keys a person would press, sent over QMP and each screen awaited on the
//! serial console (the firmware mirrors its text screens there). The next boot
//! reaches the verified status line with the trust path `shim-mok`. With our
//! key enrolled, shim still refuses a UKI changed after signing and a UKI signed
//! by another key.

use std::path::Path;
use std::time::Duration;

use image_builder::boot::shim::{
    FIRST_START_CODE, FIRST_START_HEADLINE, MOK_CERTIFICATE_ESP_PATH, UKI_BEHIND_SHIM_ESP_PATH,
};
use qemu_tests::machine::qemu::{wait_until, Firmware, Machine, MachineConfig};
use qemu_tests::machine::serial::parse_status;
use qemu_tests::machine::tamper::{resigned_uki, ForeignDbKey, TamperedStick};

/// OVMF's Secure Boot build under TCG reaches shim and GRUB in about 30 s.
const SHIM_TIMEOUT: Duration = Duration::from_secs(300);
/// A MokManager screen follows a key press within seconds.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Boot to the kiosk's status line (about 3 min under TCG).
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// What the stick's GRUB script shows when shim does not trust the UKI.
const REFUSED: &[u8] = FIRST_START_HEADLINE.as_bytes();
const SECOND_STAGE: &str = UKI_BEHIND_SHIM_ESP_PATH;
const MOK_CERTIFICATE: &str = MOK_CERTIFICATE_ESP_PATH;

#[test]
fn shim_enrols_our_key_once_then_boots_verified_and_refuses_changed_ukis() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let dir = tempfile::tempdir().expect("tempdir");
    let firmware = Firmware::locate().expect("OVMF");
    let vars = dir.path().join("OVMF_VARS.ms.fd");
    std::fs::copy(&firmware.microsoft_vars, &vars).expect("copy Microsoft's variable store");

    enrol_through_mok_manager(&built.image, &vars);
    let enrolled = std::fs::read(&vars).expect("read vars");

    // The second boot: shim finds our key in its MOK list.
    let mut vm = Machine::start(&machine("shim-mok-boot", &built.image, &vars)).expect("QEMU");
    let line = vm
        .wait_for_line(BOOT_TIMEOUT, |l| parse_status(l).is_some())
        .unwrap_or_else(|e| panic!("no status after the enrolment: {e:#}"));
    let status = parse_status(&line).expect("status");
    eprintln!(
        "shim: enrolled boot -> status in {:.1} s",
        vm.elapsed().as_secs_f64()
    );
    vm.keep_console("shim_mok_boot").expect("keeps log");
    assert!(status.ok, "{line}\n{}", vm.diagnostics());
    assert_eq!(status.secure_boot, "enabled", "{line}");
    let trust = status.boot_trust.as_ref().expect("boot_trust");
    assert_eq!(trust.path, "shim-mok", "{line}");
    assert!(
        trust.shim && trust.shim_verifies && trust.shim_vendor_key,
        "{line}"
    );
    assert_eq!(trust.other_moks, 0, "only our key was enrolled: {line}");
    assert!(trust.db_entries >= 1, "Microsoft's CAs are in db: {line}");
    drop(vm);

    // Changed after signing: one byte of the UKI's command line.
    let changed = TamperedStick::copy_of(&built.image).expect("copy");
    let mut uki = changed.read_esp_file(SECOND_STAGE).expect("UKI on the ESP");
    let at = find(&uki, b"roothash=").expect("the UKI has its command line") + 9;
    uki[at] ^= 0x01;
    changed
        .write_esp_file(SECOND_STAGE, &uki)
        .expect("write UKI");
    refused_by_shim("shim-changed-uki", &changed.path, dir.path(), &enrolled);

    // Signed by another key: our signature removed, someone else's added.
    let resigned = TamperedStick::copy_of(&built.image).expect("copy");
    let uki = resigned
        .read_esp_file(SECOND_STAGE)
        .expect("UKI on the ESP");
    let foreign = ForeignDbKey::generate().expect("openssl makes a key");
    let theirs = resigned_uki(&uki, &foreign, resigned.scratch()).expect("sbsign");
    resigned
        .write_esp_file(SECOND_STAGE, &theirs)
        .expect("write UKI");
    refused_by_shim("shim-other-key", &resigned.path, dir.path(), &enrolled);
}

fn machine(name: &str, image: &Path, vars: &Path) -> MachineConfig {
    let mut config = MachineConfig::new(name).stick(image);
    config.firmware_vars = Some(vars.to_path_buf());
    config.memory_mib = 3072;
    config
}

/// The first boot on the PC: the guide, then MokManager enrols the certificate
/// from the stick and reboots (QEMU exits: `-no-reboot`).
fn enrol_through_mok_manager(image: &Path, vars: &Path) {
    let mut vm = Machine::start(&machine("shim-first-boot", image, vars)).expect("QEMU starts");
    let mut at = 0;
    let mut step = |vm: &Machine, text: &str, timeout: Duration, keys: &[&str]| {
        at = wait_for_text(vm, at, text.as_bytes(), timeout)
            .unwrap_or_else(|| panic!("no {text:?} on the console\n{}", vm.diagnostics()));
        for key in keys {
            // MokManager redraws after each key; a short pause keeps them apart.
            std::thread::sleep(Duration::from_millis(500));
            vm.send_keys(key).expect("send key");
        }
        at
    };
    // The stick's guide (DE/EN), shown by GRUB when shim does not trust the UKI.
    // It names MokManager's screens too: wait for its last line (the code) so
    // that the next waits only see MokManager's own.
    step(&vm, FIRST_START_HEADLINE, SHIM_TIMEOUT, &[]);
    step(&vm, FIRST_START_CODE, SCREEN_TIMEOUT, &[]);
    screenshot(&vm, "shim_first_boot_guide");
    vm.send_keys("esc").expect("send key");
    step(
        &vm,
        "Press any key to perform MOK management",
        SCREEN_TIMEOUT,
        &["spc"],
    );
    step(
        &vm,
        "Enroll key from disk",
        SCREEN_TIMEOUT,
        &["down", "ret"],
    );
    step(&vm, "STICK-ESP", SCREEN_TIMEOUT, &["ret"]);
    let listed = step(&vm, MOK_CERTIFICATE, SCREEN_TIMEOUT, &[]);
    // The ESP's root as MokManager lists it, top to bottom: the rows of the
    // folder `EFI/` (first: the builder makes folders before files) and ours.
    let console = vm.raw_console();
    let frame = &console[..listed];
    let downs = row_of(frame, b"EFI/")
        .zip(row_of(frame, MOK_CERTIFICATE.as_bytes()))
        .map(|(first, ours)| ours - first)
        .unwrap_or_else(|| panic!("cannot read MokManager's file list\n{}", vm.diagnostics()));
    screenshot(&vm, "shim_mok_manager_files");
    let mut keys = vec!["down"; downs as usize];
    keys.push("ret");
    for key in keys {
        std::thread::sleep(Duration::from_millis(500));
        vm.send_keys(key).expect("send key");
    }
    step(&vm, "View key 0", SCREEN_TIMEOUT, &["down", "ret"]);
    step(&vm, "Enroll the key(s)?", SCREEN_TIMEOUT, &["down", "ret"]);
    step(&vm, "Reboot", SCREEN_TIMEOUT, &[]);
    screenshot(&vm, "shim_mok_enrolled");
    vm.send_keys("ret").expect("send key");
    vm.wait_for_exit(SCREEN_TIMEOUT)
        .unwrap_or_else(|e| panic!("MokManager did not reboot: {e:#}"));
    vm.keep_console("shim_first_boot").expect("keeps log");
    eprintln!(
        "shim: first boot, enrolment done in {:.1} s",
        vm.elapsed().as_secs_f64()
    );
}

/// Boots `image` on a copy of the enrolled variables: shim must refuse the UKI
/// (the guide shows), and no kernel may start.
fn refused_by_shim(name: &str, image: &Path, dir: &Path, enrolled: &[u8]) {
    let vars = dir.join(format!("{name}.fd"));
    std::fs::write(&vars, enrolled).expect("copy enrolled vars");
    let vm = Machine::start(&machine(name, image, &vars)).expect("QEMU starts");
    let found = wait_for_text(&vm, 0, REFUSED, SHIM_TIMEOUT);
    screenshot(&vm, &name.replace('-', "_"));
    vm.keep_console(&name.replace('-', "_")).expect("keeps log");
    assert!(
        found.is_some(),
        "{name}: shim did not refuse\n{}",
        vm.diagnostics()
    );
    let console = vm.console();
    assert!(
        !console.contains("Linux version") && !console.contains("@kiosk@"),
        "{name}: a kernel started\n{}",
        vm.diagnostics()
    );
    eprintln!(
        "{name}: refused by shim after {:.1} s",
        vm.elapsed().as_secs_f64()
    );
}

/// The end of the first `text` in the raw console after byte `from`.
fn wait_for_text(vm: &Machine, from: usize, text: &[u8], timeout: Duration) -> Option<usize> {
    wait_until(timeout, Duration::from_millis(500), || {
        let console = vm.raw_console();
        console
            .get(from..)
            .and_then(|rest| find(rest, text))
            .map(|at| from + at + text.len())
    })
}

/// The screen row of the last `text` in `frame`: the row of the cursor
/// position (`ESC [ row ; col H`) the firmware set before writing it (box
/// characters in the code page 437 may lie between).
fn row_of(frame: &[u8], text: &[u8]) -> Option<u32> {
    let at = rfind(frame, text)?;
    let before = &frame[..at];
    let params = &before[rfind(before, b"\x1b[")? + 2..];
    let end = params.iter().position(|&c| c == b'H')?;
    let (row, _column) = std::str::from_utf8(&params[..end]).ok()?.split_once(';')?;
    row.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn screenshot(vm: &Machine, name: &str) {
    let path = qemu_tests::artifacts_dir().join(format!("{name}.png"));
    if let Err(e) = vm.screenshot(&path) {
        eprintln!("no screenshot {}: {e:#}", path.display());
    }
}

#[test]
fn rows_are_read_from_cursor_positions() {
    let frame = b"\x1b[0m\x1b[14;40H\xb3   EFI/   \xb3\x1b[15;40H\xb3 a.cer \xb3\x1b[17;40H\xb3 ENROLL-STICK-KEY.cer \xb3";
    let cases: &[(&[u8], Option<u32>)] = &[
        (b"EFI/", Some(14)),
        (b"a.cer", Some(15)),
        (b"ENROLL-STICK-KEY.cer", Some(17)),
        (b"absent", None),
    ];
    for (text, want) in cases {
        assert_eq!(
            row_of(frame, text),
            *want,
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}
