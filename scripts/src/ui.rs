//! All of patchq's own messages go through here.
//!
//! Progress and notes go to stderr, prefixed so they stand out between the
//! lines x.py and git print; results meant for reading or piping (status
//! tables, summaries) go to stdout. Long-running phases announce themselves
//! with [`phase`] and close with [`done`], giving one summary line each.
//!
//! Output is best effort: a closed pipe (`patchq status | head -1`) or a
//! full disk must neither panic nor stop an operation half-way, so write
//! errors are ignored here, where every message passes.

use std::io::Write;
use std::time::Instant;

fn to_stderr(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A named phase of a long job, timed from creation.
pub struct Phase {
    name: String,
    start: Instant,
}

/// Announces the start of a phase.
pub fn phase(name: impl Into<String>) -> Phase {
    let name = name.into();
    to_stderr(format_args!("==> {name}"));
    Phase { name, start: Instant::now() }
}

impl Phase {
    /// Closes the phase with a one-line summary.
    pub fn done(self, summary: impl AsRef<str>) {
        let secs = self.start.elapsed().as_secs_f64();
        to_stderr(format_args!("==> {}: {} ({})", self.name, summary.as_ref(), human_duration(secs)));
    }
}

pub fn note(msg: impl AsRef<str>) {
    to_stderr(format_args!("    {}", msg.as_ref()));
}

pub fn warn(msg: impl AsRef<str>) {
    to_stderr(format_args!("warning: {}", msg.as_ref()));
}

/// A result line, on stdout.
pub fn out(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stdout(), "{}", msg.as_ref());
}

/// The error that ends a run.
pub fn error(err: &anyhow::Error) {
    to_stderr(format_args!("error: {err:#}"));
}

pub fn human_duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::human_duration(4.25), "4.2 s");
        assert_eq!(super::human_duration(671.0), "11 min 11 s");
    }
}
