//! The one way this crate runs external tools.
//!
//! Every command is logged with its full command line; a failure carries the command
//! line, the exit status and the tail of stderr, so the user sees why without rerunning.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Lines of stderr kept for an error message.
const STDERR_TAIL_LINES: usize = 25;

/// An external command that could not be run or failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("host tool `{tool}` not found in PATH; {hint}")]
    ToolMissing { tool: String, hint: String },
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}); last lines of its stderr:\n{stderr_tail}")]
    Failed {
        command: String,
        status: String,
        stderr_tail: String,
    },
    #[error("`{command}` printed output that is not UTF-8")]
    NotUtf8 { command: String },
}

/// Shell-quoted rendering of a command, for logs and errors.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Running a [`Command`] the way this project wants it run.
pub trait CommandRunExt {
    /// Runs to completion; stderr lines are forwarded to the log as they come
    /// (progress of long tools stays visible), stdout goes to our stderr, and the
    /// tail of stderr is kept for the error.
    fn run_logged(&mut self) -> Result<(), CommandError>;
    /// Runs to completion and returns stdout.
    fn run_capture(&mut self) -> Result<String, CommandError>;
}

impl CommandRunExt for Command {
    fn run_logged(&mut self) -> Result<(), CommandError> {
        let command = command_line(self);
        tracing::info!("running {command}");
        // Tools' stdout joins our stderr: stdout carries only our own result.
        let stdout = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut child = self
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CommandError::Spawn {
                command: command.clone(),
                source,
            })?;
        let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Shown as progress: mmdebstrap and dracut report their steps here.
                tracing::info!(target: "tool", "{line}");
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        let status = child.wait().map_err(|source| CommandError::Spawn {
            command: command.clone(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(CommandError::Failed {
                command,
                status: status.to_string(),
                stderr_tail: Vec::from(tail).join("\n"),
            })
        }
    }

    fn run_capture(&mut self) -> Result<String, CommandError> {
        let command = command_line(self);
        tracing::debug!("running {command}");
        let output = self
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CommandError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
            return Err(CommandError::Failed {
                command,
                status: output.status.to_string(),
                stderr_tail: lines[start..].join("\n"),
            });
        }
        String::from_utf8(output.stdout).map_err(|_| CommandError::NotUtf8 { command })
    }
}

/// Finds `tool` in PATH or fails naming the tool and the Debian package that has it.
pub fn require_tool(tool: &str, debian_package: &str) -> Result<PathBuf, CommandError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| CommandError::ToolMissing {
            tool: tool.to_string(),
            hint: format!(
                "install the Debian package `{debian_package}` (the README's host setup does)"
            ),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_shell_quoted() {
        let cases: &[(&[&str], &str)] = &[
            (&["echo", "plain"], "echo plain"),
            (&["echo", "two words"], "echo 'two words'"),
            (&["echo", "it's"], r"echo 'it'\''s'"),
            (&["echo", ""], "echo ''"),
            (
                &["mksquashfs", "/a/b", "-comp", "zstd"],
                "mksquashfs /a/b -comp zstd",
            ),
        ];
        for (argv, want) in cases {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            assert_eq!(command_line(&cmd), *want);
        }
    }

    #[test]
    fn failure_carries_command_and_stderr_tail() {
        let err = Command::new("sh")
            .args(["-c", "echo first >&2; echo second >&2; exit 3"])
            .run_logged()
            .expect_err("exit 3 fails");
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.ends_with("first\nsecond"), "{text}");
    }

    #[test]
    fn capture_returns_stdout() {
        let out = Command::new("printf")
            .arg("a\nb")
            .run_capture()
            .expect("printf runs");
        assert_eq!(out, "a\nb");
    }

    #[test]
    fn missing_tool_names_tool_and_package() {
        let err = require_tool("no-such-tool-xyz", "no-such-package").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "host tool `no-such-tool-xyz` not found in PATH; install the Debian package \
             `no-such-package` (the README's host setup does)"
        );
        assert!(require_tool("sh", "dash").is_ok());
    }
}
