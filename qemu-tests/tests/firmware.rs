//! The harness itself works without any image: OVMF starts, its boot manager
//! speaks on the serial console, and a guest that stops ends the wait early.

use std::time::Duration;

use qemu_tests::machine::qemu::{Machine, MachineConfig};

/// OVMF under TCG reaches its boot manager in about 5 s on this kind of machine.
const FIRMWARE_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn firmware_starts() {
    let mut vm = Machine::start(&MachineConfig::new("firmware-starts")).expect("QEMU starts");
    let line = vm
        .wait_for_line(FIRMWARE_TIMEOUT, |l| l.starts_with("BdsDxe: "))
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "firmware: QEMU start -> {line:?} in {:.1} s",
        vm.elapsed().as_secs_f64()
    );
    vm.keep_console("firmware_starts").expect("keeps log");
}

#[test]
fn wait_ends_when_qemu_exits() {
    // QEMU refuses an unknown device and exits at once: the wait must say so
    // right away, with QEMU's stderr, instead of sitting out its timeout.
    let mut config = MachineConfig::new("exits-early");
    config
        .extra_args
        .extend(["-device".to_string(), "no-such-device".to_string()]);
    let mut vm = Machine::start(&config).expect("QEMU starts");
    let err = vm
        .wait_for_line(Duration::from_secs(300), |_| false)
        .expect_err("nothing can match");
    let message = format!("{err:#}");
    assert!(
        vm.elapsed() < Duration::from_secs(60),
        "the wait must end when QEMU exits, not at the timeout:\n{message}"
    );
    assert!(message.contains("exited early"), "{message}");
    assert!(
        message.contains("no-such-device"),
        "stderr is shown: {message}"
    );
}
