//! Listings: byte for byte what `sha256sum` and `b3sum` print, for every
//! path given, in order; symlinks, special files, proc and sysfs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::job::{Algo, Entry};
use crate::support::Rt;
use crate::*;

fn sha256_listing_matches_sha256sum(rt: Rt) {
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (expected, _, code) = tool("sha256sum", &os(&tree.files));
    assert_eq!(code, 0);
    for parallelism in [1, 3, 16] {
        let got = run_cli(rt, options(vec![dir.0.clone()], Algo::Sha256, parallelism));
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected),
            "parallelism {parallelism}"
        );
        assert_eq!(
            got.out, expected,
            "byte for byte, parallelism {parallelism}"
        );
        let mut notes = skip_notes(&tree);
        notes.extend(
            tree.unreadable
                .iter()
                .map(|p| format!("checksum: {}: Permission denied", p.display())),
        );
        let mut err_lines: Vec<String> = got.err.lines().map(str::to_string).collect();
        err_lines.sort();
        notes.sort();
        assert_eq!(err_lines, notes);
        assert_eq!(got.status, u8::from(!tree.unreadable.is_empty()));
        let hashed: Vec<PathBuf> = got
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Hashed { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(hashed, tree.files);
        let bytes: u64 = got
            .entries
            .iter()
            .map(|e| match e {
                Entry::Hashed { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum();
        let total: u64 = tree
            .files
            .iter()
            .map(|f| fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(bytes, total);
    }
}

fn blake3_listing_matches_b3sum(rt: Rt) {
    if !b3sum_available("blake3_listing_matches_b3sum") {
        return;
    }
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (expected, _, code) = tool("b3sum", &os(&tree.files));
    assert_eq!(code, 0);
    for parallelism in [1, 4] {
        let got = run_cli(rt, options(vec![dir.0.clone()], Algo::Blake3, parallelism));
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected),
            "parallelism {parallelism}"
        );
        assert_eq!(
            got.out, expected,
            "byte for byte, parallelism {parallelism}"
        );
    }
}

/// `checksum FILE /missing DIR`: every path, in order; the missing one named
/// on stderr as `sha256sum` names it; status 1.
fn every_path_is_used_in_order(rt: Rt) {
    let dir = TempTree::new();
    fs::write(dir.path("one"), b"1").unwrap();
    fs::create_dir(dir.path("d")).unwrap();
    fs::write(dir.path("d/two"), b"2").unwrap();
    fs::write(dir.path("d/three"), b"3").unwrap();
    let missing = dir.path("missing file");
    let args = [dir.path("one"), missing.clone(), dir.path("d")];
    let (expected, expected_err, code) = tool(
        "sha256sum",
        &os(&[
            dir.path("one"),
            missing,
            dir.path("d/three"),
            dir.path("d/two"),
        ]),
    );
    assert_eq!(code, 1);
    let got = run_cli(rt, options(args.to_vec(), Algo::Sha256, 2));
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(got.err, expected_err.replace("sha256sum: ", "checksum: "));
    assert_eq!(got.status, 1);
}

/// A symlink named as an argument is followed, to a file or a directory, as
/// `sha256sum` follows it; inside a walk it is skipped and named.
fn symlink_arguments_are_followed(rt: Rt) {
    let dir = TempTree::new();
    fs::create_dir(dir.path("real")).unwrap();
    fs::write(dir.path("real/f"), b"content").unwrap();
    std::os::unix::fs::symlink(dir.path("real/f"), dir.path("link")).unwrap();
    std::os::unix::fs::symlink(dir.path("real"), dir.path("dirlink")).unwrap();
    let got = run_cli(
        rt,
        options(vec![dir.path("link"), dir.path("dirlink")], Algo::Sha256, 2),
    );
    let (expected, _, _) = tool("sha256sum", &os(&[dir.path("link"), dir.path("dirlink/f")]));
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!((got.status, got.err.as_str()), (0, ""));
}

/// `/proc/self` used to read `/proc/self/pagemap` for hours: directories on
/// proc and sysfs are skipped with a note, files named on them are read to
/// their end though `stat` says they are empty.
fn proc_and_sys_are_skipped_unless_named(rt: Rt) {
    let version = PathBuf::from("/proc/version");
    assert_eq!(
        fs::metadata(&version).unwrap().len(),
        0,
        "a size-0 procfs file"
    );
    let mut args = vec![PathBuf::from("/proc/self"), version.clone()];
    let mut notes =
        vec!["checksum: /proc/self: skipped (proc filesystem; name its files to read them)"];
    if Path::new("/sys/kernel").is_dir() {
        args.push(PathBuf::from("/sys/kernel"));
        notes.push("checksum: /sys/kernel: skipped (sysfs; name its files to read them)");
    }
    let got = run_cli(rt, options(args.to_vec(), Algo::Sha256, 2));
    let (expected, _, _) = tool("sha256sum", &[version.as_os_str()]);
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(got.err.lines().collect::<Vec<_>>(), notes);
    assert_eq!(got.status, 0);
}

on_all_runtimes!(
    sha256_listing_matches_sha256sum,
    blake3_listing_matches_b3sum,
    every_path_is_used_in_order,
    symlink_arguments_are_followed,
    proc_and_sys_are_skipped_unless_named,
    large_blake3_files_match_b3sum,
);

/// A large file under `--algo blake3` is hashed by several threads in
/// subtrees: same digest as `b3sum`, at the threshold and around it.
fn large_blake3_files_match_b3sum(rt: Rt) {
    if !b3sum_available("large_blake3_files_match_b3sum") {
        return;
    }
    let dir = TempTree::new();
    let from = job::split::SPLIT_FROM as usize;
    let data = bytes(from + 3 * job::split::SUBTREE as usize + 17, 7);
    let mut files = Vec::new();
    for len in [from - 1, from, from + 1, data.len()] {
        let path = dir.path(format!("f{len}"));
        fs::write(&path, &data[..len]).unwrap();
        files.push(path);
    }
    let (expected, _, code) = tool("b3sum", &os(&files));
    assert_eq!(code, 0);
    let got = run_cli(rt, options(files, Algo::Blake3, 2));
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!((got.status, got.err.as_str()), (0, ""));
}

/// The split itself against `blake3::hash`, with subtrees small enough to
/// make deep, uneven trees: 2 to 41 subtrees, the last full or short, 1 to 5
/// threads.
#[test]
fn split_hash_equals_the_streamed_hash() {
    let dir = TempTree::new();
    let data = bytes(41 * 4096, 3);
    for subtree in [1024u64, 4096] {
        for len in [
            subtree + 1,
            2 * subtree,
            3 * subtree - 5,
            8 * subtree,
            41 * 4096,
        ] {
            let data = &data[..len as usize];
            let path = dir.path(format!("{subtree}-{len}"));
            fs::write(&path, data).unwrap();
            let file = fs::File::open(&path).unwrap();
            let expected = blake3::hash(data).to_hex().to_string();
            for threads in 1..=5 {
                let got = job::split::blake3_split(&file, len, subtree, threads).unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(expected.as_str()),
                    "{subtree} {len} {threads}"
                );
            }
            // Grown or shrunk since its size was taken: `None`, read as a stream.
            if len - 1 > subtree {
                let grown = job::split::blake3_split(&file, len - 1, subtree, 2).unwrap();
                assert_eq!(grown, None);
            }
            let shrunk = job::split::blake3_split(&file, len + 1, subtree, 2).unwrap();
            assert_eq!(shrunk, None);
        }
    }
}
