//! Output lines, byte for byte as the reference tools write them.
//!
//! | | `sha256sum` (coreutils 9.1) | `b3sum` |
//! |---|---|---|
//! | name written | raw bytes, non-UTF-8 included | lossy UTF-8 (U+FFFD) |
//! | escaped when it has | `\`, newline, carriage return | `\`, newline |
//! | escapes | `\\`, `\n`, `\r`, and a `\` before the digest | `\\`, `\n`, and a `\` before the digest |
//!
//! `sha256sum -c` escapes a name in its `OK` / `FAILED` lines only when the
//! name holds a newline (then `\\`, `\n` and `\r`).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::hash::Algo;

/// One listing line: `<hex>  <name>\n`, escaped as `algo`'s reference tool
/// escapes it, so `sha256sum -c` / `b3sum -c` can check it.
pub fn sum_line(algo: Algo, hex: &str, path: &Path) -> Vec<u8> {
    let (name, escaped): (Vec<u8>, bool) = match algo {
        Algo::Sha256 => {
            let raw = path.as_os_str().as_bytes();
            let escape = raw.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
            (escape_name(raw, escape, true), escape)
        }
        Algo::Blake3 => {
            let lossy = path.to_string_lossy();
            let raw = lossy.as_bytes();
            let escape = raw.iter().any(|b| matches!(b, b'\\' | b'\n'));
            (escape_name(raw, escape, false), escape)
        }
    };
    let mut line = Vec::with_capacity(name.len() + hex.len() + 4);
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(hex.as_bytes());
    line.extend_from_slice(b"  ");
    line.extend_from_slice(&name);
    line.push(b'\n');
    line
}

/// One `--check` result line: `<name>: <verdict>\n`, as `sha256sum -c`
/// writes it.
pub fn check_line(path: &Path, verdict: &str) -> Vec<u8> {
    let raw = path.as_os_str().as_bytes();
    let escape = raw.contains(&b'\n');
    let mut line = Vec::with_capacity(raw.len() + verdict.len() + 4);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(&escape_name(raw, escape, true));
    line.extend_from_slice(b": ");
    line.extend_from_slice(verdict.as_bytes());
    line.push(b'\n');
    line
}

fn escape_name(raw: &[u8], escape: bool, carriage_return: bool) -> Vec<u8> {
    if !escape {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len() + 8);
    for &b in raw {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' if carriage_return => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

/// Undoes `sha256sum`'s escaping of a name (`\\`, `\n`, `\r`); `None` for
/// any other backslash sequence or a trailing backslash, which make the
/// line improperly formatted.
pub fn unescape_name(escaped: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next()? {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                _ => return None,
            },
            0 => return None,
            _ => out.push(b),
        }
    }
    Some(out)
}

/// `path` for a message on stderr, quoted as coreutils quotes names in its
/// messages (gnulib's shell-escape style, UTF-8 locale): `'with space'`,
/// `"it's"`, `'tab'$'\t''x'`, `'x'$'\377''y'`.
pub fn quote(path: &Path) -> String {
    let raw = path.as_os_str().as_bytes();
    let text = std::str::from_utf8(raw).ok();
    let printable = text.is_some_and(|t| !t.chars().any(char::is_control));
    let special = |b: &u8| b" \t!\"$&'()*;<=>?[\\^`|:".contains(b);
    let needs_quotes = raw.is_empty()
        || !printable
        || raw.iter().any(special)
        || matches!(raw[0], b'#' | b'~')
        || raw == b"{"
        || raw == b"}";
    if !needs_quotes {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Some(t) = text.filter(|_| printable) {
        if t.contains('\'') && !t.contains(['"', '$', '`', '\\', '!']) {
            return format!("\"{t}\"");
        }
    }
    let mut out = String::from("'");
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => out.push_str("'\\''"),
                '\t' => out.push_str("'$'\\t''"),
                '\n' => out.push_str("'$'\\n''"),
                '\r' => out.push_str("'$'\\r''"),
                c if c.is_control() => out.push_str(&format!("'$'\\{:03o}''", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("'$'\\{b:03o}''"));
        }
    }
    out.push('\'');
    // An escape at the very end leaves an empty `''`, which coreutils drops.
    if out.ends_with("''") && out.len() > 2 {
        out.truncate(out.len() - 2);
    }
    out
}
