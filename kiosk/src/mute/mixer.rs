//! The sound cards' capture switches, through ALSA's control interface
//! (`/dev/snd/controlC*`, the ioctls of `sound/asound.h`): the same switch a
//! laptop's microphone-mute key flips. Off, the card records silence whatever the
//! program that holds the microphone does.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the control devices of the sound cards are.
pub const DEV_SND: &str = "/dev/snd";

const NAME_LEN: usize = 44;
const IFACE_MIXER: u32 = 2;
const TYPE_BOOLEAN: u32 = 1;

/// `struct snd_ctl_elem_id`.
#[repr(C)]
#[derive(Clone, Copy)]
struct ElemId {
    numid: u32,
    iface: u32,
    device: u32,
    subdevice: u32,
    name: [u8; NAME_LEN],
    index: u32,
}

/// `struct snd_ctl_elem_list`.
#[repr(C)]
struct ElemList {
    offset: u32,
    space: u32,
    used: u32,
    count: u32,
    pids: *mut ElemId,
    reserved: [u8; 50],
}

/// `struct snd_ctl_elem_info` (the value union as its 128 reserved bytes).
#[repr(C)]
struct ElemInfo {
    id: ElemId,
    kind: u32,
    access: u32,
    count: u32,
    owner: i32,
    value: [u64; 16],
    reserved: [u8; 64],
}

/// `struct snd_ctl_elem_value` (the value union as `long value[128]`).
#[repr(C)]
struct ElemValue {
    id: ElemId,
    indirect: u32,
    value: [i64; 128],
    reserved: [u8; 128],
}

nix::ioctl_readwrite!(elem_list, b'U', 0x10, ElemList);
nix::ioctl_readwrite!(elem_info, b'U', 0x11, ElemInfo);
nix::ioctl_readwrite!(elem_read, b'U', 0x12, ElemValue);
nix::ioctl_readwrite!(elem_write, b'U', 0x13, ElemValue);

/// One capture switch of one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSwitch {
    /// `/dev/snd/controlC0`.
    pub control: PathBuf,
    /// `Capture Switch`, `Mic Capture Switch`, ...
    pub name: String,
    id: ElemIdKey,
    /// Its values (one per channel), from the listing's `ELEM_INFO`.
    channels: usize,
}

/// What finds the element again: its numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ElemIdKey(u32);

impl CaptureSwitch {
    /// `card0` for `/dev/snd/controlC0` (the name `/proc/asound` uses).
    pub fn card(&self) -> String {
        self.control
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("controlC"))
            .map(|number| format!("card{number}"))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for CaptureSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}'", self.card(), self.name)
    }
}

/// Whether a mixer control of this name switches a capture path on and off.
pub fn is_capture_switch(name: &str) -> bool {
    name.ends_with("Capture Switch")
}

/// `/dev/snd/controlC*` of every card.
pub fn controls(dev_snd: &Path) -> Vec<PathBuf> {
    crate::sysfs::entry_names(dev_snd)
        .into_iter()
        .filter(|n| n.strip_prefix("controlC").is_some_and(|c| !c.is_empty()))
        .map(|n| dev_snd.join(n))
        .collect()
}

fn empty_id() -> ElemId {
    ElemId {
        numid: 0,
        iface: 0,
        device: 0,
        subdevice: 0,
        name: [0; NAME_LEN],
        index: 0,
    }
}

fn id_name(id: &ElemId) -> String {
    let end = id.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    String::from_utf8_lossy(&id.name[..end]).into_owned()
}

fn open(control: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(control)
}

/// The boolean capture switches of one card.
pub fn capture_switches(control: &Path) -> std::io::Result<Vec<CaptureSwitch>> {
    let file = open(control)?;
    let fd = file.as_raw_fd();
    let mut list = ElemList {
        offset: 0,
        space: 0,
        used: 0,
        count: 0,
        pids: std::ptr::null_mut(),
        reserved: [0; 50],
    };
    // SAFETY: `list` is a valid snd_ctl_elem_list; with space 0 the kernel only
    // writes the count.
    #[allow(unsafe_code)]
    unsafe { elem_list(fd, &mut list) }?;
    let mut ids = vec![empty_id(); list.count as usize];
    list.space = list.count;
    list.pids = ids.as_mut_ptr();
    // SAFETY: `pids` points at `space` writable ElemIds that outlive the call.
    #[allow(unsafe_code)]
    unsafe { elem_list(fd, &mut list) }?;
    ids.truncate(list.used as usize);
    let mut switches = Vec::new();
    for id in ids {
        let name = id_name(&id);
        if id.iface != IFACE_MIXER || !is_capture_switch(&name) {
            continue;
        }
        let info = info(fd, id)?;
        if info.kind == TYPE_BOOLEAN {
            switches.push(CaptureSwitch {
                control: control.to_path_buf(),
                name,
                id: ElemIdKey(id.numid),
                channels: (info.count as usize).min(128),
            });
        }
    }
    Ok(switches)
}

fn info(fd: i32, id: ElemId) -> std::io::Result<ElemInfo> {
    let mut info = ElemInfo {
        id,
        kind: 0,
        access: 0,
        count: 0,
        owner: 0,
        value: [0; 16],
        reserved: [0; 64],
    };
    // SAFETY: `info` is a valid snd_ctl_elem_info the kernel fills in.
    #[allow(unsafe_code)]
    unsafe { elem_info(fd, &mut info) }?;
    Ok(info)
}

fn value_for(numid: u32) -> ElemValue {
    ElemValue {
        id: ElemId {
            numid,
            ..empty_id()
        },
        indirect: 0,
        value: [0; 128],
        reserved: [0; 128],
    }
}

impl CaptureSwitch {
    /// Whether any channel of the switch is on (capturing), read from the card.
    pub fn is_on(&self) -> std::io::Result<bool> {
        let file = open(&self.control)?;
        let mut value = value_for(self.id.0);
        // SAFETY: `value` is a valid snd_ctl_elem_value the kernel fills in.
        #[allow(unsafe_code)]
        unsafe { elem_read(file.as_raw_fd(), &mut value) }?;
        Ok(value.value[..self.channels].iter().any(|&v| v != 0))
    }

    /// Turns every channel of the switch on or off.
    pub fn set(&self, on: bool) -> std::io::Result<()> {
        let file = open(&self.control)?;
        let mut value = value_for(self.id.0);
        for channel in value.value.iter_mut().take(self.channels) {
            *channel = i64::from(on);
        }
        // SAFETY: `value` is a valid snd_ctl_elem_value the kernel reads.
        #[allow(unsafe_code)]
        unsafe { elem_write(file.as_raw_fd(), &mut value) }?;
        Ok(())
    }
}

/// Every capture switch of every card; a card that cannot be read is logged.
pub fn all_capture_switches(dev_snd: &Path) -> Vec<CaptureSwitch> {
    controls(dev_snd)
        .iter()
        .flat_map(|control| {
            capture_switches(control).unwrap_or_else(|err| {
                tracing::warn!("cannot list the switches of {}: {err}", control.display());
                Vec::new()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_match_the_kernel() {
        // The ioctl numbers of sound/asound.h on 64-bit Linux encode these sizes.
        assert_eq!(std::mem::size_of::<ElemId>(), 64);
        assert_eq!(std::mem::size_of::<ElemList>(), 80);
        assert_eq!(std::mem::size_of::<ElemInfo>(), 272);
        assert_eq!(std::mem::size_of::<ElemValue>(), 1224);
        assert_eq!(nix::request_code_readwrite!(b'U', 0x10, 80), 0xc050_5510);
        assert_eq!(nix::request_code_readwrite!(b'U', 0x13, 1224), 0xc4c8_5513);
    }

    #[test]
    fn capture_switch_names() {
        for (name, switch) in [
            ("Capture Switch", true),
            ("Mic Capture Switch", true),
            ("Headset Mic Capture Switch", true),
            ("Capture Volume", false),
            ("Master Playback Switch", false),
            ("Mic Boost Volume", false),
        ] {
            assert_eq!(is_capture_switch(name), switch, "{name}");
        }
    }

    #[test]
    fn control_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["controlC0", "controlC1", "pcmC0D0c", "timer", "controlC"] {
            std::fs::write(dir.path().join(name), "").expect("node");
        }
        let mut found = controls(dir.path());
        found.sort();
        assert_eq!(
            found,
            [dir.path().join("controlC0"), dir.path().join("controlC1")]
        );
    }
}
