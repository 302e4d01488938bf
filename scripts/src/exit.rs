//! Errors that end patchq with a distinct exit status, so that scripts can
//! tell "a patch does not apply" from "the work tree has edits" from any
//! other failure (exit 1). Clap's usage errors exit with 2.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A patch does not apply at its position in the queue.
    PatchDoesNotApply = 3,
    /// The work tree has uncommitted edits or commits not yet in `patches/`.
    WorkTreeNotClean = 4,
    /// Another patchq holds the work tree and `--no-wait` was given.
    Busy = 5,
    /// The step drops work (patches already upstream) and needs the flag that says so.
    NeedsConfirmation = 6,
    /// `patches/` holds patch files the work tree does not (not applied
    /// yet, or edited by hand): writing the tree's commits would lose them.
    PatchesAheadOfTree = 7,
}

/// An error carrying its exit code; the message is complete on its own.
#[derive(Debug)]
pub struct Exit {
    pub code: Code,
    pub message: String,
}

impl Exit {
    pub fn new(code: Code, message: impl Into<String>) -> Exit {
        Exit { code, message: message.into() }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}
