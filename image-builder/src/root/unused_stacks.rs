//! More kernel modules the stick never loads, by what they are for rather than
//! by bus: storage stacks that assemble the PC's disks, servers' SCSI and RAID
//! adapters, tape drives, iSCSI, kernel self-tests, studio and pre-HD-Audio
//! sound, old framebuffer drivers, TV grabbers and remote controls, iptables'
//! sets, servers' crypto accelerators. (Bridging stays: the Wi-Fi test image's
//! access point bridges its wired port.)
//! Measured on the demo's root (issue 19, sixth step): see docs/benchmarks.md.
//!
//! A module the stick keeps still keeps what it needs from these
//! (`module_classes::plan`): only what nothing kept needs goes. `module_classes`'
//! tests check each class with the others (under `kernel/`, named once, saying
//! why) and that what the stick itself uses stays.

use crate::root::hardware_class::HardwareClass;

const fn class(folder: &'static str, why: &'static str) -> HardwareClass {
    HardwareClass { folder, why }
}

const STORAGE_STACK: &str = "storage stacks that assemble the PC's disks (RAID, thin pools, \
     caches, multipath, deduplication): the stick reads its root through dm-verity and \
     assembles none of the PC's disks, which it locks";
const NETWORK_BLOCK: &str =
    "block devices over a network or from a cluster: the stick's root is on the stick";
const SELF_TEST: &str = "the kernel's self-tests";
const STUDIO: &str = "studio audio interfaces (recording studios, not office PCs and headsets)";
const PRE_HD_AUDIO: &str = "sound chips and cards from before HD Audio: PCs with UEFI \
     Secure Boot have HD Audio or a DSP (SOF) on board";
const MIDI: &str = "MIDI synthesizers and ports, and OSS emulation: the browser plays \
     through ALSA's PCM devices";
const OLD_FRAMEBUFFER: &str = "framebuffer drivers for graphics chips from before KMS \
     (Debian blacklists them; the stick's screen is DRM)";
const SERVER_SCSI: &str = "SCSI and RAID host adapters of servers and of PCs from before \
     SATA (parallel SCSI, hardware RAID): an office PC's disks are SATA or NVMe";
const TAPE: &str = "tape drives, media changers and disk enclosures (servers)";
const TV_GRABBER: &str = "USB TV and video grabbers and radio receivers (a webcam is UVC or gspca)";

/// The classes, added to `module_classes::UNUSED_HARDWARE`.
pub const UNUSED_STACKS: &[HardwareClass] = &[
    class("kernel/drivers/md/bcache", STORAGE_STACK),
    class("kernel/drivers/md/dm-vdo", STORAGE_STACK),
    class("kernel/drivers/md/persistent-data", STORAGE_STACK),
    class("kernel/drivers/md/md-mod.ko", STORAGE_STACK),
    class("kernel/drivers/md/md-cluster.ko", STORAGE_STACK),
    class("kernel/drivers/md/raid0.ko", STORAGE_STACK),
    class("kernel/drivers/md/raid1.ko", STORAGE_STACK),
    class("kernel/drivers/md/raid10.ko", STORAGE_STACK),
    class("kernel/drivers/md/raid456.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-raid.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-thin-pool.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-cache.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-cache-smq.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-era.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-writecache.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-zoned.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-multipath.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-round-robin.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-queue-length.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-service-time.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-mirror.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-log-userspace.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-log-writes.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-switch.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-unstripe.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-flakey.ko", STORAGE_STACK),
    class("kernel/drivers/md/dm-delay.ko", STORAGE_STACK),
    class("kernel/drivers/block/drbd", NETWORK_BLOCK),
    class("kernel/drivers/block/aoe", NETWORK_BLOCK),
    class("kernel/drivers/block/rbd.ko", NETWORK_BLOCK),
    class("kernel/drivers/block/nbd.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/3w-9xxx.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/3w-sas.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/3w-xxxx.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/BusLogic.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/a100u2w.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/advansys.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/am53c974.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/atp870u.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/dc395x.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/dmx3191d.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/esp_scsi.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/hpsa.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/hptiop.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/initio.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/ipr.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/ips.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/megaraid.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/mvumi.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/myrb.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/myrs.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/pmcraid.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/qla1280.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/qlogicfas408.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/stex.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/wd719x.ko", SERVER_SCSI),
    class("kernel/drivers/scsi/st.ko", TAPE),
    class("kernel/drivers/scsi/ch.ko", TAPE),
    class("kernel/drivers/scsi/ses.ko", TAPE),
    class("kernel/drivers/scsi/iscsi_tcp.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/libiscsi_tcp.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/libiscsi.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/scsi_transport_iscsi.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/iscsi_boot_sysfs.ko", NETWORK_BLOCK),
    class("kernel/drivers/scsi/scsi_debug.ko", SELF_TEST),
    class("kernel/drivers/block/null_blk", SELF_TEST),
    class("kernel/lib/test_bpf.ko", SELF_TEST),
    class("kernel/lib/test_firmware.ko", SELF_TEST),
    class("kernel/lib/test_static_keys.ko", SELF_TEST),
    class("kernel/lib/test_static_key_base.ko", SELF_TEST),
    class("kernel/drivers/usb/misc/usbtest.ko", SELF_TEST),
    class("kernel/sound/firewire", STUDIO),
    class("kernel/sound/pci/echoaudio", STUDIO),
    class("kernel/sound/pci/asihpi", STUDIO),
    class("kernel/sound/pci/rme9652", STUDIO),
    class("kernel/sound/pci/snd-rme32.ko", STUDIO),
    class("kernel/sound/pci/snd-rme96.ko", STUDIO),
    class("kernel/sound/pci/pcxhr", STUDIO),
    class("kernel/sound/pci/mixart", STUDIO),
    class("kernel/sound/pci/vx222", STUDIO),
    class("kernel/sound/pci/lx6464es", STUDIO),
    class("kernel/sound/pci/lola", STUDIO),
    class("kernel/sound/pci/korg1212", STUDIO),
    class("kernel/sound/pci/ice1712", STUDIO),
    class("kernel/sound/drivers/vx", STUDIO),
    class("kernel/sound/usb/line6", STUDIO),
    class("kernel/sound/usb/usx2y", STUDIO),
    class("kernel/sound/usb/caiaq", STUDIO),
    class("kernel/sound/usb/6fire", STUDIO),
    class("kernel/sound/usb/bcd2000", STUDIO),
    class("kernel/sound/usb/hiface", STUDIO),
    class("kernel/sound/isa", PRE_HD_AUDIO),
    class("kernel/sound/pci/ali5451", PRE_HD_AUDIO),
    class("kernel/sound/pci/au88x0", PRE_HD_AUDIO),
    class("kernel/sound/pci/cs46xx", PRE_HD_AUDIO),
    class("kernel/sound/pci/nm256", PRE_HD_AUDIO),
    class("kernel/sound/pci/riptide", PRE_HD_AUDIO),
    class("kernel/sound/pci/trident", PRE_HD_AUDIO),
    class("kernel/sound/pci/ymfpci", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-ad1889.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-als300.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-als4000.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-atiixp.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-atiixp-modem.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-azt3328.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-bt87x.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-cmipci.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-cs4281.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-ens1370.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-ens1371.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-es1938.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-es1968.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-fm801.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-intel8x0.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-intel8x0m.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-maestro3.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-sonicvibes.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-via82xx.ko", PRE_HD_AUDIO),
    class("kernel/sound/pci/snd-via82xx-modem.ko", PRE_HD_AUDIO),
    class("kernel/sound/drivers/mpu401", MIDI),
    class("kernel/sound/drivers/opl3", MIDI),
    class("kernel/sound/drivers/snd-mtpav.ko", MIDI),
    class("kernel/sound/drivers/snd-mts64.ko", MIDI),
    class("kernel/sound/drivers/snd-portman2x4.ko", MIDI),
    class("kernel/sound/drivers/snd-serial-u16550.ko", MIDI),
    class("kernel/sound/drivers/snd-virmidi.ko", MIDI),
    class("kernel/sound/synth", MIDI),
    class("kernel/sound/core/oss", MIDI),
    class("kernel/drivers/video/fbdev", OLD_FRAMEBUFFER),
    class(
        "kernel/drivers/media/rc/keymaps",
        "remote controls' key maps (TV cards)",
    ),
    class("kernel/drivers/media/usb/airspy", TV_GRABBER),
    class("kernel/drivers/media/usb/as102", TV_GRABBER),
    class("kernel/drivers/media/usb/au0828", TV_GRABBER),
    class("kernel/drivers/media/usb/b2c2", TV_GRABBER),
    class("kernel/drivers/media/usb/cx231xx", TV_GRABBER),
    class("kernel/drivers/media/usb/em28xx", TV_GRABBER),
    class("kernel/drivers/media/usb/hackrf", TV_GRABBER),
    class("kernel/drivers/media/usb/hdpvr", TV_GRABBER),
    class("kernel/drivers/media/usb/msi2500", TV_GRABBER),
    class("kernel/drivers/media/usb/pvrusb2", TV_GRABBER),
    class("kernel/drivers/media/usb/s2255", TV_GRABBER),
    class("kernel/drivers/media/usb/siano", TV_GRABBER),
    class("kernel/drivers/media/usb/stk1160", TV_GRABBER),
    class("kernel/drivers/media/usb/ttusb-budget", TV_GRABBER),
    class("kernel/drivers/media/usb/ttusb-dec", TV_GRABBER),
    class("kernel/drivers/media/usb/usbtv", TV_GRABBER),
    class(
        "kernel/net/netfilter/ipset",
        "iptables' address sets: the stick's firewall is nftables, which has its own",
    ),
    class(
        "kernel/net/netfilter/xt_set.ko",
        "iptables' address sets: the stick's firewall is nftables, which has its own",
    ),
    class(
        "kernel/drivers/crypto/intel/qat",
        "Intel QuickAssist crypto accelerators (servers)",
    ),
    class(
        "kernel/drivers/crypto/intel/iaa",
        "Intel in-memory analytics accelerators (servers)",
    ),
    class(
        "kernel/drivers/crypto/chelsio",
        "Chelsio crypto offload (servers)",
    ),
];
