//! One pass over a layer blob: the bytes are written to a staged blob file and hashed,
//! decompressed, hashed again (the diff id) and unpacked into a staged directory, all while
//! streaming, with no second read. Only when both digests match what the manifest and config
//! promised are the blob and the directory renamed into the store.
//!
//! Called by `pull` (bytes from the network, through a channel) and by `archive::load`
//! (bytes from a file); it is synchronous and runs on a blocking thread.

use std::io::{self, BufReader, Read, Write};

use crate::digest::{Digest, Hasher, HashingReader};
use crate::manifest::Compression;
use crate::store::{Staged, Store, StoreError};
use crate::unpack::{unpack_layer, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("blob {digest}: digest mismatch: content hashes to {actual}")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("blob {digest}: truncated or oversized: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("layer {digest}: uncompressed content hashes to {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest}: decompress")]
    Decompress {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {digest}: unpack")]
    Unpack {
        digest: String,
        #[source]
        source: UnpackError,
    },
    #[error("layer {digest}: write blob")]
    WriteBlob {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the caller expects of the blob; `None` fields are learned from the content
/// (`berth load` of a docker-archive does not know them up front).
#[derive(Debug, Clone)]
pub struct Expected {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub diff_id: Option<Digest>,
    pub compression: Compression,
}

/// What to do with the stream.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub blob: bool,
    pub layer: bool,
}

#[derive(Debug, Clone)]
pub struct Ingested {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub unpacked_size: u64,
}

/// Hashes and copies every byte read through it into the staged blob file.
struct Tee<'a, R> {
    inner: R,
    hasher: Hasher,
    out: Option<&'a mut std::fs::File>,
    /// The first bytes of the stream that are already in `out` (a resumed download).
    skip: u64,
    write_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let seen = self.hasher.len();
        self.hasher.update(&buf[..n]);
        let fresh = (n as u64).min((seen + n as u64).saturating_sub(self.skip)) as usize;
        if let Some(out) = self.out.as_mut().filter(|_| fresh > 0) {
            if let Err(e) = out.write_all(&buf[n - fresh..n]) {
                // Report the disk error as such, not as a decompression failure.
                let kind = e.kind();
                self.write_error = Some(e);
                return Err(io::Error::new(kind, "write blob"));
            }
        }
        Ok(n)
    }
}

fn label(expected: &Expected) -> String {
    expected
        .digest
        .as_ref()
        .map_or_else(|| "(from archive)".to_string(), Digest::to_string)
}

/// A download that continues a partial blob file: the stream read by `ingest` starts
/// with the file's `have` bytes, and only what follows them is appended.
pub struct Partial<'a> {
    pub file: &'a mut std::fs::File,
    pub path: &'a std::path::Path,
    pub have: u64,
}

/// Streams `reader` into the store as described above.
pub fn ingest<R: Read>(
    store: &Store,
    reader: R,
    expected: &Expected,
    wanted: Wanted,
) -> Result<Ingested, IngestError> {
    ingest_resuming(store, reader, expected, wanted, None)
}

/// `ingest`, writing the blob into a partial download instead of a new staging file.
pub fn ingest_resuming<R: Read>(
    store: &Store,
    reader: R,
    expected: &Expected,
    wanted: Wanted,
    partial: Option<Partial<'_>>,
) -> Result<Ingested, IngestError> {
    let name = label(expected);
    let (mut blob_file, blob_staged) = if wanted.blob && partial.is_none() {
        let (f, s) = store.stage_file()?;
        (Some(f), Some(s))
    } else {
        (None, None)
    };
    let (partial_path, skip, mut partial_file) = match partial {
        Some(p) => (Some(p.path), p.have, Some(p.file)),
        None => (None, 0, None),
    };
    let layer_staged = if wanted.layer {
        Some(store.stage_dir()?)
    } else {
        None
    };
    let mut tee = Tee {
        inner: reader,
        hasher: Hasher::default(),
        out: match partial_file.as_mut() {
            Some(f) => Some(&mut **f),
            None => blob_file.as_mut(),
        },
        skip,
        write_error: None,
    };
    let result = decompress_and_unpack(&mut tee, expected.compression, layer_staged.as_ref());
    if let Some(source) = tee.write_error.take() {
        return Err(IngestError::WriteBlob {
            digest: name,
            source,
        });
    }
    let (diff_id, unpacked_size) = match result {
        Ok(v) => v,
        Err(failure) => {
            // A bad blob (truncated, corrupted) usually surfaces as a decompression or tar
            // error first: read the rest and name the blob as the cause when it is.
            if io::copy(&mut tee, &mut io::sink()).is_ok() && tee.write_error.is_none() {
                let size = tee.hasher.len();
                let digest = std::mem::take(&mut tee.hasher).finish();
                check_blob(expected, &digest, size)?;
            }
            return Err(match failure {
                Failure::Decompress(source) => IngestError::Decompress {
                    digest: name,
                    source,
                },
                Failure::Unpack(source) => IngestError::Unpack {
                    digest: name,
                    source,
                },
            });
        }
    };
    // The compressed stream may continue past the end of the compressed data (padding,
    // trailing garbage): the digest covers it all.
    io::copy(&mut tee, &mut io::sink()).map_err(|source| IngestError::Decompress {
        digest: name.clone(),
        source,
    })?;
    if let Some(source) = tee.write_error.take() {
        return Err(IngestError::WriteBlob {
            digest: name,
            source,
        });
    }
    let size = tee.hasher.len();
    let digest = tee.hasher.finish();
    check(expected, &digest, size, &diff_id)?;
    if let (Some(f), Some(staged)) = (blob_file, blob_staged) {
        f.sync_data().map_err(|source| IngestError::WriteBlob {
            digest: name.clone(),
            source,
        })?;
        drop(f);
        store.commit_blob(staged, &digest)?;
    }
    if let (Some(f), Some(path)) = (partial_file, partial_path) {
        f.sync_data().map_err(|source| IngestError::WriteBlob {
            digest: name.clone(),
            source,
        })?;
        store.commit_partial(path, &digest)?;
    }
    if let Some(staged) = layer_staged {
        store.commit_layer(staged, &diff_id)?;
    }
    Ok(Ingested {
        digest,
        size,
        diff_id,
        unpacked_size,
    })
}

fn check(
    expected: &Expected,
    digest: &Digest,
    size: u64,
    diff_id: &Digest,
) -> Result<(), IngestError> {
    check_blob(expected, digest, size)?;
    if let Some(want) = &expected.diff_id {
        if want != diff_id {
            return Err(IngestError::DiffIdMismatch {
                digest: digest.clone(),
                expected: want.clone(),
                actual: diff_id.clone(),
            });
        }
    }
    Ok(())
}

/// Checks the blob's own size and digest against its descriptor.
fn check_blob(expected: &Expected, digest: &Digest, size: u64) -> Result<(), IngestError> {
    let Some(want) = &expected.digest else {
        return Ok(());
    };
    if let Some(want_size) = expected.size {
        if want_size != size {
            return Err(IngestError::SizeMismatch {
                digest: want.clone(),
                expected: want_size,
                actual: size,
            });
        }
    }
    if want != digest {
        return Err(IngestError::DigestMismatch {
            digest: want.clone(),
            actual: digest.clone(),
        });
    }
    Ok(())
}

enum Failure {
    Decompress(io::Error),
    Unpack(UnpackError),
}

/// Decompresses and (if a directory is given) unpacks; returns the diff id and the bytes of
/// file data written.
fn decompress_and_unpack<R: Read>(
    compressed: R,
    compression: Compression,
    dir: Option<&Staged>,
) -> Result<(Digest, u64), Failure> {
    match compression {
        Compression::None => tar_stream(compressed, dir),
        Compression::Gzip => tar_stream(
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, compressed)),
            dir,
        ),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                256 << 10,
                compressed,
            ))
            .map_err(Failure::Decompress)?;
            tar_stream(decoder, dir)
        }
    }
}

fn tar_stream<R: Read>(tar: R, dir: Option<&Staged>) -> Result<(Digest, u64), Failure> {
    let mut hashing = HashingReader::new(tar);
    let unpacked = match dir {
        Some(d) => match unpack_layer(&mut hashing, d.path()) {
            Ok(stats) => stats.bytes,
            Err(e) => return Err(Failure::Unpack(e)),
        },
        None => 0,
    };
    let (diff_id, _, _) = hashing.finish().map_err(Failure::Decompress)?;
    Ok((diff_id, unpacked))
}
