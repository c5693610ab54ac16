//! Stream entries: as Redis gives them, and as a pipeline gets them.

use redis::Value;

use crate::error::Error;

/// An item read from a stream, with what the stream knows of it.
///
/// # Examples
///
/// ```
/// use flowgate_redis::Delivery;
///
/// let d = Delivery { id: "1700000000000-0".to_owned(), deliveries: 1, value: "hello" };
/// assert!(d.is_first());
/// assert_eq!(d.map(str::len).value, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T> {
    /// The entry's id in the stream, such as `1700000000000-0`.
    pub id: String,
    /// How many times the entry has been delivered to a consumer of the
    /// group, this time included: 1 the first time, more once it is read
    /// again after a crash, a cancel or a failure.
    pub deliveries: u64,
    /// The decoded payload.
    pub value: T,
}

impl<T> Delivery<T> {
    /// Whether this is the entry's first delivery: if not, an earlier one
    /// may have been processed in part, or in full but not acknowledged.
    pub fn is_first(&self) -> bool {
        self.deliveries <= 1
    }

    /// The same delivery with its value changed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Delivery<U> {
        Delivery {
            id: self.id,
            deliveries: self.deliveries,
            value: f(self.value),
        }
    }
}

/// An entry's fields and values, in order.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream entry as Redis gives it: its id and its fields, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Fields,
    /// Times delivered, this time included.
    pub(crate) deliveries: u64,
}

impl Entry {
    /// The value of the first field named `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }
}

/// The entries of an `XREADGROUP` or `XREAD` answer for one stream; none
/// when the read timed out. An entry deleted from the stream while pending
/// comes with no fields.
pub(crate) fn parse_read(value: Value) -> Result<Vec<Entry>, Error> {
    let streams = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.pop().unwrap_or(Value::Nil)),
                other => Err(protocol("XREADGROUP", &other)),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => return Err(protocol("XREADGROUP", &other)),
    };
    let mut entries = Vec::new();
    for stream in streams {
        entries.extend(parse_entries("XREADGROUP", stream)?);
    }
    Ok(entries)
}

/// A list of entries, each `[id, [field, value, ...]]`.
pub(crate) fn parse_entries(command: &'static str, value: Value) -> Result<Vec<Entry>, Error> {
    let Value::Array(list) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            other => Err(protocol(command, &other)),
        };
    };
    list.into_iter()
        .map(|entry| {
            let Value::Array(mut parts) = entry else {
                return Err(protocol(command, &entry));
            };
            if parts.len() != 2 {
                return Err(protocol(command, &Value::Array(parts)));
            }
            let fields = parts.pop().unwrap_or(Value::Nil);
            let id = text(command, parts.pop().unwrap_or(Value::Nil))?;
            let fields = match fields {
                Value::Nil => Vec::new(),
                Value::Array(flat) => pairs(command, flat)?,
                Value::Map(map) => map
                    .into_iter()
                    .map(|(k, v)| Ok((bytes(command, k)?, bytes(command, v)?)))
                    .collect::<Result<_, Error>>()?,
                other => return Err(protocol(command, &other)),
            };
            Ok(Entry {
                id,
                fields,
                deliveries: 1,
            })
        })
        .collect()
}

/// An `XAUTOCLAIM` answer: the cursor to go on from, the entries claimed,
/// and the ids of pending entries no longer in the stream.
pub(crate) fn parse_autoclaim(value: Value) -> Result<(String, Vec<Entry>, Vec<String>), Error> {
    const CMD: &str = "XAUTOCLAIM";
    let Value::Array(parts) = value else {
        return Err(protocol(CMD, &value));
    };
    let mut parts = parts.into_iter();
    let cursor = text(CMD, parts.next().unwrap_or(Value::Nil))?;
    let entries = parse_entries(CMD, parts.next().unwrap_or(Value::Nil))?;
    let deleted = match parts.next() {
        Some(Value::Array(ids)) => ids
            .into_iter()
            .map(|id| text(CMD, id))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    Ok((cursor, entries, deleted))
}

/// An extended `XPENDING` answer: each entry's id and delivery count.
pub(crate) fn parse_pending(value: Value) -> Result<Vec<(String, u64)>, Error> {
    const CMD: &str = "XPENDING";
    let Value::Array(rows) = value else {
        return Err(protocol(CMD, &value));
    };
    rows.into_iter()
        .map(|row| match row {
            Value::Array(cols) if cols.len() == 4 => {
                let mut cols = cols.into_iter();
                let id = text(CMD, cols.next().unwrap_or(Value::Nil))?;
                let count = match cols.nth(2) {
                    Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
                    other => return Err(protocol(CMD, &other.unwrap_or(Value::Nil))),
                };
                Ok((id, count))
            }
            other => Err(protocol(CMD, &other)),
        })
        .collect()
}

fn pairs(command: &'static str, flat: Vec<Value>) -> Result<Fields, Error> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut values = flat.into_iter();
    while let Some(field) = values.next() {
        let value = values.next().unwrap_or(Value::Nil);
        out.push((bytes(command, field)?, bytes(command, value)?));
    }
    Ok(out)
}

pub(crate) fn bytes(command: &'static str, value: Value) -> Result<Vec<u8>, Error> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        other => Err(protocol(command, &other)),
    }
}

pub(crate) fn text(command: &'static str, value: Value) -> Result<String, Error> {
    String::from_utf8(bytes(command, value)?).map_err(|err| Error::Protocol {
        command,
        detail: err.to_string(),
    })
}

fn protocol(command: &'static str, value: &Value) -> Error {
    Error::Protocol {
        command,
        detail: format!("{value:?}"),
    }
}
