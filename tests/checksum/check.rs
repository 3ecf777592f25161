//! `--check`: the same stdout, stderr and status as `sha256sum -c`, and
//! lists parsed by its rules.

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;

use crate::job::cli;
use crate::job::list::Line;
use crate::job::Algo;
use crate::support::Rt;
use crate::*;

/// `sha256sum -c` and `checksum --check` on the same list, after the tree
/// changed: same stdout, same stderr (program name aside), same status.
fn check_matches_sha256sum_c(rt: Rt) {
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (listing, _, _) = tool("sha256sum", &os(&tree.files));
    let mut list = listing.clone();
    list.extend_from_slice(b"this line is not a checksum line\n# a comment\n\n");
    let list_path = dir.path("SUMS");
    fs::write(&list_path, &list).unwrap();
    // One file changed, two gone (one with a newline in its name).
    fs::write(dir.path("with space.txt"), b"changed").unwrap();
    fs::remove_file(dir.path("a-b")).unwrap();
    fs::remove_file(dir.path("new\nline")).unwrap();

    let (expected_out, expected_err, code) =
        tool("sha256sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!(code, 1);
    let mut opts = options(vec![list_path.clone()], Algo::Sha256, 3);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected_out)
    );
    assert_eq!(got.out, expected_out);
    assert_eq!(got.err, expected_err.replace("sha256sum: ", "checksum: "));
    assert_eq!(got.status, 1);
    // The counts, spelled out, so the comparison cannot pass vacuously.
    assert!(got.err.contains("WARNING: 1 line is improperly formatted"));
    assert!(got
        .err
        .contains("WARNING: 2 listed files could not be read"));
    assert!(got
        .err
        .contains("WARNING: 1 computed checksum did NOT match"));

    // Restored, everything checks: status 0, nothing on stderr.
    fs::write(&list_path, &listing).unwrap();
    fs::write(dir.path("with space.txt"), bytes(0, 0)).unwrap();
    fs::write(dir.path("a-b"), b"dash\n").unwrap();
    fs::write(dir.path("new\nline"), bytes(200, 2)).unwrap();
    let (expected_out, _, code) = tool("sha256sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!(code, 0);
    let mut opts = options(vec![list_path], Algo::Sha256, 3);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!((got.status, got.err.as_str()), (0, ""));
    assert_eq!(got.out, expected_out);
}

/// `--quiet`, `--status`, `--ignore-missing`, `--strict`, `--warn` as
/// `sha256sum -c` has them: same stdout, stderr and status for each.
fn check_options_match_sha256sum_c(rt: Rt) {
    let dir = TempTree::new();
    for (name, data) in [("ok", "1"), ("changed", "2"), ("gone", "3")] {
        fs::write(dir.path(name), data).unwrap();
    }
    let files = [dir.path("ok"), dir.path("changed"), dir.path("gone")];
    let (mut list, _, _) = tool("sha256sum", &os(&files));
    list.extend_from_slice(b"junk\n");
    fs::write(dir.path("changed"), "two").unwrap();
    fs::remove_file(dir.path("gone")).unwrap();
    let list_path = dir.path("SUMS");
    fs::write(&list_path, &list).unwrap();
    let (only_missing, _, _) = tool("sha256sum", &os(&files[..1]));
    let only_missing = String::from_utf8(only_missing)
        .unwrap()
        .replace("/ok", "/gone");
    let missing_path = dir.path("MISSING");
    fs::write(&missing_path, only_missing).unwrap();

    let cases: [(&[&str], &PathBuf); 7] = [
        (&["--quiet"], &list_path),
        (&["--status"], &list_path),
        (&["--ignore-missing"], &list_path),
        (&["--strict"], &list_path),
        (&["--warn"], &list_path),
        (&["--warn", "--quiet"], &list_path),
        (&["--ignore-missing"], &missing_path),
    ];
    for (flags, list) in cases {
        let mut args: Vec<&OsStr> = vec![OsStr::new("-c")];
        args.extend(flags.iter().map(OsStr::new));
        args.push(list.as_os_str());
        let (expected_out, expected_err, code) = tool("sha256sum", &args);
        let opts = cli::parse_args(args.iter().map(|a| a.to_os_string())).unwrap();
        let got = run_cli(rt, opts);
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected_out),
            "{flags:?}"
        );
        assert_eq!(
            got.err,
            expected_err.replace("sha256sum: ", "checksum: "),
            "{flags:?}"
        );
        assert_eq!(i32::from(got.status), code, "{flags:?}");
    }
}

/// A list `b3sum` wrote checks with `--algo blake3`, and `b3sum -c` checks
/// the listing `checksum --algo blake3` wrote.
fn blake3_lists_check_both_ways(rt: Rt) {
    if !b3sum_available("blake3_lists_check_both_ways") {
        return;
    }
    let dir = TempTree::new();
    // b3sum writes non-UTF-8 names lossily: such lines cannot be checked.
    let tree = build_tree(&dir, false);
    let (listing, _, _) = tool("b3sum", &os(&tree.files));
    let list_path = dir.path("B3SUMS");
    fs::write(&list_path, &listing).unwrap();
    let mut opts = options(vec![list_path.clone()], Algo::Blake3, 2);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!((got.status, got.err.as_str()), (0, ""));
    let oks = got
        .out
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b": OK"))
        .count();
    assert_eq!(oks, tree.files.len());

    let ours = run_cli(rt, options(tree.files.clone(), Algo::Blake3, 2));
    fs::write(&list_path, &ours.out).unwrap();
    let (_, err, code) = tool("b3sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!((code, err.as_str()), (0, ""));
}

on_all_runtimes!(
    check_matches_sha256sum_c,
    check_options_match_sha256sum_c,
    blake3_lists_check_both_ways,
);

#[test]
fn list_lines_parse_as_sha256sum_parses_them() {
    let hex = "ab".repeat(32);
    let text = format!(
        "{hex}  plain\n\
         \\{hex}  new\\nline\\\\\n\
         {hex} *binary\r\n\
         # comment\n\
         \n\
         {hex}  \n\
         \\{hex}  bad\\escape\n\
         {short}  short\n\
         {hex}x  long\n\
         {hex} reversed\n",
        short = &hex[..62],
    );
    let lines = job::list::parse(text.as_bytes(), 64);
    let mut names = Vec::new();
    let mut misformatted = Vec::new();
    for line in lines {
        match line {
            Line::Check(expected) => {
                assert_eq!(expected.hex, hex);
                names.push(expected.path);
            }
            Line::Misformatted(number) => misformatted.push(number),
        }
    }
    assert_eq!(
        names,
        [
            PathBuf::from("plain"),
            PathBuf::from("new\nline\\"),
            PathBuf::from("binary")
        ]
    );
    // No name; a bad escape; a short digest; a long one; a reversed line
    // after usual ones.
    assert_eq!(misformatted, [6, 7, 8, 9, 10]);

    // A list in the reversed format (`<hex> <name>`) throughout.
    let lines = job::list::parse(format!("{hex} one\n{hex} two\n").as_bytes(), 64);
    let two = Line::Check(job::list::Expected {
        path: PathBuf::from("two"),
        hex,
    });
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], two);
}
