//! A byte stream sealed in fixed-size segments with the STREAM construction (RustCrypto's
//! `aead::stream`, big-endian 32-bit counter): each segment's nonce carries its number and
//! whether it is the last, so a segment changed, dropped, repeated or moved, and a stream cut
//! short at any byte, do not open. Memory is bounded by two segments whatever the stream's
//! length. Used for archives of encrypted repositories.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::Payload;
use chacha20poly1305::XChaCha20Poly1305;

/// The plaintext bytes of every segment but the last.
pub const SEGMENT_BYTES: usize = 1 << 20;
/// XChaCha20's 24-byte nonce less STREAM's counter (4) and last-segment flag (1).
pub const NONCE_PREFIX_BYTES: usize = 19;
const TAG_BYTES: usize = 16;

/// Seals what is written to it; [`SealWriter::finish`] seals the last segment.
pub struct SealWriter<W: Write> {
    inner: W,
    encryptor: EncryptorBE32<XChaCha20Poly1305>,
    aad: Vec<u8>,
    buffer: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// `aad` is bound to every segment (the stream's header, so that it cannot be changed).
    pub fn new(
        inner: W,
        cipher: XChaCha20Poly1305,
        nonce_prefix: &[u8; NONCE_PREFIX_BYTES],
        aad: Vec<u8>,
    ) -> Self {
        Self {
            inner,
            encryptor: EncryptorBE32::from_aead(cipher, nonce_prefix.into()),
            aad,
            buffer: Vec::with_capacity(SEGMENT_BYTES + 1),
        }
    }

    /// Seal what is left as the last segment (possibly empty) and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let last = self
            .encryptor
            .encrypt_last(Payload {
                msg: &self.buffer,
                aad: &self.aad,
            })
            .map_err(|_| io::Error::other("the last segment cannot be sealed"))?;
        self.inner.write_all(&last)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        // A full segment is sealed only once more follows: the last one must be sealed as last.
        while self.buffer.len() > SEGMENT_BYTES {
            let rest = self.buffer.split_off(SEGMENT_BYTES);
            let segment = std::mem::replace(&mut self.buffer, rest);
            let sealed = self
                .encryptor
                .encrypt_next(Payload {
                    msg: &segment,
                    aad: &self.aad,
                })
                .map_err(|_| io::Error::other("a segment cannot be sealed"))?;
            self.inner.write_all(&sealed)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Opens a stream [`SealWriter`] wrote, failing (`InvalidData`) at the first segment that
/// does not authenticate.
pub struct OpenReader<R: Read> {
    inner: R,
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
    aad: Vec<u8>,
    /// The next sealed segment, read ahead to know whether the one before it is the last.
    ahead: Vec<u8>,
    plain: Vec<u8>,
    at: usize,
    segment: u64,
}

impl<R: Read> OpenReader<R> {
    pub fn new(
        mut inner: R,
        cipher: XChaCha20Poly1305,
        nonce_prefix: &[u8; NONCE_PREFIX_BYTES],
        aad: Vec<u8>,
    ) -> io::Result<Self> {
        let ahead = read_segment(&mut inner)?;
        if ahead.is_empty() {
            return Err(damaged("it ends before its first segment"));
        }
        Ok(Self {
            inner,
            decryptor: Some(DecryptorBE32::from_aead(cipher, nonce_prefix.into())),
            aad,
            ahead,
            plain: Vec::new(),
            at: 0,
            segment: 0,
        })
    }

    /// Open the next segment into `plain`; false once the last one was read.
    fn open_next(&mut self) -> io::Result<bool> {
        if self.ahead.is_empty() {
            return Ok(false);
        }
        let sealed = std::mem::take(&mut self.ahead);
        self.ahead = read_segment(&mut self.inner)?;
        let payload = Payload {
            msg: &sealed,
            aad: &self.aad,
        };
        let opened = if self.ahead.is_empty() {
            match self.decryptor.take() {
                Some(decryptor) => decryptor.decrypt_last(payload),
                None => return Ok(false),
            }
        } else {
            match self.decryptor.as_mut() {
                Some(decryptor) => decryptor.decrypt_next(payload),
                None => return Ok(false),
            }
        };
        self.plain = opened.map_err(|_| {
            damaged(&format!(
                "segment {} does not authenticate: it was changed, moved or cut short, or the stream ends early",
                self.segment
            ))
        })?;
        self.at = 0;
        self.segment += 1;
        Ok(true)
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if !self.open_next()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One sealed segment's bytes: a full one, or fewer at the end of the stream.
fn read_segment(inner: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut segment = Vec::with_capacity(SEGMENT_BYTES + TAG_BYTES);
    inner
        .take((SEGMENT_BYTES + TAG_BYTES) as u64)
        .read_to_end(&mut segment)?;
    Ok(segment)
}

fn damaged(detail: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::KeyInit;

    fn cipher() -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap()
    }

    const PREFIX: [u8; NONCE_PREFIX_BYTES] = [9u8; NONCE_PREFIX_BYTES];

    fn seal(plain: &[u8]) -> Vec<u8> {
        let mut writer = SealWriter::new(Vec::new(), cipher(), &PREFIX, b"header".to_vec());
        for piece in plain.chunks(100_003) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn open(sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut reader = OpenReader::new(sealed, cipher(), &PREFIX, b"header".to_vec())?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain)?;
        Ok(plain)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn streams_of_every_boundary_length_round_trip() {
        for len in [
            0,
            1,
            SEGMENT_BYTES - 1,
            SEGMENT_BYTES,
            SEGMENT_BYTES + 1,
            2 * SEGMENT_BYTES,
            2 * SEGMENT_BYTES + 17,
        ] {
            let plain = data(len);
            let sealed = seal(&plain);
            let segments = len / SEGMENT_BYTES + usize::from(len % SEGMENT_BYTES != 0 || len == 0);
            assert_eq!(sealed.len(), len + segments * TAG_BYTES, "length {len}");
            assert_eq!(open(&sealed).unwrap(), plain, "length {len}");
        }
    }

    #[test]
    fn a_changed_cut_dropped_or_moved_segment_does_not_open() {
        let plain = data(3 * SEGMENT_BYTES + 500);
        let sealed = seal(&plain);
        let full = SEGMENT_BYTES + TAG_BYTES;
        let refused = |bytes: &[u8], what: &str| {
            let err = open(bytes).expect_err(what);
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}");
        };
        let mut flipped = sealed.clone();
        flipped[full + 10] ^= 1;
        refused(&flipped, "a flipped bit");
        refused(&sealed[..sealed.len() - 1], "the last byte cut");
        refused(&sealed[..3 * full], "the last segment dropped");
        refused(&sealed[..2 * full + 100], "cut inside a segment");
        let mut swapped = sealed[full..2 * full].to_vec();
        swapped.extend_from_slice(&sealed[..full]);
        swapped.extend_from_slice(&sealed[2 * full..]);
        refused(&swapped, "two segments swapped");
        let mut repeated = sealed[..full].to_vec();
        repeated.extend_from_slice(&sealed);
        refused(&repeated, "a segment repeated");
        refused(&[], "nothing at all");
        let mut other_header =
            OpenReader::new(&sealed[..], cipher(), &PREFIX, b"another".to_vec()).unwrap();
        assert!(other_header.read_to_end(&mut Vec::new()).is_err());
    }
}
