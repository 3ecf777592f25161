//! Reading a checksum list for `--check`: the lines `sha256sum` and `b3sum`
//! write, parsed by the rules of `sha256sum -c`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::format::unescape_name;

/// One properly formatted line: a file and the digest it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The file, relative to the current directory unless absolute.
    pub path: PathBuf,
    /// The digest, lowercase hex.
    pub hex: String,
}

/// One line of a list that is not ignored, in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A properly formatted checksum line.
    Check(Expected),
    /// A line that is neither a checksum line, a comment nor empty: its
    /// number, from 1.
    Misformatted(u64),
}

/// Parses a list whose digests have `hex_len` hex digits.
///
/// As `sha256sum -c`: `#` lines and empty lines are ignored; a trailing
/// `\r` is dropped; a leading `\` means the name is escaped (`\\`, `\n`,
/// `\r`); the digest is followed by one space and a mode character
/// (` ` or `*`), or — in the "reversed" format, if the list's first line
/// used it — by one space only; the rest of the line is the name.
pub fn parse(text: &[u8], hex_len: usize) -> Vec<Line> {
    let mut parsed = Vec::new();
    // `Some(true)`: the list uses `<hex> <name>`; `Some(false)`: `<hex>  <name>`.
    let mut reversed = None;
    let lines = text
        .strip_suffix(b"\n")
        .unwrap_or(text)
        .split(|&b| b == b'\n');
    for (number, line) in (1..).zip(lines) {
        if line.first() == Some(&b'#') {
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        parsed.push(match parse_line(line, hex_len, &mut reversed) {
            Some(expected) => Line::Check(expected),
            None => Line::Misformatted(number),
        });
    }
    parsed
}

fn parse_line(line: &[u8], hex_len: usize, reversed: &mut Option<bool>) -> Option<Expected> {
    let line = trim_start(line);
    let (escaped, line) = match line.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let digest_end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (digest, rest) = line.split_at(digest_end);
    if digest.len() != hex_len || !digest.iter().all(u8::is_ascii_hexdigit) || rest.is_empty() {
        return None;
    }
    let rest = &rest[1..];
    let name = if rest.len() > 1 && matches!(rest[0], b' ' | b'*') && *reversed != Some(true) {
        *reversed = Some(false);
        &rest[1..]
    } else {
        // Never mixed with the usual format: a name with a leading space
        // must not be read as a reversed line.
        if *reversed == Some(false) {
            return None;
        }
        *reversed = Some(true);
        rest
    };
    if name.is_empty() {
        return None;
    }
    let name = if escaped {
        unescape_name(name)?
    } else {
        name.to_vec()
    };
    Some(Expected {
        path: PathBuf::from(OsString::from_vec(name)),
        hex: String::from_utf8_lossy(digest).to_ascii_lowercase(),
    })
}

fn trim_start(mut line: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = line {
        line = rest;
    }
    line
}
