//! The call a job makes: a function name with JSON arguments, and RQ's default description of
//! it.

use serde_json::{Map, Value};

/// The call a job makes: a function name with JSON arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Call {
    pub(crate) func_name: String,
    pub(crate) args: Vec<Value>,
    pub(crate) kwargs: Map<String, Value>,
}

impl Call {
    /// RQ's default description: the call as Python would write it, `tasks.add(1, 'x', k=2)`,
    /// each argument's repr cut to 75 characters.
    pub(crate) fn description(&self) -> String {
        let mut parts: Vec<String> = self.args.iter().map(short_repr).collect();
        let mut kwargs: Vec<_> = self.kwargs.iter().collect();
        kwargs.sort_by(|a, b| a.0.cmp(b.0));
        parts.extend(
            kwargs
                .into_iter()
                .map(|(key, value)| format!("{key}={}", short_repr(value))),
        );
        format!("{}({})", self.func_name, parts.join(", "))
    }
}

fn short_repr(value: &Value) -> String {
    let repr = python_repr(value);
    match repr.char_indices().nth(75) {
        Some((cut, _)) => format!("{}...", &repr[..cut]),
        None => repr,
    }
}

/// A JSON value written as Python's `repr` of the value `json.loads` gives.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_repr(&Value::String(k.clone())),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
impl Call {
    /// A call of `func` with the arguments of a JSON array and the keyword arguments of a JSON
    /// object (anything else is none).
    pub(crate) fn of(func: &str, args: Value, kwargs: Value) -> Call {
        Call {
            func_name: func.to_owned(),
            args: match args {
                Value::Array(args) => args,
                _ => Vec::new(),
            },
            kwargs: match kwargs {
                Value::Object(kwargs) => kwargs,
                _ => Map::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(func: &str, args: Value, kwargs: Value) -> Call {
        Call::of(func, args, kwargs)
    }

    #[test]
    fn description_is_pythons_call_string() {
        let c = call(
            "tasks.add",
            json!(["x", 1, null, true, [1, "a"]]),
            json!({"b": 3, "a": {"k": 1.5}}),
        );
        assert_eq!(
            c.description(),
            "tasks.add('x', 1, None, True, [1, 'a'], a={'k': 1.5}, b=3)"
        );
        let long = call("f", json!(["y".repeat(100)]), json!({}));
        assert_eq!(long.description(), format!("f('{}...)", "y".repeat(74)));
    }
}
