//! The workers' control messages, as RQ's `send_*_command` publish them on
//! `rq:pubsub:<worker>`: `{"command": "shutdown"}`, `{"command": "kill-horse"}` and
//! `{"command": "stop-job", "job_id": "<id>"}`.

use serde_json::{Value, json};

use crate::command::Command;
use crate::job::JobId;

/// The JSON text of a command.
pub(crate) fn encode(command: &Command) -> String {
    match command {
        Command::Shutdown => json!({"command": "shutdown"}),
        Command::KillHorse => json!({"command": "kill-horse"}),
        Command::StopJob(id) => json!({"command": "stop-job", "job_id": id.as_str()}),
    }
    .to_string()
}

/// A command from its JSON text, or what is wrong with the text.
pub(crate) fn decode(text: &str) -> Result<Command, String> {
    let message: Value =
        serde_json::from_str(text).map_err(|error| format!("{text:?} is not JSON: {error}"))?;
    match message.get("command").and_then(Value::as_str) {
        Some("shutdown") => Ok(Command::Shutdown),
        Some("kill-horse") => Ok(Command::KillHorse),
        Some("stop-job") => match message.get("job_id").and_then(Value::as_str) {
            // An id a worker runs was read as stored, so it is taken as it is.
            Some(id) => Ok(Command::StopJob(JobId::from_stored(id))),
            None => Err(format!("{text:?}: a stop-job command without a job_id")),
        },
        _ => Err(format!("{text:?} is not a command rqrs knows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_in_rqs_words() {
        let stop = Command::StopJob(JobId::from_stored("a.b"));
        for command in [Command::Shutdown, Command::KillHorse, stop] {
            assert_eq!(decode(&encode(&command)), Ok(command));
        }
        assert_eq!(encode(&Command::KillHorse), r#"{"command":"kill-horse"}"#);
        assert!(decode("nope").unwrap_err().contains("not JSON"));
        assert!(
            decode(r#"{"command": "stop-job"}"#)
                .unwrap_err()
                .contains("job_id")
        );
        assert!(
            decode(r#"{"command": "dance"}"#)
                .unwrap_err()
                .contains("not a command")
        );
    }
}
