//! Running external programs.
//!
//! Every child process patchq starts goes through [`Cmd`], so that a failure
//! always reports the exact command line, its exit status and the tail of
//! what it printed. `git.rs` and `xpy.rs` build on it; nothing else spawns
//! processes directly.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// How many lines of a failed command's output an error quotes.
const TAIL_LINES: usize = 20;

/// A command line under construction, printable exactly as it will run.
/// Building one does nothing: it must be run (`read`, `output`, `stream`, `tee`).
#[derive(Clone)]
#[must_use = "a command does nothing until it is run"]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    envs: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
}

/// What a captured command printed and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last lines of stderr (or stdout when stderr is empty), for errors.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        tail_of(text)
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd { program: program.as_ref().to_owned(), args: Vec::new(), dir: None, envs: Vec::new(), stdin: None }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        for (key, value) in &self.envs {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    fn spawn_error(&self, err: std::io::Error) -> anyhow::Error {
        anyhow::Error::new(err).context(format!("could not start `{self}`"))
    }

    /// Runs the command, capturing its output, and returns it whatever the
    /// exit status. Use when the caller branches on failure.
    pub fn output(&self) -> Result<Output> {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        if let Some(data) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            let data = data.clone();
            // A separate thread keeps a large input from deadlocking against
            // a child that fills its stdout pipe before reading all of stdin.
            std::thread::spawn(move || pipe.write_all(&data));
        }
        let out = child.wait_with_output().with_context(|| format!("waiting for `{self}`"))?;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs the command, capturing its output; a non-zero exit is an error
    /// quoting the command, the status and the tail of its output.
    pub fn read(&self) -> Result<String> {
        let out = self.output()?;
        if !out.status.success() {
            bail!("`{self}` failed ({})\n{}", out.status, out.tail());
        }
        Ok(out.stdout)
    }

    /// Runs the command with its output going straight to the terminal.
    pub fn stream(&self) -> Result<()> {
        let status = self.command().stdin(Stdio::null()).status().map_err(|e| self.spawn_error(e))?;
        if !status.success() {
            bail!("`{self}` failed ({status})");
        }
        Ok(())
    }

    /// Runs the command, showing stdout and stderr (merged) as they come and
    /// also returning them, for callers that parse the output of a long run.
    /// The exit status is returned, not turned into an error.
    pub fn tee(&self, log: Option<&Path>) -> Result<(ExitStatus, String)> {
        let (reader, writer) = std::io::pipe().context("creating a pipe")?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stdout(writer.try_clone().context("duplicating a pipe")?).stderr(writer);
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        // The parent's copies of the write end must be gone, or the read
        // loop never sees end of file.
        drop(cmd);
        let mut log = match log {
            Some(path) => Some(fs_err::File::create(path)?),
            None => None,
        };
        let mut captured = String::new();
        let mut stdout = std::io::stdout().lock();
        let mut showing = true;
        for line in BufReader::new(reader).split(b'\n') {
            let mut line = line.context("reading child output")?;
            line.push(b'\n');
            // A reader that went away (`| head`) must not stop the child's
            // work or its capture: stop showing, keep reading.
            showing = showing && stdout.write_all(&line).is_ok();
            if let Some(log) = &mut log {
                log.write_all(&line)?;
            }
            captured.push_str(&String::from_utf8_lossy(&line));
        }
        let status = child.wait().with_context(|| format!("waiting for `{self}`"))?;
        Ok((status, captured))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.dir {
            write!(f, "cd {} && ", shell_quote(dir.as_os_str()))?;
        }
        for (key, value) in &self.envs {
            if let Some(value) = value {
                write!(f, "{}={} ", key.to_string_lossy(), shell_quote(value))?;
            }
        }
        write!(f, "{}", shell_quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes a word for a POSIX shell when it needs it, so that printed
/// commands can be pasted back into a terminal.
/// `word` as a POSIX shell reads it back: plain words as they are, others
/// in single quotes. For commands patchq suggests and the ones it reports.
pub fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain { word.into_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// The last [`TAIL_LINES`] lines of `text`.
pub fn tail_of(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

/// Whether `program` can be found on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let cmd = Cmd::new("git").args(["commit", "-m", "it's done"]).dir("/tmp/a b");
        assert_eq!(cmd.to_string(), r"cd '/tmp/a b' && git commit -m 'it'\''s done'");
    }

    #[test]
    fn failed_command_error_names_command_status_and_output() {
        let err = Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]).read().unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("`sh -c 'echo boom >&2; exit 3'` failed"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn tee_returns_merged_output() {
        let (status, out) = Cmd::new("sh").args(["-c", "echo out; echo err >&2"]).tee(None).unwrap();
        assert!(status.success());
        assert!(out.contains("out\n") && out.contains("err\n"), "{out}");
    }
}
