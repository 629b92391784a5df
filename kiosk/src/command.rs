//! The one way this program runs external tools: the error names the command line
//! and carries the tail of its stderr.

use std::process::Command;

/// How many lines of a failed command's stderr go into the error.
const STDERR_TAIL_LINES: usize = 10;

/// An external command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{command_line}`: {source}")]
    Spawn {
        command_line: String,
        source: std::io::Error,
    },
    #[error("`{command_line}` failed ({status}): {stderr_tail}")]
    Failed {
        command_line: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
    #[error("`{command_line}` printed output that is not UTF-8")]
    NotUtf8 { command_line: String },
}

/// Runs `program` with `args`, returns its stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String, CommandError> {
    let command_line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!("running {command_line}");
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| CommandError::Spawn {
            command_line: command_line.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(CommandError::Failed {
            command_line,
            status: output.status,
            stderr_tail: stderr_tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    String::from_utf8(output.stdout).map_err(|_| CommandError::NotUtf8 { command_line })
}

/// The last [`STDERR_TAIL_LINES`] non-empty lines of `stderr`, joined with "; ".
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
    if tail.is_empty() {
        "(no stderr)".to_string()
    } else {
        tail.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        let cases: &[(&str, &str, &str)] = &[
            (
                "dmsetup",
                "Device does not exist.\nCommand failed.\n",
                "Device does not exist.; Command failed.",
            ),
            ("empty", "", "(no stderr)"),
            ("blank lines dropped", "\n  \nonly\n\n", "only"),
            (
                "long",
                &long,
                "line 3; line 4; line 5; line 6; line 7; line 8; line 9; line 10; line 11; line 12",
            ),
        ];
        for (name, stderr, want) in cases {
            assert_eq!(stderr_tail(stderr), *want, "{name}");
        }
    }

    #[test]
    fn failure_names_command_and_stderr() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"]).expect_err("fails");
        let text = err.to_string();
        assert!(text.contains("`sh -c echo oops >&2; exit 3`"), "{text}");
        assert!(text.ends_with(": oops"), "{text}");
    }

    #[test]
    fn missing_program_names_command() {
        let err = run("/nonexistent/dmsetup", &["table", "root"]).expect_err("fails");
        assert!(
            err.to_string()
                .starts_with("cannot run `/nonexistent/dmsetup table root`"),
            "{err}"
        );
    }
}
