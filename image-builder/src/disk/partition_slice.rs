//! A byte range of a file (a partition of a disk image) as a file of its own.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// Read, Write and Seek over `len` bytes at `offset` of `inner`; nothing outside
/// the range is ever read or written.
#[derive(Debug)]
pub struct PartitionSlice<F> {
    inner: F,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<F: Seek> PartitionSlice<F> {
    /// The `len` bytes at `offset` of `inner`, positioned at their start.
    pub fn new(inner: F, offset: u64, len: u64) -> PartitionSlice<F> {
        PartitionSlice {
            inner,
            offset,
            len,
            pos: 0,
        }
    }

    fn remaining(&self, wanted: usize) -> usize {
        (self.len.saturating_sub(self.pos)).min(wanted as u64) as usize
    }

    /// Moves `inner` to the current position; called before each transfer
    /// because others may share `inner` (e.g. `&File`).
    fn seek_inner(&mut self) -> io::Result<()> {
        let at = self.offset.checked_add(self.pos).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "partition offset overflows")
        })?;
        self.inner.seek(SeekFrom::Start(at))?;
        Ok(())
    }
}

impl<F: Read + Seek> Read for PartitionSlice<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.remaining(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.seek_inner()?;
        let read = self.inner.read(&mut buf[..n])?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl<F: Write + Seek> Write for PartitionSlice<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.remaining(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.seek_inner()?;
        let written = self.inner.write(&buf[..n])?;
        self.pos += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<F: Seek> Seek for PartitionSlice<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(pos) => {
                self.pos = pos;
                Ok(pos)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the partition",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn seeks_are_relative_to_the_range() {
        let mut disk = Cursor::new(vec![0u8; 32]);
        let mut slice = PartitionSlice::new(&mut disk, 8, 16);
        // (seek, expected position or None for an error), applied in order.
        let cases = [
            (SeekFrom::Start(3), Some(3)),
            (SeekFrom::Current(4), Some(7)),
            (SeekFrom::Current(-7), Some(0)),
            (SeekFrom::Current(-1), None),
            (SeekFrom::End(0), Some(16)),
            (SeekFrom::End(-16), Some(0)),
            (SeekFrom::End(-17), None),
            (SeekFrom::Start(100), Some(100)),
        ];
        for (to, want) in cases {
            let got = slice.seek(to).ok();
            assert_eq!(got, want, "{to:?}");
        }
        // Past the end: reads give nothing, writes fail.
        let mut buf = [0u8; 4];
        assert_eq!(slice.read(&mut buf).expect("read"), 0);
        assert!(slice.write(b"x").is_err());
    }

    #[test]
    fn reads_and_writes_stay_inside_the_range() {
        let mut disk = Cursor::new(vec![b'.'; 16]);
        {
            let mut slice = PartitionSlice::new(&mut disk, 4, 8);
            slice.write_all(b"abcdefgh").expect("fits");
            assert!(slice.write_all(b"x").is_err(), "past the end");
            slice.seek(SeekFrom::Start(2)).expect("seek");
            let mut buf = [0u8; 16];
            let n = slice.read(&mut buf).expect("read");
            assert_eq!(&buf[..n], b"cdefgh");
            assert_eq!(slice.seek(SeekFrom::End(-1)).expect("seek"), 7);
            assert_eq!(slice.seek(SeekFrom::Current(-3)).expect("seek"), 4);
            assert!(slice.seek(SeekFrom::Current(-5)).is_err());
        }
        assert_eq!(disk.into_inner(), b"....abcdefgh....".to_vec());
    }
}
