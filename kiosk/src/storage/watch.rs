//! Watching the block and USB devices while the kiosk runs: the first storage
//! report once udev has seen everything, then one console line per change.

/// How often the storage watcher looks for new or changed block devices.
const STORAGE_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long the first report waits for udev to see every device.
const STORAGE_SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// One storage report now.
pub fn observe_storage(root_hash: Option<&str>) -> crate::storage::report::StorageReport {
    let mounts = std::fs::read_to_string(crate::boot::mounts::PROC_MOUNTINFO)
        .ok()
        .and_then(|text| crate::boot::mounts::parse_mountinfo(&text).ok())
        .unwrap_or_default();
    crate::storage::report::observe(std::path::Path::new("/sys/class/block"), root_hash, &mounts)
}

/// The first storage report, once udev has seen every block device there is
/// (coldplug may still be probing the PC's controllers).
pub fn settled_storage(root_hash: Option<&str>) -> crate::storage::report::StorageReport {
    let deadline = std::time::Instant::now() + STORAGE_SETTLE;
    loop {
        if let Err(err) = crate::command::run("udevadm", &["settle", "--timeout=30"]) {
            tracing::warn!("udevadm settle: {err:#}");
        }
        let report = observe_storage(root_hash);
        if report.settled() || std::time::Instant::now() >= deadline {
            tracing::info!(
                "storage: {} devices seen, {} of {} foreign locked",
                report.seen,
                report.locked,
                report.foreign
            );
            return report;
        }
        std::thread::sleep(STORAGE_POLL);
    }
}

/// Prints a new storage or USB line whenever the devices or their state change
/// (hotplug, late controllers, USBGuard decisions), for as long as the kiosk runs.
pub fn watch_devices(
    root_hash: Option<String>,
    mut storage: crate::storage::report::StorageReport,
) {
    let usb_dir = std::path::Path::new(crate::storage::usb::SYS_BUS_USB_DEVICES);
    let records = std::path::Path::new(stick_manifest::initrd::USB_BOOT_RECORD_DIR);
    let mut usb = crate::storage::usb::observe(usb_dir, records);
    println!("{}", usb.console_line());
    loop {
        std::thread::sleep(STORAGE_POLL);
        let report = observe_storage(root_hash.as_deref());
        if report.devices != storage.devices && report.settled() {
            if !report.ok {
                tracing::error!("storage lock: {}", report.problems.join("; "));
            }
            println!("{}", report.console_line());
            storage = report;
        }
        let now = crate::storage::usb::observe(usb_dir, records);
        if now != usb {
            println!("{}", now.console_line());
            usb = now;
        }
    }
}
