//! Content digests (`sha256:<hex>`) and the hashing reader/writer that verify blobs as they
//! stream by. Used by the registry client, the store and the unpacker pipeline.
//!
//! Only sha256 is accepted: it is the only algorithm the OCI image spec requires and the only
//! one registries use in practice (image-spec descriptor.md, "Registered algorithms").

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lower-case hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    pub input: String,
    pub reason: &'static str,
}

impl Digest {
    /// The digest of a byte slice.
    pub fn of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Self {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Parses a bare 64-character hex string.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError {
                input: hex.to_string(),
                reason: "expected 64 lower-case hex characters",
            });
        }
        Ok(Self {
            hex: hex.to_string(),
        })
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError {
                input: s.to_string(),
                reason: "missing algorithm prefix",
            });
        };
        if algo != "sha256" {
            return Err(DigestError {
                input: s.to_string(),
                reason: "only sha256 is supported",
            });
        }
        Self::from_hex(hex).map_err(|e| DigestError {
            input: s.to_string(),
            reason: e.reason,
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 with a byte count.
#[derive(Default, Clone)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.inner)
    }
}

/// A reader that hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// Reads the rest of the stream (so that the digest covers all of it) and returns the
    /// digest, the byte count and the inner reader.
    pub fn finish(mut self) -> io::Result<(Digest, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.hasher.len();
        Ok((self.hasher.finish(), len, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
        }
    }

    pub fn finish(self) -> (Digest, u64, W) {
        let len = self.hasher.len();
        (self.hasher.finish(), len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_is_well_known() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn hashing_reader_covers_whole_stream() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let (d, n, _) = r.finish().unwrap();
        assert_eq!(n, 100_000);
        assert_eq!(d, Digest::of(&data));
    }
}
