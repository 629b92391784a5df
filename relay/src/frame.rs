//! Datagrams on a byte stream: each one as a 2-byte big-endian length and its
//! bytes. A datagram is never split across frames and never merged with another,
//! so the gateway receives exactly what the stick's charon or WireGuard sent.

/// The largest datagram a frame carries (an IPv4 UDP payload cannot be larger).
pub const MAX_DATAGRAM: usize = 65_507;

/// A frame's header: the datagram's length.
const HEADER: usize = 2;

/// Why a datagram cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("an empty datagram has no frame")]
    Empty,
    #[error("a datagram of {0} bytes is larger than {MAX_DATAGRAM}")]
    TooLarge(usize),
}

/// The frame of one datagram.
pub fn encode(datagram: &[u8]) -> Result<Vec<u8>, FrameError> {
    if datagram.is_empty() {
        return Err(FrameError::Empty);
    }
    let length = u16::try_from(datagram.len())
        .ok()
        .filter(|_| datagram.len() <= MAX_DATAGRAM)
        .ok_or(FrameError::TooLarge(datagram.len()))?;
    let mut frame = Vec::with_capacity(HEADER + datagram.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(datagram);
    Ok(frame)
}

/// Collects stream bytes and hands out whole datagrams.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Takes bytes as they came off the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole datagram, if one is complete. A zero length is an error
    /// of the peer: nothing sane sends it.
    pub fn next_datagram(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buffer.len() < HEADER {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([self.buffer[0], self.buffer[1]]));
        if length == 0 {
            return Err(FrameError::Empty);
        }
        if length > MAX_DATAGRAM {
            return Err(FrameError::TooLarge(length));
        }
        if self.buffer.len() < HEADER + length {
            return Ok(None);
        }
        let datagram = self.buffer[HEADER..HEADER + length].to_vec();
        self.buffer.drain(..HEADER + length);
        Ok(Some(datagram))
    }

    /// Bytes held that are not yet a whole datagram.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_survive_any_split_of_the_stream() {
        let datagrams: Vec<Vec<u8>> = vec![
            vec![0, 0, 0, 0, 1, 2, 3],
            vec![0xff; 1],
            (0..=255u8).cycle().take(1400).collect(),
            vec![7; MAX_DATAGRAM],
        ];
        let mut stream = Vec::new();
        for datagram in &datagrams {
            stream.extend(encode(datagram).expect("frame"));
        }
        for chunk in [1, 2, 3, 1000, 4096, stream.len()] {
            let mut reader = FrameReader::new();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                reader.push(piece);
                while let Some(datagram) = reader.next_datagram().expect("valid stream") {
                    out.push(datagram);
                }
            }
            assert_eq!(out, datagrams, "chunks of {chunk}");
            assert_eq!(reader.pending(), 0);
        }
    }

    type Next = Result<Option<Vec<u8>>, FrameError>;

    #[test]
    fn frames_and_bad_lengths() {
        let cases: &[(&str, &[u8], Next)] = &[
            ("nothing yet", &[], Ok(None)),
            ("half a header", &[0], Ok(None)),
            ("header only", &[0, 3], Ok(None)),
            ("short body", &[0, 3, 1, 2], Ok(None)),
            ("whole", &[0, 3, 1, 2, 3], Ok(Some(vec![1, 2, 3]))),
            ("zero length", &[0, 0, 9], Err(FrameError::Empty)),
            (
                "too large",
                &[0xff, 0xff],
                Err(FrameError::TooLarge(65_535)),
            ),
        ];
        for (name, bytes, want) in cases {
            let mut reader = FrameReader::new();
            reader.push(bytes);
            assert_eq!(&reader.next_datagram(), want, "{name}");
        }
        assert_eq!(encode(&[]), Err(FrameError::Empty));
        assert_eq!(
            encode(&vec![0; MAX_DATAGRAM + 1]),
            Err(FrameError::TooLarge(MAX_DATAGRAM + 1))
        );
        assert_eq!(encode(&[9, 8]).expect("frame"), vec![0, 2, 9, 8]);
    }
}
