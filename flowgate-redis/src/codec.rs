//! How items become stream entry payloads and back: a [`Codec`], with raw
//! bytes and UTF-8 text built in, and JSON through serde behind the `serde`
//! feature.

use std::fmt;

/// Turns items into the bytes of a stream entry's payload, and back.
///
/// A codec is cloned into each task that uses it, so keep it small (most
/// are unit structs).
///
/// # Examples
///
/// A codec of your own, for numbers written as decimal text:
///
/// ```
/// use flowgate_redis::{Codec, DecodeError};
///
/// #[derive(Clone)]
/// struct Decimal;
///
/// impl Codec for Decimal {
///     type Item = u64;
///     fn encode(&self, item: &u64) -> Vec<u8> {
///         item.to_string().into_bytes()
///     }
///     fn decode(&self, bytes: &[u8]) -> Result<u64, DecodeError> {
///         std::str::from_utf8(bytes)
///             .ok()
///             .and_then(|s| s.parse().ok())
///             .ok_or_else(|| DecodeError::new("not a decimal number"))
///     }
/// }
///
/// assert_eq!(Decimal.decode(&Decimal.encode(&42)).unwrap(), 42);
/// assert!(Decimal.decode(b"x").is_err());
/// ```
pub trait Codec: Clone + Send + Sync + 'static {
    /// The items this codec reads and writes.
    type Item: Send + 'static;

    /// The payload of `item`.
    fn encode(&self, item: &Self::Item) -> Vec<u8>;

    /// The item whose payload is `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Item, DecodeError>;
}

/// Why a payload could not be decoded.
///
/// # Examples
///
/// ```
/// let err = flowgate_redis::DecodeError::new("truncated");
/// assert_eq!(err.to_string(), "truncated");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl DecodeError {
    /// An error that says `why`.
    pub fn new(why: impl Into<String>) -> Self {
        DecodeError(why.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Payloads as they are: items are `Vec<u8>`.
///
/// # Examples
///
/// ```
/// use flowgate_redis::{Bytes, Codec};
///
/// assert_eq!(Bytes.decode(&Bytes.encode(&vec![0, 255])).unwrap(), [0, 255]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Codec for Bytes {
    type Item = Vec<u8>;

    fn encode(&self, item: &Vec<u8>) -> Vec<u8> {
        item.clone()
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Ok(bytes.to_vec())
    }
}

/// Payloads as UTF-8 text: items are `String`. A payload that is not valid
/// UTF-8 fails to decode.
///
/// # Examples
///
/// ```
/// use flowgate_redis::{Codec, Utf8};
///
/// assert_eq!(Utf8.decode(&Utf8.encode(&"héllo".to_owned())).unwrap(), "héllo");
/// assert!(Utf8.decode(&[0xff]).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Codec for Utf8 {
    type Item = String;

    fn encode(&self, item: &String) -> Vec<u8> {
        item.as_bytes().to_vec()
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|err| DecodeError::new(err.to_string()))
    }
}

/// Payloads as JSON, for any type serde can read and write (the `serde`
/// feature).
///
/// # Examples
///
/// ```
/// use flowgate_redis::{Codec, Json};
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Order { id: u32, qty: u16 }
///
/// let json = Json::<Order>::new();
/// let bytes = json.encode(&Order { id: 7, qty: 2 });
/// assert_eq!(bytes, br#"{"id":7,"qty":2}"#);
/// assert_eq!(json.decode(&bytes).unwrap(), Order { id: 7, qty: 2 });
/// assert!(json.decode(b"{}").is_err());
/// ```
#[cfg(feature = "serde")]
pub struct Json<T>(std::marker::PhantomData<fn() -> T>);

#[cfg(feature = "serde")]
impl<T> Json<T> {
    /// The JSON codec of `T`.
    pub fn new() -> Self {
        Json(std::marker::PhantomData)
    }
}

#[cfg(feature = "serde")]
impl<T> Default for Json<T> {
    fn default() -> Self {
        Json::new()
    }
}

#[cfg(feature = "serde")]
impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json::new()
    }
}

#[cfg(feature = "serde")]
impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json<{}>", std::any::type_name::<T>())
    }
}

#[cfg(feature = "serde")]
impl<T> Codec for Json<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    type Item = T;

    fn encode(&self, item: &T) -> Vec<u8> {
        // A type whose `Serialize` fails (a map with non-string keys) is a
        // fault of the program, not of the data: it is written as `null`,
        // which then fails to decode and is dead-lettered, not lost.
        serde_json::to_vec(item).unwrap_or_else(|_| b"null".to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        serde_json::from_slice(bytes).map_err(|err| DecodeError::new(err.to_string()))
    }
}
