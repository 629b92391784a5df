//! What the built images' roots hold, read from the images' bytes (not from the
//! tree they were made of): no program that gains rights by being run, no tool
//! to change accounts, no perl, and none of the kernel modules the builder
//! removes (network protocols the stick never speaks, Thunderbolt, FireWire).
//! No boot needed.

use image_builder::root::harden::REMOVED_MODULES;
use image_builder::root::privileges::REMOVED_PROGRAMS;
use qemu_tests::machine::root_listing::{root_listing, RootEntry};

/// Named here as well as in the builder, so that emptying the builder's lists
/// cannot make this test pass.
const NEVER_IN_A_ROOT: &[&str] = &[
    "usr/bin/su",
    "usr/bin/passwd",
    "usr/bin/perl",
    "usr/lib/x86_64-linux-gnu/perl-base",
];
const NEVER_A_MODULE: &[&str] = &[
    "kernel/net/rxrpc",
    "kernel/net/sctp",
    "kernel/drivers/thunderbolt",
];

fn problems(entries: &[RootEntry]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in entries {
        if entry.kind == "file" && entry.mode & 0o6000 != 0 {
            found.push(format!("setuid/setgid {:o} {}", entry.mode, entry.path));
        }
        let removed = REMOVED_PROGRAMS.iter().chain(NEVER_IN_A_ROOT);
        if removed.clone().any(|p| entry.path == *p) {
            found.push(format!("present: {}", entry.path));
        }
        if entry.path.starts_with("usr/bin/perl5.") {
            found.push(format!("present: {}", entry.path));
        }
        if let Some(rest) = entry.path.strip_prefix("usr/lib/modules/") {
            let in_kernel = rest.split_once('/').map_or("", |(_, p)| p);
            let doomed = REMOVED_MODULES.iter().chain(NEVER_A_MODULE);
            if doomed.clone().any(|m| in_kernel == *m) {
                found.push(format!("module present: {}", entry.path));
            }
        }
    }
    found
}

#[test]
fn the_demo_and_conference_roots_hold_no_setuid_program_account_tool_perl_or_removed_module() {
    for (config, out) in [
        ("examples/demo.toml", "demo"),
        qemu_tests::lab::conference_lab::CONFERENCE_IMAGE,
    ] {
        let built = qemu_tests::built_image(config, out).expect("image builds");
        let entries = root_listing(&built.image).expect("root listed");
        assert!(
            entries.iter().any(|e| e.path == "usr/bin/kiosk") && entries.len() > 1000,
            "{config}: the listing is not a whole root ({} entries)",
            entries.len()
        );
        let found = problems(&entries);
        assert!(found.is_empty(), "{config}:\n{}", found.join("\n"));
        eprintln!(
            "{config}: {} entries, none setuid/setgid, no account tools, no perl",
            entries.len()
        );
    }
}

#[test]
fn the_check_names_what_it_finds() {
    let entry = |kind: &str, path: &str, mode: u32| RootEntry {
        kind: kind.into(),
        path: path.into(),
        mode,
        uid: 0,
        gid: 0,
    };
    let entries = [
        entry("file", "usr/bin/mount", 0o4755),
        entry("file", "usr/bin/ls", 0o755),
        entry("dir", "tmp", 0o1777),
        entry("dir", "var/mail", 0o2775),
        entry("file", "usr/bin/su", 0o755),
        entry("file", "usr/bin/perl5.40.1", 0o755),
        entry(
            "dir",
            "usr/lib/modules/6.12.0-amd64/kernel/net/rxrpc",
            0o755,
        ),
        entry("dir", "usr/lib/modules/6.12.0-amd64/kernel/net/ipv4", 0o755),
    ];
    assert_eq!(
        problems(&entries),
        [
            "setuid/setgid 4755 usr/bin/mount",
            "present: usr/bin/su",
            "present: usr/bin/perl5.40.1",
            "module present: usr/lib/modules/6.12.0-amd64/kernel/net/rxrpc",
        ]
    );
}
