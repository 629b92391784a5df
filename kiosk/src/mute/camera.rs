//! Turning the cameras off for everyone: each camera's device is unbound from its
//! driver (`/sys/bus/.../drivers/DRIVER/unbind`), so its `/dev/video*` nodes go
//! away and whoever was reading it gets an error; bound again, it is back. A
//! program cannot keep using a camera the kernel no longer has.

use std::path::{Path, PathBuf};

/// Where the kernel lists the video devices.
pub const SYS_CLASS_VIDEO: &str = "/sys/class/video4linux";

/// A camera's device and the driver it was bound to (to bind it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraBinding {
    /// The driver's folder, `/sys/bus/usb/drivers/uvcvideo`.
    pub driver: PathBuf,
    /// The device's name on its bus, `1-1:1.0` or `vivid.0`.
    pub device: String,
}

impl std::fmt::Display for CameraBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let driver = self
            .driver
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write!(f, "{} ({driver})", self.device)
    }
}

/// The bound device behind every `videoN` of `sys_class_video`, once each (a
/// USB camera has a capture and a metadata node on one interface).
pub fn bound_cameras(sys_class_video: &Path) -> Vec<CameraBinding> {
    let mut cameras: Vec<CameraBinding> = Vec::new();
    for name in crate::sysfs::entry_names(sys_class_video) {
        if !name.starts_with("video") {
            continue;
        }
        let device_link = sys_class_video.join(&name).join("device");
        let (Ok(device), Ok(driver)) = (
            std::fs::canonicalize(&device_link),
            std::fs::canonicalize(device_link.join("driver")),
        ) else {
            continue;
        };
        let Some(device) = device.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let binding = CameraBinding { driver, device };
        if !cameras.contains(&binding) {
            cameras.push(binding);
        }
    }
    cameras
}

impl CameraBinding {
    /// Unbinds the device from its driver.
    pub fn unbind(&self) -> std::io::Result<()> {
        std::fs::write(self.driver.join("unbind"), &self.device)
    }

    /// Binds the device to its driver again.
    pub fn bind(&self) -> std::io::Result<()> {
        std::fs::write(self.driver.join("bind"), &self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn cameras_are_found_once_per_device() {
        let root = tempfile::tempdir().expect("tempdir");
        let sys = root.path();
        let driver = sys.join("bus/usb/drivers/uvcvideo");
        let interface = sys.join("devices/usb1/1-1/1-1:1.0");
        let vivid_driver = sys.join("bus/platform/drivers/vivid");
        let vivid = sys.join("devices/platform/vivid.0");
        let class = sys.join("class/video4linux");
        for dir in [&driver, &interface, &vivid_driver, &vivid, &class] {
            std::fs::create_dir_all(dir).expect("dir");
        }
        symlink(&driver, interface.join("driver")).expect("link");
        symlink(&vivid_driver, vivid.join("driver")).expect("link");
        // Two nodes of the USB camera, one of vivid, one node without a driver.
        for (node, device) in [
            ("video0", &interface),
            ("video1", &interface),
            ("video2", &vivid),
        ] {
            std::fs::create_dir_all(class.join(node)).expect("node");
            symlink(device, class.join(node).join("device")).expect("link");
        }
        let unbound = sys.join("devices/platform/gone.0");
        std::fs::create_dir_all(&unbound).expect("dir");
        std::fs::create_dir_all(class.join("video3")).expect("node");
        symlink(&unbound, class.join("video3/device")).expect("link");

        let found = bound_cameras(&class);
        let names: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["1-1:1.0 (uvcvideo)", "vivid.0 (vivid)"]);

        found[1].unbind().expect("unbind");
        assert_eq!(
            std::fs::read_to_string(vivid_driver.join("unbind")).expect("written"),
            "vivid.0"
        );
    }
}
