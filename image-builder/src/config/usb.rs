//! `[usb] allow-classes`: the USB interface classes a device plugged in during the
//! session may have (see `root::usb_policy` for the rules made from them).

use serde::{Deserialize, Serialize};

/// USB interface classes by the names the config uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsbClass {
    Audio,
    Communications,
    Hid,
    Printer,
    MassStorage,
    Hub,
    CdcData,
    SmartCard,
    Video,
    AudioVideo,
    Wireless,
}

impl UsbClass {
    /// `bInterfaceClass` from the USB-IF class code table.
    pub fn code(self) -> u8 {
        match self {
            UsbClass::Audio => 0x01,
            UsbClass::Communications => 0x02,
            UsbClass::Hid => 0x03,
            UsbClass::Printer => 0x07,
            UsbClass::MassStorage => 0x08,
            UsbClass::Hub => 0x09,
            UsbClass::CdcData => 0x0a,
            UsbClass::SmartCard => 0x0b,
            UsbClass::Video => 0x0e,
            UsbClass::AudioVideo => 0x10,
            UsbClass::Wireless => 0xe0,
        }
    }
}

/// Keyboards, mice, headsets and webcams, behind hubs.
pub fn default_allowed() -> Vec<UsbClass> {
    vec![
        UsbClass::Hub,
        UsbClass::Hid,
        UsbClass::Audio,
        UsbClass::Video,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_parse_and_unknown_ones_are_named() {
        #[derive(Debug, Deserialize)]
        struct T {
            c: Vec<UsbClass>,
        }
        let ok: T = toml::from_str("c = [\"mass-storage\", \"hid\"]").expect("parses");
        assert_eq!(ok.c, vec![UsbClass::MassStorage, UsbClass::Hid]);
        let err = toml::from_str::<T>("c = [\"modem\"]").expect_err("unknown");
        assert!(err.to_string().contains("unknown variant `modem`"), "{err}");
        assert!(err.to_string().contains("mass-storage"), "{err}");
    }
}
