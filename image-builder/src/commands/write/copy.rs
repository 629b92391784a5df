//! Copying the image onto the device: in large blocks, hashed on the way, with
//! progress; then synced and read back from the device (not from the page cache).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Bytes per write: large enough for a USB stick's erase blocks.
const BLOCK: usize = 4 << 20;
/// How often progress is reported.
const REPORT_EVERY: Duration = Duration::from_secs(1);
const MIB: f64 = (1u64 << 20) as f64;

/// How far a copy or read-back has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// `written` or `read back`.
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    /// Bytes per second so far (0 before any time passed).
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.done as f64 / seconds
        } else {
            0.0
        }
    }

    /// `written 120.0 of 493.0 MiB (24 %), 35.2 MiB/s, 11 s left`.
    pub fn line(&self) -> String {
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let rate = self.rate();
        let left = if rate > 0.0 {
            format!(
                "{} s left",
                ((self.total - self.done.min(self.total)) as f64 / rate).ceil()
            )
        } else {
            "time left unknown".into()
        };
        format!(
            "{} {:.1} of {:.1} MiB ({percent} %), {:.1} MiB/s, {left}",
            self.phase,
            self.done as f64 / MIB,
            self.total as f64 / MIB,
            rate / MIB
        )
    }
}

/// Copies `total` bytes of `image` to `device` (opened exclusively: the kernel
/// refuses it while anything on it is mounted), syncs, and returns the SHA-256 of
/// what was written.
pub fn copy_to_device(
    image: &Path,
    device: &Path,
    total: u64,
    report: &mut dyn FnMut(&Progress),
) -> Result<[u8; 32]> {
    let mut source = std::fs::File::open(image)
        .with_context(|| format!("cannot open image {}", image.display()))?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_EXCL.bits())
        .open(device)
        .with_context(|| {
            format!(
                "cannot open {} for writing alone (is something on it in use?)",
                device.display()
            )
        })?;
    let hash = stream("written", &mut source, image, total, report, |block, at| {
        target
            .write_all(block)
            .with_context(|| format!("cannot write {} at byte {at}", device.display()))
    })?;
    target
        .sync_all()
        .with_context(|| format!("cannot sync {}", device.display()))?;
    Ok(hash)
}

/// Reads the first `total` bytes back from `device`, past the page cache (its
/// cached pages are dropped first), and returns their SHA-256.
pub fn read_back(device: &Path, total: u64, report: &mut dyn FnMut(&Progress)) -> Result<[u8; 32]> {
    let mut source = std::fs::File::open(device)
        .with_context(|| format!("cannot open {} to read it back", device.display()))?;
    nix::fcntl::posix_fadvise(
        std::os::fd::AsRawFd::as_raw_fd(&source),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .with_context(|| format!("cannot drop the cached pages of {}", device.display()))?;
    stream("read back", &mut source, device, total, report, |_, _| {
        Ok(())
    })
}

/// Reads `total` bytes of `source` (at `path`) in blocks, hands each to `sink`
/// with its offset, reports progress as `phase`, and returns their SHA-256.
fn stream(
    phase: &'static str,
    source: &mut std::fs::File,
    path: &Path,
    total: u64,
    report: &mut dyn FnMut(&Progress),
    mut sink: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<[u8; 32]> {
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; BLOCK];
    let started = Instant::now();
    let mut last_report = started;
    let mut done = 0u64;
    while done < total {
        let want = BLOCK.min((total - done) as usize);
        source
            .read_exact(&mut buffer[..want])
            .with_context(|| format!("cannot read {} at byte {done}", path.display()))?;
        sink(&buffer[..want], done)?;
        hash.update(&buffer[..want]);
        done += want as u64;
        if last_report.elapsed() >= REPORT_EVERY || done == total {
            last_report = Instant::now();
            report(&Progress {
                phase,
                done,
                total,
                elapsed: started.elapsed(),
            });
        }
    }
    Ok(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        let mib = 1u64 << 20;
        let cases = [
            (
                120 * mib,
                493 * mib,
                Duration::from_secs(4),
                "written 120.0 of 493.0 MiB (24 %), 30.0 MiB/s, 13 s left",
            ),
            (
                0,
                493 * mib,
                Duration::ZERO,
                "written 0.0 of 493.0 MiB (0 %), 0.0 MiB/s, time left unknown",
            ),
            (
                493 * mib,
                493 * mib,
                Duration::from_secs(10),
                "written 493.0 of 493.0 MiB (100 %), 49.3 MiB/s, 0 s left",
            ),
        ];
        for (done, total, elapsed, want) in cases {
            let progress = Progress {
                phase: "written",
                done,
                total,
                elapsed,
            };
            assert_eq!(progress.line(), want);
        }
    }

    #[test]
    fn copies_and_reads_back_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("image.raw");
        let device = dir.path().join("device");
        let bytes: Vec<u8> = (0..(BLOCK + 12345)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&image, &bytes).expect("image");
        std::fs::write(&device, vec![0xffu8; bytes.len() + 4096]).expect("device");
        let mut reports = Vec::new();
        let written = copy_to_device(&image, &device, bytes.len() as u64, &mut |p| {
            reports.push(p.done)
        })
        .expect("copy");
        let read = read_back(&device, bytes.len() as u64, &mut |_| {}).expect("read back");
        let want: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!((written, read), (want, want));
        assert_eq!(reports.last(), Some(&(bytes.len() as u64)));
        let on_device = std::fs::read(&device).expect("device");
        assert_eq!(&on_device[..bytes.len()], &bytes[..]);
        assert!(on_device[bytes.len()..].iter().all(|&b| b == 0xff));
    }
}
