//! `image-builder inspect`: what an image holds, without trusting it.

use std::path::Path;

use serde::Serialize;
use stick_manifest::Manifest;

use crate::commands::verify::{read_esp, VerifyError};

/// One partition as the table describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionInfo {
    pub number: usize,
    pub name: String,
    pub type_uuid: String,
    pub part_uuid: String,
    pub offset: u64,
    pub size: u64,
}

/// What `inspect` shows. The manifest is shown as found: its signature is not
/// checked here (that is `verify`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Inspection {
    pub disk_uuid: String,
    pub disk_size: u64,
    pub partitions: Vec<PartitionInfo>,
    pub esp_files: Vec<String>,
    pub root_hash: Option<String>,
    pub uki_cmdline: Option<String>,
    pub manifest: Option<Manifest>,
}

pub fn inspect_image(path: &Path) -> Result<Inspection, VerifyError> {
    let esp = read_esp(path)?;
    let manifest = esp
        .file(stick_manifest::MANIFEST_FILE)
        .and_then(|f| serde_json::from_slice::<Manifest>(&f.contents).ok());
    // Behind shim, GRUB chainloads the UKI from its own path.
    let uki_cmdline = [
        crate::boot::shim::UKI_BEHIND_SHIM_ESP_PATH,
        crate::boot::uki::UKI_ESP_PATH,
    ]
    .iter()
    .find_map(|path| esp.file(path))
    .and_then(|f| {
        crate::boot::pe::section(&f.contents, ".cmdline")
            .ok()
            .flatten()
    })
    .map(|c| {
        String::from_utf8_lossy(c)
            .trim_end_matches('\0')
            .trim()
            .to_string()
    });
    let root_hash = uki_cmdline.as_deref().and_then(|c| {
        c.split_whitespace()
            .find_map(|a| a.strip_prefix("roothash="))
            .map(str::to_string)
    });
    Ok(Inspection {
        disk_uuid: esp.table.disk_guid.to_string(),
        disk_size: esp.table.disk_size,
        partitions: esp
            .table
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionInfo {
                number: i + 1,
                name: p.name.clone(),
                type_uuid: p.type_guid.to_string(),
                part_uuid: p.part_guid.to_string(),
                offset: p.offset(),
                size: p.size(),
            })
            .collect(),
        esp_files: esp.files.iter().map(|f| f.path.clone()).collect(),
        root_hash,
        uki_cmdline,
        manifest,
    })
}

/// Human-readable rendering.
pub fn render(i: &Inspection) -> String {
    let mut out = format!("disk {} ({} bytes)\n", i.disk_uuid, i.disk_size);
    out.push_str("partitions:\n");
    for p in &i.partitions {
        out.push_str(&format!(
            "  {} {:<20} type {} uuid {} offset {} size {}\n",
            p.number, p.name, p.type_uuid, p.part_uuid, p.offset, p.size
        ));
    }
    out.push_str(&format!("ESP files: {}\n", i.esp_files.join(", ")));
    out.push_str(&format!(
        "root hash (UKI cmdline): {}\n",
        i.root_hash.as_deref().unwrap_or("none")
    ));
    match &i.manifest {
        Some(m) => out.push_str(&format!(
            "manifest (signature NOT checked; use verify): {} {} rollback-index {} built {} \
             kernel {} packages {}{}{}\n",
            m.name,
            m.version,
            m.rollback_index,
            m.build_time,
            m.kernel_version,
            m.packages.len(),
            if m.test_keys { " TEST KEYS" } else { "" },
            if m.test_fake_capture {
                " TEST FAKE CAMERA AND MICROPHONE"
            } else {
                ""
            }
        )),
        None => out.push_str("manifest: none readable\n"),
    }
    if let Some(kind) = i.manifest.as_ref().and_then(|m| m.personal_credential) {
        let personalised = i
            .partitions
            .iter()
            .any(|p| p.type_uuid == stick_manifest::personal::PERSONAL_TYPE_UUID);
        out.push_str(&format!(
            "personal credential: {kind:?}{} expected, {}\n",
            if i.manifest.as_ref().is_some_and(|m| m.personal_user) {
                " with the person's account (the gateway checks their password)"
            } else {
                ""
            },
            if personalised {
                "this stick (or file) is personalised"
            } else {
                "NOT personalised (image-builder personalize)"
            }
        ));
    }
    if i.manifest.as_ref().is_some_and(|m| m.wifi) {
        out.push_str(
            "wifi: joins Wi-Fi when no cable has a link; a stick may carry its person's \
             networks (personalize --wifi)\n",
        );
    }
    if let Some(m) = i.manifest.as_ref().filter(|m| !m.firmware.is_empty()) {
        let shares: Vec<String> = m
            .firmware
            .iter()
            .map(|s| {
                format!(
                    "{} {} files {:.1} MiB",
                    s.drivers,
                    s.files,
                    s.bytes as f64 / (1024.0 * 1024.0)
                )
            })
            .collect();
        out.push_str(&format!("firmware: {}\n", shares.join(", ")));
    }
    out
}
