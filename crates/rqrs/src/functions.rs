//! The function table: job function names (`"tasks.add"`, as in RQ's job data) mapped to
//! async or blocking Rust functions with typed arguments.
//!
//! A job's JSON `args` and `kwargs` are deserialized into the function's argument type:
//! - a struct takes positional arguments in field order and keyword arguments by field name,
//!   as a Python function does (`add(1, y=2)`), refusing extra or repeated ones;
//! - a tuple or `Vec` takes positional arguments only;
//! - `()` takes none; [`serde::de::IgnoredAny`] takes anything (read them from the context);
//! - any other type takes exactly one positional argument.
//!
//! A mismatch fails the job with a message naming the function; it never panics the worker.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

use crate::context::JobContext;
use crate::error::JobError;

type JobFuture = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;
type AsyncHandler =
    dyn Fn(JobContext, Vec<Value>, Map<String, Value>) -> Result<JobFuture, JobError> + Send + Sync;
type BlockingHandler =
    dyn Fn(JobContext, Vec<Value>, Map<String, Value>) -> Result<Value, JobError> + Send + Sync;

/// A registered function.
#[derive(Clone)]
pub(crate) enum Handler {
    /// Runs on the async runtime.
    Async(Arc<AsyncHandler>),
    /// Runs on the blocking thread pool.
    Blocking(Arc<BlockingHandler>),
}

/// The functions a worker can run, by name.
///
/// # Examples
/// ```
/// use rqrs::{Functions, JobContext, JobError};
/// use serde::Deserialize;
///
/// async fn add(_ctx: JobContext, (x, y): (i64, i64)) -> Result<i64, JobError> {
///     Ok(x + y)
/// }
///
/// #[derive(Deserialize)]
/// struct Resize { path: String, width: u32 }
///
/// fn resize(_ctx: JobContext, args: Resize) -> Result<String, JobError> {
///     Ok(format!("{} at {}px", args.path, args.width)) // blocking work is fine here
/// }
///
/// let functions = Functions::new()
///     .register("tasks.add", add)
///     .register_blocking("img.resize", resize);
/// assert!(functions.contains("img.resize"));
/// ```
#[derive(Clone, Default)]
pub struct Functions {
    table: HashMap<String, Handler>,
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl Functions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async function under `name`, replacing any function of that name.
    pub fn register<A, T, F, Fut>(mut self, name: impl Into<String>, function: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + 'static,
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, JobError>> + Send + 'static,
    {
        let name = name.into();
        let label = name.clone();
        let handler = move |ctx: JobContext,
                            args: Vec<Value>,
                            kwargs: Map<String, Value>|
              -> Result<JobFuture, JobError> {
            let args: A = decode_args(&label, args, kwargs)?;
            let future = function(ctx, args);
            let label = label.clone();
            Ok(Box::pin(
                async move { encode_return(&label, future.await?) },
            ))
        };
        self.table.insert(name, Handler::Async(Arc::new(handler)));
        self
    }

    /// Registers a blocking function under `name`: it runs on a thread of the blocking pool,
    /// so it may do blocking I/O or long computations.
    pub fn register_blocking<A, T, F>(mut self, name: impl Into<String>, function: F) -> Self
    where
        A: DeserializeOwned + 'static,
        T: Serialize + 'static,
        F: Fn(JobContext, A) -> Result<T, JobError> + Send + Sync + 'static,
    {
        let name = name.into();
        let label = name.clone();
        let handler = move |ctx: JobContext,
                            args: Vec<Value>,
                            kwargs: Map<String, Value>|
              -> Result<Value, JobError> {
            let args: A = decode_args(&label, args, kwargs)?;
            encode_return(&label, function(ctx, args)?)
        };
        self.table
            .insert(name, Handler::Blocking(Arc::new(handler)));
        self
    }

    /// Adds every function of `other`, replacing those of the same names.
    pub fn merge(mut self, other: Functions) -> Self {
        self.table.extend(other.table);
        self
    }

    /// Whether a function of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.table.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Handler> {
        self.table.get(name)
    }
}

fn decode_args<A: DeserializeOwned>(
    name: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<A, JobError> {
    A::deserialize(CallArgs { args, kwargs })
        .map_err(|error| JobError::new(format!("wrong arguments for {name}: {error}")))
}

fn encode_return<T: Serialize>(name: &str, value: T) -> Result<Value, JobError> {
    serde_json::to_value(value).map_err(|error| {
        JobError::new(format!(
            "the return value of {name} cannot be stored as JSON: {error}"
        ))
    })
}

/// A call's arguments as a serde [`Deserializer`](de::Deserializer) (see the module docs).
struct CallArgs {
    args: Vec<Value>,
    kwargs: Map<String, Value>,
}

type DeError = serde_json::Error;

impl CallArgs {
    fn positional_only(self) -> Result<Value, DeError> {
        if let Some(key) = self.kwargs.keys().next() {
            return Err(de::Error::custom(format!(
                "unexpected keyword argument {key:?}"
            )));
        }
        Ok(Value::Array(self.args))
    }

    fn single(self) -> Result<Value, DeError> {
        let count = self.args.len() + self.kwargs.len();
        match self.positional_only()? {
            Value::Array(mut args) if args.len() == 1 => Ok(args.remove(0)),
            _ => Err(de::Error::custom(format!(
                "takes 1 positional argument but {count} were given"
            ))),
        }
    }
}

macro_rules! single_argument {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.single()?.$method(visitor)
        })*
    };
}

impl<'de> de::Deserializer<'de> for CallArgs {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.args.is_empty() && !self.kwargs.is_empty() {
            return Value::Object(self.kwargs)
                .into_deserializer()
                .deserialize_any(visitor);
        }
        self.positional_only()?.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if self.args.len() > fields.len() {
            return Err(de::Error::custom(format!(
                "takes {} positional arguments but {} were given",
                fields.len(),
                self.args.len()
            )));
        }
        let mut named: Map<String, Value> = fields
            .iter()
            .map(|field| (*field).to_owned())
            .zip(self.args)
            .collect();
        for (key, value) in self.kwargs {
            if !fields.contains(&key.as_str()) {
                return Err(de::Error::custom(format!(
                    "unexpected keyword argument {key:?}"
                )));
            }
            if named.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "got multiple values for argument {key:?}"
                )));
            }
            named.insert(key, value);
        }
        Value::Object(named).deserialize_struct(name, fields, visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let count = self.args.len() + self.kwargs.len();
        if count > 0 {
            return Err(de::Error::custom(format!(
                "takes no arguments but {count} were given"
            )));
        }
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.positional_only()?.deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let given = self.args.len() + self.kwargs.len();
        if given != len {
            return Err(de::Error::custom(format!(
                "takes {len} positional arguments but {given} were given"
            )));
        }
        self.positional_only()?.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.positional_only()?
            .deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if !self.args.is_empty() {
            return Err(de::Error::custom("takes keyword arguments only"));
        }
        Value::Object(self.kwargs).deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.args.is_empty() && self.kwargs.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }

    single_argument!(
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_identifier
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn decode<A: DeserializeOwned>(args: Value, kwargs: Value) -> Result<A, String> {
        let Value::Array(args) = args else {
            panic!("args must be an array")
        };
        let Value::Object(kwargs) = kwargs else {
            panic!("kwargs must be an object")
        };
        decode_args("f", args, kwargs).map_err(|e| e.message().to_owned())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Add {
        x: i64,
        y: i64,
    }

    #[test]
    fn tuples_take_positional_arguments() {
        assert_eq!(decode::<(i64, i64)>(json!([1, 2]), json!({})), Ok((1, 2)));
        let error = decode::<(i64, i64)>(json!([1]), json!({})).unwrap_err();
        assert_eq!(
            error,
            "wrong arguments for f: takes 2 positional arguments but 1 were given"
        );
        let error = decode::<(i64, i64)>(json!(["a", 2]), json!({})).unwrap_err();
        assert!(error.contains("invalid type: string \"a\""), "{error}");
    }

    #[test]
    fn structs_take_positional_and_keyword_arguments() {
        assert_eq!(
            decode::<Add>(json!([1, 2]), json!({})),
            Ok(Add { x: 1, y: 2 })
        );
        assert_eq!(
            decode::<Add>(json!([1]), json!({"y": 2})),
            Ok(Add { x: 1, y: 2 })
        );
        assert_eq!(
            decode::<Add>(json!([]), json!({"y": 2, "x": 1})),
            Ok(Add { x: 1, y: 2 })
        );
        assert!(
            decode::<Add>(json!([1]), json!({"x": 2}))
                .unwrap_err()
                .contains("multiple values for argument \"x\"")
        );
        assert!(
            decode::<Add>(json!([1, 2]), json!({"z": 2}))
                .unwrap_err()
                .contains("unexpected keyword argument \"z\"")
        );
        assert!(
            decode::<Add>(json!([1, 2, 3]), json!({}))
                .unwrap_err()
                .contains("takes 2 positional")
        );
        assert!(
            decode::<Add>(json!([1]), json!({}))
                .unwrap_err()
                .contains("missing field `y`")
        );
    }

    #[test]
    fn unit_single_and_ignored_arguments() {
        assert_eq!(decode::<()>(json!([]), json!({})), Ok(()));
        assert!(
            decode::<()>(json!([1]), json!({}))
                .unwrap_err()
                .contains("takes no arguments")
        );
        assert_eq!(
            decode::<String>(json!(["boom"]), json!({})),
            Ok("boom".to_owned())
        );
        assert!(decode::<String>(json!([]), json!({})).is_err());
        assert!(decode::<de::IgnoredAny>(json!([1, {"a": 2}]), json!({"k": 3})).is_ok());
        assert_eq!(
            decode::<Vec<i64>>(json!([1, 2, 3]), json!({})),
            Ok(vec![1, 2, 3])
        );
    }
}
