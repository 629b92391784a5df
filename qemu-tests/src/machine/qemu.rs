//! A QEMU/OVMF machine with the image attached as a USB stick, as on real hardware.
//!
//! The full command line is printed when the machine starts; every failed wait
//! carries the command line, QEMU's stderr and the whole serial console.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::machine::serial::{clean_console, finished_lines, rejoin_split_lines};

/// How QEMU executes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// `QEMU_ACCEL=kvm|tcg` decides; otherwise KVM is probed once per process.
    /// Here /dev/kvm only runs nested-PVM kernels and QEMU aborts on it, so the
    /// probe boots a five-byte BIOS under KVM: it exits by itself only if KVM works.
    pub fn detect() -> Accel {
        static DETECTED: OnceLock<Accel> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            match std::env::var("QEMU_ACCEL").as_deref() {
                Ok("kvm") => return Accel::Kvm,
                Ok("tcg") => return Accel::Tcg,
                _ => {}
            }
            let (accel, why) = probe_kvm();
            eprintln!("qemu-tests: using {accel:?} ({why})");
            accel
        })
    }

    /// `tcg_cpu`: the CPU model under TCG (`max` when `None`); KVM uses the host's.
    fn args(self, tcg_cpu: Option<&str>) -> Vec<String> {
        match self {
            Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            Accel::Tcg => vec![
                "-accel".into(),
                "tcg,thread=multi".into(),
                "-cpu".into(),
                tcg_cpu.unwrap_or("max").into(),
            ],
        }
    }
}

/// A 64 KiB "BIOS" whose reset vector writes 1 to the isa-debug-exit port: QEMU
/// exits with status 3 once the vCPU has really run an instruction.
fn probe_bios() -> Vec<u8> {
    const RESET_VECTOR: usize = 0xfff0;
    let mut bios = vec![0xf4u8; 0x10000]; // hlt everywhere else
                                          // mov al, 1; out 0xf4, al; hlt
    bios[RESET_VECTOR..RESET_VECTOR + 5].copy_from_slice(&[0xb0, 0x01, 0xe6, 0xf4, 0xf4]);
    bios
}

/// Status of QEMU when the probe BIOS ran: (1 << 1) | 1.
const PROBE_RAN: i32 = 3;

fn probe_kvm() -> (Accel, String) {
    if !Path::new("/dev/kvm").exists() {
        return (Accel::Tcg, "no /dev/kvm".into());
    }
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            return (
                Accel::Tcg,
                format!("no temporary folder for the KVM probe: {e}"),
            )
        }
    };
    let bios = dir.path().join("probe.bin");
    if let Err(e) = std::fs::write(&bios, probe_bios()) {
        return (Accel::Tcg, format!("cannot write the KVM probe: {e}"));
    }
    // The same accelerator, CPU model and machine as the real boots: a vCPU that
    // cannot even be initialised (nested PVM) aborts QEMU before the first instruction.
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-machine",
            "q35,smm=on",
            "-nodefaults",
        ])
        .args(["-display", "none", "-no-reboot", "-bios"])
        .arg(&bios)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return (Accel::Tcg, format!("cannot start qemu: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            if status.code() == Some(PROBE_RAN) {
                return (Accel::Kvm, "the KVM probe ran its first instruction".into());
            }
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            let first = stderr.lines().next().unwrap_or("").to_string();
            return (
                Accel::Tcg,
                format!("KVM probe exited with {status}: {first}"),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    (Accel::Tcg, "KVM probe did not finish in 30 s".into())
}

/// OVMF firmware files; the variable store is copied per machine.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub code: PathBuf,
    /// The build that enforces Secure Boot (needs SMM).
    pub secure_boot_code: PathBuf,
    pub vars_template: PathBuf,
    /// Variables with Microsoft's keys enrolled and Secure Boot on, as on PCs
    /// sold with Windows (Debian's `OVMF_VARS_4M.ms.fd`).
    pub microsoft_vars: PathBuf,
}

impl Firmware {
    /// `OVMF_CODE`/`OVMF_VARS` override Debian's 4M build.
    pub fn locate() -> Result<Firmware> {
        let code = std::env::var_os("OVMF_CODE")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/share/OVMF/OVMF_CODE_4M.fd".into());
        let secure_boot_code = std::env::var_os("OVMF_CODE_SECBOOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd".into());
        let vars_template = std::env::var_os("OVMF_VARS")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/share/OVMF/OVMF_VARS_4M.fd".into());
        let microsoft_vars = std::env::var_os("OVMF_VARS_MS")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/share/OVMF/OVMF_VARS_4M.ms.fd".into());
        for path in [&code, &secure_boot_code, &vars_template, &microsoft_vars] {
            if !path.is_file() {
                bail!(
                    "OVMF firmware {} not found: install the Debian package ovmf (or set \
                     OVMF_CODE/OVMF_CODE_SECBOOT/OVMF_VARS/OVMF_VARS_MS)",
                    path.display()
                );
            }
        }
        Ok(Firmware {
            code,
            secure_boot_code,
            vars_template,
            microsoft_vars,
        })
    }
}

/// Certificates enrolled into the firmware for Secure Boot (PEM).
#[derive(Debug, Clone)]
pub struct SecureBootKeys {
    pub pk: PathBuf,
    pub kek: PathBuf,
    pub db: PathBuf,
}

impl SecureBootKeys {
    /// The committed test hierarchy `keys/test-sb-*`.
    pub fn test_keys() -> SecureBootKeys {
        let keys = crate::workspace_root().join("keys");
        SecureBootKeys {
            pk: keys.join("test-sb-pk.crt"),
            kek: keys.join("test-sb-kek.crt"),
            db: keys.join("test-sb-db.crt"),
        }
    }
}

/// Owner GUID recorded with the enrolled certificates (any fixed GUID will do).
const KEY_OWNER_GUID: &str = "5e8ee2c7-4a54-4c0e-8a8e-3f0ff0b9d5d1";

/// Writes an OVMF variable store with `keys` enrolled and Secure Boot enforcing,
/// using virt-fw-vars (PyPI: virt-firmware).
fn enroll(template: &Path, out: &Path, keys: &SecureBootKeys) -> Result<()> {
    let output = Command::new("virt-fw-vars")
        .arg("--input")
        .arg(template)
        .arg("--output")
        .arg(out)
        .args(["--set-pk", KEY_OWNER_GUID])
        .arg(&keys.pk)
        .args(["--add-kek", KEY_OWNER_GUID])
        .arg(&keys.kek)
        .args(["--add-db", KEY_OWNER_GUID])
        .arg(&keys.db)
        .arg("--secure-boot")
        .output()
        .context(
            "cannot run virt-fw-vars (pip install virt-firmware; scripts/setup-tests.sh does)",
        )?;
    if !output.status.success() {
        bail!(
            "virt-fw-vars failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The kernel's last words before it stops (the image does not set `panic=`).
pub const KERNEL_PANIC: &str = "Kernel panic - not syncing";

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub name: String,
    pub stick: Option<PathBuf>,
    /// Enrolled keys and Secure Boot on (OVMF's secboot build, SMM); `None`: off.
    pub secure_boot: Option<SecureBootKeys>,
    /// A variable store used in place of a fresh one (with OVMF's Secure Boot
    /// build): Secure Boot as enrolled in it, and what the guest writes there
    /// (MokManager's MOK list) stays for the next boot.
    pub firmware_vars: Option<PathBuf>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub extra_args: Vec<String>,
    /// The CPU model under TCG instead of `max` (see the conference test).
    pub tcg_cpu: Option<String>,
    /// A wired NIC on a tap device, QEMU run inside the tap's network namespace.
    pub nic: Option<Nic>,
    /// An emulated Intel IOMMU (VT-d) translating every device's DMA.
    pub iommu: bool,
}

/// The guest's Ethernet card: a tap device in a network namespace the test made,
/// every frame in both directions recorded by QEMU's `filter-dump` (pcap).
#[derive(Debug, Clone)]
pub struct Nic {
    pub netns: String,
    pub tap: String,
    pub mac: String,
    pub capture: PathBuf,
}

impl MachineConfig {
    pub fn new(name: &str) -> MachineConfig {
        MachineConfig {
            name: name.to_string(),
            stick: None,
            secure_boot: None,
            firmware_vars: None,
            memory_mib: 2048,
            // One vCPU: multi-threaded TCG with two vCPUs once crashed the guest
            // kernel while it patched its own code (int3 oops in sched_clock_cpu,
            // during boot), a race of TCG's cross-modifying code, not of the image.
            cpus: 1,
            extra_args: Vec::new(),
            tcg_cpu: None,
            nic: None,
            iommu: false,
        }
    }

    pub fn stick(mut self, image: &Path) -> MachineConfig {
        self.stick = Some(image.to_path_buf());
        self
    }

    pub fn secure_boot(mut self, keys: SecureBootKeys) -> MachineConfig {
        self.secure_boot = Some(keys);
        self
    }
}

/// Lines of the console (and of QEMU's stderr) in a failure message.
const CONSOLE_TAIL: usize = 60;

/// A running machine. Dropping it kills QEMU.
#[derive(Debug)]
pub struct Machine {
    /// The config's name: artifacts are named after it.
    name: String,
    child: Child,
    command_line: String,
    serial_log: PathBuf,
    qemu_stderr: PathBuf,
    qmp_socket: PathBuf,
    started: Instant,
    dir: tempfile::TempDir,
}

impl Machine {
    pub fn start(config: &MachineConfig) -> Result<Machine> {
        let firmware = Firmware::locate()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("qemu-{}-", config.name))
            .tempdir()
            .context("cannot create the machine's temporary folder")?;
        let mut vars = dir.path().join("OVMF_VARS.fd");
        let code = match (&config.firmware_vars, &config.secure_boot) {
            (Some(kept), _) => {
                vars = kept.clone();
                firmware.secure_boot_code.clone()
            }
            (None, Some(keys)) => {
                enroll(&firmware.vars_template, &vars, keys)?;
                firmware.secure_boot_code.clone()
            }
            (None, None) => {
                std::fs::copy(&firmware.vars_template, &vars)
                    .with_context(|| format!("cannot copy {}", firmware.vars_template.display()))?;
                firmware.code.clone()
            }
        };
        let serial_log = dir.path().join("serial.log");
        let qemu_stderr = dir.path().join("qemu.stderr");
        let qmp_socket = dir.path().join("qmp.sock");
        let secure_boot = config.secure_boot.is_some() || config.firmware_vars.is_some();
        let mut args: Vec<String> = match secure_boot {
            // The secboot firmware keeps its variables behind SMM.
            true => vec![
                "-machine".into(),
                "q35,smm=on".into(),
                "-global".into(),
                "driver=cfi.pflash01,property=secure,value=on".into(),
            ],
            false => vec!["-machine".into(), "q35".into()],
        };
        if config.iommu {
            // Before every other PCI device, as QEMU requires; no interrupt
            // remapping (it needs a split irqchip under KVM, and DMA is the point).
            args.extend(["-device".into(), "intel-iommu,intremap=off".into()]);
        }
        args.extend(Accel::detect().args(config.tcg_cpu.as_deref()));
        args.extend([
            "-m".into(),
            config.memory_mib.to_string(),
            "-smp".into(),
            config.cpus.to_string(),
            "-drive".into(),
            format!("if=pflash,format=raw,readonly=on,file={}", code.display()),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", vars.display()),
            "-display".into(),
            "none".into(),
            "-vga".into(),
            "std".into(),
            "-chardev".into(),
            format!("file,id=serial0,path={}", serial_log.display()),
            "-serial".into(),
            "chardev:serial0".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp_socket.display()),
            "-no-reboot".into(),
        ]);
        if let Some(stick) = &config.stick {
            args.extend(usb_stick_args(stick));
        }
        match &config.nic {
            None => args.extend(["-nic".into(), "none".into()]),
            Some(nic) => args.extend(nic_args(nic)),
        }
        args.extend(config.extra_args.iter().cloned());
        let program = qemu_program(config.nic.as_ref());
        let command_line = program
            .iter()
            .cloned()
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("qemu-tests[{}]: {command_line}", config.name);
        let stderr_file =
            std::fs::File::create(&qemu_stderr).context("cannot create qemu.stderr")?;
        let child = Command::new(&program[0])
            .args(&program[1..])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr_file)
            .spawn()
            .context(
                "cannot start qemu-system-x86_64 (install the Debian package qemu-system-x86)",
            )?;
        Ok(Machine {
            name: config.name.clone(),
            child,
            command_line,
            serial_log,
            qemu_stderr,
            qmp_socket,
            started: Instant::now(),
            dir,
        })
    }

    /// Runs one QMP command (`{"execute": ...}`) and returns its `return` value.
    pub fn qmp(&self, command: &serde_json::Value) -> Result<serde_json::Value> {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::os::unix::net::UnixStream::connect(&self.qmp_socket)
            .with_context(|| format!("cannot connect to QMP at {}", self.qmp_socket.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let answer =
            |reader: &mut BufReader<std::os::unix::net::UnixStream>| -> Result<serde_json::Value> {
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        bail!("QMP closed the connection");
                    }
                    let value: serde_json::Value = serde_json::from_str(&line)
                        .with_context(|| format!("QMP sent something that is not JSON: {line}"))?;
                    if let Some(ret) = value.get("return") {
                        return Ok(ret.clone());
                    }
                    if let Some(err) = value.get("error") {
                        bail!("QMP error: {err}");
                    }
                    // Greeting and asynchronous events: read on.
                }
            };
        writeln!(
            writer,
            "{}",
            serde_json::json!({"execute": "qmp_capabilities"})
        )?;
        answer(&mut reader)?;
        writeln!(writer, "{command}")?;
        answer(&mut reader).with_context(|| format!("QMP command {command}"))
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The serial console as written, escape sequences included (the firmware's
    /// text screens place their text with them).
    pub fn raw_console(&self) -> Vec<u8> {
        std::fs::read(&self.serial_log).unwrap_or_default()
    }

    /// The serial console's finished lines so far, cleaned of escapes and
    /// carriage returns; a line still being written waits for the next read.
    pub fn console(&self) -> String {
        finished_lines(&self.whole_console()).to_string()
    }

    /// The whole serial console, an unfinished last line included (for
    /// diagnostics, and once QEMU has exited), kiosk lines that a kernel
    /// message split joined again.
    fn whole_console(&self) -> String {
        rejoin_split_lines(&clean_console(&String::from_utf8_lossy(
            &self.raw_console(),
        )))
    }

    /// Waits for the first console line that `matches` accepts.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let find = |console: &str| console.lines().find(|l| matches(l)).map(str::to_string);
        // A guest that powers off or crashes ends QEMU (`-no-reboot`): stop waiting
        // then instead of sitting out a boot timeout of many minutes.
        let outcome = wait_until(timeout, Duration::from_millis(500), || {
            let console = self.console();
            if let Some(line) = find(&console) {
                return Some(Ok(line));
            }
            // A panicked guest says nothing more; waiting out the timeout helps no one.
            if console.contains(KERNEL_PANIC) {
                return Some(Err("kernel panic in the guest".to_string()));
            }
            match self.child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(Err(format!("exited early: {status}"))),
                Err(e) => Some(Err(format!("cannot be polled: {e}"))),
            }
        });
        let state = match outcome {
            Some(Ok(line)) => return Ok(line),
            // The log is complete once QEMU has exited; the line may have come last.
            Some(Err(state)) => match find(&self.whole_console()) {
                Some(line) => return Ok(line),
                None => state,
            },
            None => "still running".to_string(),
        };
        bail!(
            "no matching console line after {:.1} s (QEMU {state})\n{}",
            self.elapsed().as_secs_f64(),
            self.diagnostics()
        )
    }

    /// Command line, QEMU's stderr and the console's tail, for failure messages;
    /// the whole console as it was then is kept as the artifact
    /// `NAME.diagnostics.console.log` (a wait allowed to fail makes one too).
    pub fn diagnostics(&self) -> String {
        let console = self.whole_console();
        let kept = self
            .keep_console(&format!("{}.diagnostics", self.name))
            .map(|path| path.display().to_string())
            .unwrap_or_else(|e| format!("not kept: {e:#}"));
        format!(
            "--- QEMU command line ---\n{}\n--- QEMU stderr ---\n{}--- serial console (whole: {kept}) ---\n{}--- end ---",
            self.command_line,
            crate::log_tail(
                &std::fs::read_to_string(&self.qemu_stderr).unwrap_or_default(),
                CONSOLE_TAIL
            ),
            crate::log_tail(&console, CONSOLE_TAIL)
        )
    }

    /// Waits for QEMU to exit (the guest powered off; `-no-reboot` turns a reboot
    /// into an exit too).
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let child = &mut self.child;
        match wait_until(timeout, Duration::from_millis(500), || {
            child.try_wait().ok().flatten()
        }) {
            Some(status) => Ok(status),
            None => bail!(
                "QEMU still running after {:.0} s\n{}",
                timeout.as_secs_f64(),
                self.diagnostics()
            ),
        }
    }

    /// Presses the ACPI power button (QMP `system_powerdown`), as a user would, and
    /// waits up to `timeout` for the guest to power off.
    pub fn press_power_button(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.qmp(&serde_json::json!({"execute": "system_powerdown"}))
            .context("QMP system_powerdown")?;
        self.wait_for_exit(timeout)
    }

    /// Copies the console log to `target/qemu-tests/artifacts/NAME.console.log`.
    pub fn keep_console(&self, name: &str) -> Result<PathBuf> {
        let dir = crate::artifacts_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{name}.console.log"));
        std::fs::write(&path, self.whole_console())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// The program and its leading arguments: QEMU opens the tap where it lives, so
/// with a NIC it runs inside the test's namespace.
fn qemu_program(nic: Option<&Nic>) -> Vec<String> {
    let mut program = vec!["qemu-system-x86_64".to_string()];
    if let Some(nic) = nic {
        program.splice(
            0..0,
            [
                "ip".into(),
                "netns".into(),
                "exec".into(),
                nic.netns.clone(),
            ],
        );
    }
    program
}

/// QEMU arguments for the image as a USB stick, first in the boot order.
fn usb_stick_args(stick: &Path) -> Vec<String> {
    vec![
        "-device".into(),
        // Eight root ports: the tests plug every device straight into the
        // controller. With QEMU's default four, the last free port gets a
        // full-speed hub that QEMU adds by itself, and a stick behind it
        // once failed to enumerate under load (a QEMU artefact, not a
        // policy decision).
        "qemu-xhci,id=xhci,p2=8,p3=8".into(),
        "-drive".into(),
        format!(
            "if=none,id=stick,format=raw,snapshot=on,file={}",
            stick.display()
        ),
        "-device".into(),
        // First in the boot order, before any bootloader on the PC\'s disks.
        "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=0".into(),
    ]
}

/// QEMU arguments for the uplink on the lab's tap, every frame captured.
fn nic_args(nic: &Nic) -> Vec<String> {
    vec![
        "-netdev".into(),
        // No virtio-net header on the tap: the capture then holds plain Ethernet frames.
        format!(
            "tap,id=uplink,ifname={},script=no,downscript=no,vnet_hdr=off",
            nic.tap
        ),
        "-device".into(),
        // No option ROM: the firmware has no reason to touch the network.
        format!("virtio-net-pci,netdev=uplink,mac={},romfile=", nic.mac),
        "-object".into(),
        format!(
            "filter-dump,id=capture,netdev=uplink,file={}",
            nic.capture.display()
        ),
    ]
}

impl Drop for Machine {
    fn drop(&mut self) {
        // A test that panics leaves its console and last picture for people to read.
        if std::thread::panicking() {
            let name = format!("{}.failed", self.name);
            if let Ok(path) = self.keep_console(&name) {
                eprintln!("qemu-tests: console kept in {}", path.display());
            }
            let shot = crate::artifacts_dir().join(format!("{name}.png"));
            if self.screenshot(&shot).is_ok() {
                eprintln!("qemu-tests: screen kept in {}", shot.display());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every `poll` until it returns something or `timeout` passes.
pub fn wait_until<T>(
    timeout: Duration,
    poll: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = cond() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(poll);
    }
}

/// QMP `send-key` for a chord written `ctrl-alt-f2` (QEMU's qcode names).
pub fn send_key_command(chord: &str) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = chord
        .split('-')
        .map(|key| serde_json::json!({"type": "qcode", "data": key}))
        .collect();
    serde_json::json!({"execute": "send-key", "arguments": {"keys": keys, "hold-time": 100}})
}

/// The key chord (QEMU qcodes) that types `c` on a US keyboard layout; `None`
/// for a character the tests do not type.
pub fn us_key_chord(c: char) -> Option<String> {
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('_', "minus"),
        ('?', "slash"),
        (':', "semicolon"),
    ];
    let plain = match c {
        'a'..='z' | '0'..='9' => c.to_string(),
        'A'..='Z' => return Some(format!("shift-{}", c.to_ascii_lowercase())),
        ' ' => "spc".into(),
        '-' => "minus".into(),
        '.' => "dot".into(),
        ',' => "comma".into(),
        '/' => "slash".into(),
        _ => {
            let (_, key) = SHIFTED.iter().find(|(shifted, _)| *shifted == c)?;
            return Some(format!("shift-{key}"));
        }
    };
    Some(plain)
}

impl Machine {
    /// Types `text` on the guest's keyboard (a US layout), one key at a time.
    pub fn type_text(&self, text: &str) -> Result<()> {
        for c in text.chars() {
            let chord = us_key_chord(c).with_context(|| format!("no key types {c:?}"))?;
            self.send_keys(&chord)?;
        }
        Ok(())
    }

    /// Presses a key chord on the guest's keyboard, e.g. `ctrl-shift-i` or `o`.
    pub fn send_keys(&self, chord: &str) -> Result<()> {
        self.qmp(&send_key_command(chord))
            .with_context(|| format!("QMP send-key {chord}"))
            .map(drop)
    }

    /// Plugs the uplink's cable in or out: the guest's NIC sees its carrier
    /// come or go (QMP `set_link` on the uplink's netdev, which QEMU passes on to
    /// the NIC).
    pub fn set_uplink_cable(&self, plugged: bool) -> Result<()> {
        self.qmp(&serde_json::json!({
            "execute": "set_link",
            "arguments": {"name": "uplink", "up": plugged},
        }))
        .with_context(|| format!("QMP set_link uplink {plugged}"))
        .map(drop)
    }

    /// The share of the stick screens' background on the display, once it is at
    /// least [`STICK_SCREEN_SHOWING`](crate::machine::screen::STICK_SCREEN_SHOWING)
    /// (within `timeout`).
    pub fn stick_screen_covers(&self, timeout: Duration) -> Option<f64> {
        use crate::machine::screen::{STICK_SCREEN_BACKGROUND, STICK_SCREEN_SHOWING};
        wait_until(timeout, Duration::from_secs(1), || {
            self.screen()
                .ok()
                .map(|screen| screen.share_of(STICK_SCREEN_BACKGROUND, 3))
                .filter(|share| *share >= STICK_SCREEN_SHOWING)
        })
    }

    /// What the display shows now (a PPM screendump, read back and removed).
    pub fn screen(&self) -> Result<crate::machine::screen::Screen> {
        let path = self.dir.path().join("screen.ppm");
        self.qmp(&serde_json::json!({"execute": "screendump",
            "arguments": {"filename": path.display().to_string()}}))
            .context("QMP screendump")?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let _ = std::fs::remove_file(&path);
        crate::machine::screen::Screen::parse_ppm(&bytes)
    }

    /// Saves a screenshot (PNG) of the guest's display to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        self.qmp(&serde_json::json!({"execute": "screendump",
            "arguments": {"filename": path.display().to_string(), "format": "png"}}))
            .with_context(|| format!("QMP screendump to {}", path.display()))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_become_us_key_chords() {
        let cases: &[(char, Option<&str>)] = &[
            ('s', Some("s")),
            ('S', Some("shift-s")),
            ('7', Some("7")),
            (' ', Some("spc")),
            ('!', Some("shift-1")),
            ('-', Some("minus")),
            ('_', Some("shift-minus")),
            ('ä', None),
        ];
        for (c, chord) in cases {
            assert_eq!(us_key_chord(*c).as_deref(), *chord, "{c:?}");
        }
    }

    #[test]
    fn wait_until_returns_the_value_or_gives_up() {
        let mut calls = 0;
        let got = wait_until(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
        let none: Option<()> =
            wait_until(Duration::from_millis(20), Duration::from_millis(5), || None);
        assert_eq!(none, None);
    }

    #[test]
    fn key_chords_become_qcodes() {
        assert_eq!(
            send_key_command("ctrl-alt-f2"),
            serde_json::json!({"execute": "send-key", "arguments": {"keys": [
                {"type": "qcode", "data": "ctrl"},
                {"type": "qcode", "data": "alt"},
                {"type": "qcode", "data": "f2"}], "hold-time": 100}})
        );
    }
}
