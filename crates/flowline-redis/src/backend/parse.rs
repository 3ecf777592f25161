//! Stream replies read straight from `redis::Value`, without the client's
//! `StreamReadReply` (which clones the reply and builds a map per entry).

use redis::Value;

use crate::{Entry, EntryId, Fields};

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        // RESP3 replies keyed by stream come as a map.
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn id(v: Value) -> Option<EntryId> {
    EntryId::parse_bytes(&bytes(v)?)
}

fn fields(v: Value) -> Fields {
    let mut flat = array(v).into_iter();
    let mut out = Vec::with_capacity(flat.len() / 2);
    while let (Some(k), Some(val)) = (flat.next(), flat.next()) {
        let name = bytes(k).map(|b| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        });
        if let (Some(name), Some(val)) = (name, bytes(val)) {
            out.push((name, val));
        }
    }
    out
}

/// A list of `[id, [field, value, …]]` pairs.
pub(crate) fn entries(v: Value) -> Vec<Entry> {
    array(v)
        .into_iter()
        .filter_map(|e| {
            let mut parts = array(e).into_iter();
            let id = id(parts.next()?)?;
            Some(Entry {
                id,
                fields: parts.next().map(fields).unwrap_or_default(),
            })
        })
        .collect()
}

/// An `XREADGROUP` reply for one stream: `[[stream, entries]]`, or nil.
pub(crate) fn read_reply(v: Value) -> Vec<Entry> {
    let mut streams = array(v).into_iter();
    match streams.next() {
        // RESP2: [[name, entries]]; RESP3 map flattened: name, entries.
        Some(Value::Array(pair)) => pair.into_iter().nth(1).map(entries).unwrap_or_default(),
        Some(_) => streams.next().map(entries).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// An `XAUTOCLAIM` reply: `[cursor, entries, deleted ids]`.
pub(crate) fn claim_reply(v: Value) -> (EntryId, Vec<Entry>) {
    let mut parts = array(v).into_iter();
    let cursor = parts.next().and_then(id).unwrap_or_default();
    (cursor, parts.next().map(entries).unwrap_or_default())
}

/// An extended `XPENDING` reply: `[[id, consumer, idle, deliveries], …]` as
/// (id, deliveries).
pub(crate) fn pending_counts(v: Value) -> Vec<(EntryId, u64)> {
    array(v)
        .into_iter()
        .filter_map(|row| {
            let mut cols = array(row).into_iter();
            let id = id(cols.next()?)?;
            let deliveries = match cols.nth(2)? {
                Value::Int(n) => n as u64,
                other => std::str::from_utf8(&bytes(other)?).ok()?.parse().ok()?,
            };
            Some((id, deliveries))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_an_xreadgroup_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("jobs"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("n"), bulk("7")])]),
                Value::Array(vec![bulk("1-1"), Value::Nil]),
            ]),
        ])]);
        let got = read_reply(reply);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, EntryId::new(1, 0));
        assert_eq!(got[0].get_str("n"), Some("7"));
        assert!(got[1].fields.is_empty());
        assert!(read_reply(Value::Nil).is_empty());
    }

    #[test]
    fn reads_claim_and_pending_replies() {
        let claim = Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![Value::Array(vec![
                bulk("2-0"),
                Value::Array(vec![bulk("a"), bulk("b")]),
            ])]),
            Value::Array(vec![]),
        ]);
        let (cursor, got) = claim_reply(claim);
        assert_eq!(cursor, EntryId::new(5, 0));
        assert_eq!(got[0].id, EntryId::new(2, 0));
        let pending = Value::Array(vec![Value::Array(vec![
            bulk("2-0"),
            bulk("w1"),
            Value::Int(10),
            Value::Int(3),
        ])]);
        assert_eq!(pending_counts(pending), [(EntryId::new(2, 0), 3)]);
    }
}
