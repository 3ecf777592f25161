//! Stream entries: [`EntryId`] and [`Entry`].

use std::fmt;
use std::str::FromStr;

/// The id of a stream entry, `<milliseconds>-<sequence>` as Redis prints it.
///
/// Ids are ordered like Redis orders them.
///
/// # Examples
///
/// ```
/// use flowline_redis::EntryId;
///
/// let id: EntryId = "1700000000000-3".parse().unwrap();
/// assert_eq!(id, EntryId::new(1_700_000_000_000, 3));
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(EntryId::new(5, 0) < EntryId::new(5, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence number within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// The id `ms-seq`.
    pub const fn new(ms: u64, seq: u64) -> Self {
        EntryId { ms, seq }
    }

    /// The smallest id after this one.
    pub(crate) fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId::new(self.ms, seq),
            None => EntryId::new(self.ms + 1, 0),
        }
    }

    pub(crate) fn parse_bytes(bytes: &[u8]) -> Option<Self> {
        // The ids of a reply are plain `<digits>-<digits>`: read them without
        // the UTF-8 check and `str::parse`, once per entry read.
        fn digits(b: &[u8]) -> Option<u64> {
            if b.is_empty() {
                return None;
            }
            b.iter().try_fold(0u64, |n, &c| {
                let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
                n.checked_mul(10)?.checked_add(u64::from(d))
            })
        }
        let fast = bytes.iter().position(|&b| b == b'-').and_then(|dash| {
            Some(EntryId::new(
                digits(&bytes[..dash])?,
                digits(&bytes[dash + 1..])?,
            ))
        });
        fast.or_else(|| std::str::from_utf8(bytes).ok()?.parse().ok())
    }

    /// Writes `<ms>-<seq>` into `buf` and returns the bytes written: for
    /// commands that send many ids (an `XACK` of a thousand) without the
    /// formatting machinery.
    pub(crate) fn encode(self, buf: &mut [u8; 41]) -> &[u8] {
        fn put(mut n: u64, buf: &mut [u8; 41], end: &mut usize) {
            loop {
                *end -= 1;
                buf[*end] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
        }
        let mut end = buf.len();
        put(self.seq, buf, &mut end);
        end -= 1;
        buf[end] = b'-';
        put(self.ms, buf, &mut end);
        &buf[end..]
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The text was not an entry id (`<ms>-<seq>` or `<ms>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEntryIdError(String);

impl fmt::Display for ParseEntryIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a stream entry id: {:?}", self.0)
    }
}

impl std::error::Error for ParseEntryIdError {}

impl FromStr for EntryId {
    type Err = ParseEntryIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseEntryIdError(s.to_owned());
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(EntryId::new(
            ms.parse().map_err(|_| bad())?,
            seq.parse().map_err(|_| bad())?,
        ))
    }
}

/// An entry's field/value pairs, in order.
pub type Fields = Vec<(String, Vec<u8>)>;

/// One stream entry: its id and its field/value pairs, in order.
///
/// # Examples
///
/// ```
/// use flowline_redis::{Entry, EntryId};
///
/// let entry = Entry::new(EntryId::new(1, 0), [("n", "7")]);
/// assert_eq!(entry.get_str("n"), Some("7"));
/// assert_eq!(entry.get("missing"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's id.
    pub id: EntryId,
    /// Field/value pairs, in the order they were added.
    pub fields: Fields,
}

impl Entry {
    /// An entry from field/value pairs.
    pub fn new<K, V>(id: EntryId, fields: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: AsRef<[u8]>,
    {
        let fields = fields
            .into_iter()
            .map(|(k, v)| (k.into(), v.as_ref().to_vec()))
            .collect();
        Entry { id, fields }
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// [`get`](Self::get) as UTF-8 text (`None` if missing or not UTF-8).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.get(name)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::EntryId;

    #[test]
    fn ids_encode_and_parse_as_display_and_from_str_do() {
        let ids = [
            EntryId::new(0, 0),
            EntryId::new(1_700_000_000_000, 3),
            EntryId::new(u64::MAX, u64::MAX),
            EntryId::new(10, 100),
        ];
        let mut buf = [0u8; 41];
        for id in ids {
            let text = id.to_string();
            assert_eq!(id.encode(&mut buf), text.as_bytes());
            assert_eq!(EntryId::parse_bytes(text.as_bytes()), Some(id));
        }
        // What the fast path declines goes to `FromStr`.
        assert_eq!(EntryId::parse_bytes(b"17"), Some(EntryId::new(17, 0)));
        assert_eq!(EntryId::parse_bytes(b"+5-1"), Some(EntryId::new(5, 1)));
        for bad in [
            &b""[..],
            b"-",
            b"1-",
            b"-1",
            b"1-x",
            b"18446744073709551616-0",
            b"1-2-3",
        ] {
            assert_eq!(
                EntryId::parse_bytes(bad),
                bad.escape_ascii().to_string().parse().ok(),
                "{bad:?}"
            );
        }
        assert_eq!(EntryId::parse_bytes(b"1-2-3"), None);
    }
}
