//! One large file, hashed with BLAKE3 by several threads: the file is cut
//! into equal subtrees of the BLAKE3 tree, each thread hashes its share
//! with `pread`, and the subtrees' chaining values are merged as the tree
//! does (`blake3::hazmat`). The digest is the one `b3sum` prints.
//!
//! SHA-256 cannot be split: it is one chain of blocks from start to end.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// Files from this size up are split (BLAKE3 only): below it, the threads
/// would cost more than they save, and the blocking stage already hashes
/// several files at once.
pub const SPLIT_FROM: u64 = 16 << 20;

/// Bytes per subtree: a power of two of BLAKE3's 1 KiB chunks, as the tree
/// requires, large enough for its SIMD code to hash many chunks per call.
pub const SUBTREE: u64 = 1 << 20;

/// The BLAKE3 hex digest of the first `len` bytes of `file`, hashed by
/// `threads` threads in subtrees of `subtree` bytes; `None` if the file is
/// no longer `len` bytes long (the caller then reads it as a stream).
///
/// # Panics
///
/// If `subtree` is not a power of two of at least 1 KiB, or `len` is not
/// more than `subtree` (the root must be a merge of two subtrees).
pub fn blake3_split(
    file: &File,
    len: u64,
    subtree: u64,
    threads: usize,
) -> io::Result<Option<String>> {
    assert!(subtree.is_power_of_two() && subtree >= blake3::CHUNK_LEN as u64);
    assert!(len > subtree, "one subtree is hashed as a stream");
    let count = len.div_ceil(subtree);
    let threads = (threads.max(1) as u64).min(count);
    // Contiguous shares: each thread reads its part of the file in order.
    let share = count.div_ceil(threads);
    let shares: Vec<io::Result<Option<Vec<ChainingValue>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let first = t * share;
                let end = ((t + 1) * share).min(count);
                scope.spawn(move || hash_subtrees(file, len, subtree, first..end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("hashing thread panicked")))
            })
            .collect()
    });
    let mut cvs = Vec::with_capacity(count as usize);
    for share in shares {
        match share? {
            Some(part) => cvs.extend(part),
            None => return Ok(None),
        }
    }
    // Grown since `fstat`: the stream reader hashes what is there now.
    let mut probe = [0u8; 1];
    if file.read_at(&mut probe, len)? != 0 {
        return Ok(None);
    }
    Ok(Some(merge(cvs).to_hex().to_string()))
}

/// Chaining values of subtrees `range` of a `len`-byte file; `None` if the
/// file ends early.
fn hash_subtrees(
    file: &File,
    len: u64,
    subtree: u64,
    range: std::ops::Range<u64>,
) -> io::Result<Option<Vec<ChainingValue>>> {
    let mut buf = vec![0u8; subtree as usize];
    let mut cvs = Vec::with_capacity((range.end - range.start) as usize);
    for i in range {
        let offset = i * subtree;
        let take = subtree.min(len - offset) as usize;
        let mut filled = 0;
        while filled < take {
            match file.read_at(&mut buf[filled..take], offset + filled as u64) {
                Ok(0) => return Ok(None),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let cv = blake3::Hasher::new()
            .set_input_offset(offset)
            .update(&buf[..take])
            .finalize_non_root();
        cvs.push(cv);
    }
    Ok(Some(cvs))
}

/// Merges equal subtrees (the last may be short) into the root, level by
/// level: pairs merge, an odd one out moves up, as in the BLAKE3 tree.
fn merge(mut cvs: Vec<ChainingValue>) -> blake3::Hash {
    debug_assert!(cvs.len() >= 2);
    while cvs.len() > 2 {
        let next = cvs
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => merge_subtrees_non_root(left, right, Mode::Hash),
                [odd] => *odd,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
        cvs = next;
    }
    merge_subtrees_root(&cvs[0], &cvs[1], Mode::Hash)
}
