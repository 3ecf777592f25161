//! Reading and hashing one file (blocking): the work each thread of the
//! blocking stage does.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use sha2::Digest;

use super::split::{blake3_split, SPLIT_FROM, SUBTREE};

/// Bytes read per `read` call: large enough that BLAKE3 hashes many 1 KiB
/// chunks at once with SIMD, small enough to stay in L2.
const READ_BUF: usize = 256 * 1024;

thread_local! {
    // One buffer per blocking thread: a fresh zeroed 256 KiB per file would
    // cost more than hashing a small file.
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// The hash function: the one of `sha256sum` or of `b3sum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// SHA-256, as `sha256sum` computes it.
    Sha256,
    /// BLAKE3 (256-bit output), as `b3sum` computes it.
    Blake3,
}

impl Algo {
    /// `sha256` or `blake3`.
    pub fn parse(name: &str) -> Option<Algo> {
        match name {
            "sha256" => Some(Algo::Sha256),
            "blake3" => Some(Algo::Blake3),
            _ => None,
        }
    }

    /// The name `--algo` takes.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Blake3 => "blake3",
        }
    }

    /// Length of a digest in hex digits (both are 256-bit).
    pub fn hex_len(self) -> usize {
        64
    }
}

/// How a path is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Named on the command line or in a `--check` list: symlinks are
    /// followed and anything that is not a directory is read, FIFOs and
    /// devices included (`checksum <(cmd)` works), as `sha256sum` does.
    Named,
    /// Found by the directory walk as a regular file: opened without
    /// blocking and read only if it still is a regular file, so a file
    /// swapped for a FIFO after the walk saw it cannot hang the run.
    Found,
}

/// Reads `path` to its end and hashes it: `(lowercase hex digest, bytes)`.
///
/// Reads until `read` returns 0, never trusting the size `stat` gives:
/// files on proc and sysfs say 0 bytes and have content.
///
/// A BLAKE3 file of [`SPLIT_FROM`] bytes or more is hashed by one thread per
/// core ([`blake3_split`]), as `b3sum` hashes a large file.
pub fn hash_file(algo: Algo, path: &Path, open: Open) -> io::Result<(String, u64)> {
    let (mut file, meta) = match open {
        Open::Named => {
            let file = File::open(path)?;
            let meta = file.metadata()?;
            (file, meta)
        }
        Open::Found => open_regular(path)?,
    };
    if algo == Algo::Blake3 && meta.is_file() && meta.len() >= SPLIT_FROM {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(hex) = blake3_split(&file, meta.len(), SUBTREE, threads)? {
            return Ok((hex, meta.len()));
        }
    }
    hash_reader(algo, &mut file)
}

/// Hashes everything `reader` yields: `(lowercase hex digest, bytes)`.
pub fn hash_reader(algo: Algo, reader: &mut dyn Read) -> io::Result<(String, u64)> {
    enum Hasher {
        Sha256(sha2::Sha256),
        Blake3(Box<blake3::Hasher>),
    }
    let mut hasher = match algo {
        Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        Algo::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
    };
    let bytes = BUF.with_borrow_mut(|buf| -> io::Result<u64> {
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(bytes),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match &mut hasher {
                Hasher::Sha256(h) => h.update(&buf[..n]),
                Hasher::Blake3(h) => {
                    h.update(&buf[..n]);
                }
            }
            bytes += n as u64;
        }
    })?;
    let hex = match hasher {
        Hasher::Sha256(h) => to_hex(&h.finalize()),
        Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
    };
    Ok((hex, bytes))
}

/// Opens `path` without blocking even if it was swapped for a FIFO after it
/// was checked (O_NONBLOCK on Linux), and checks again that it is a file.
fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((file, meta))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// An I/O error as coreutils words it: `No such file or directory`, without
/// Rust's ` (os error 2)` suffix.
pub fn describe_error(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}
