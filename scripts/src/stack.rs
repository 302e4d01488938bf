//! The stack: a chain of patch commits built in git's object store.
//!
//! "Apply a patch on a parent, commit it, move on" is what `apply`,
//! `check`, `export` and `rebase` all do, with three differences: whether
//! a patch whose context moved may take a 3-way merge, whether a patch the
//! parent already contains is skipped, and which message the commit gets.
//! [`Builder`] holds those choices and [`Builder::build`] walks the
//! patches; nothing touches the work tree's files. Moving the tree to the
//! chain's head is one journaled step of its own (`WorkTree::move_to`).

use anyhow::Result;

use crate::git::{ApplyFailure, Git};
use crate::patch::strip_fork_trailers;
use crate::queue::QueuedPatch;

/// How a patch goes on its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Every context line must match (no fuzz).
    Exact,
    /// Exactly if it can, else a 3-way merge with the blobs it names.
    ExactOrMerge,
}

/// The message of the commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The patch's own message, trailers included (the fork's commits).
    Patch,
    /// Without the fork's trailers (branches for upstream pull requests).
    Upstream,
}

/// One patch to put on the chain: its index in the queue, and whether it
/// is left out when the parent already contains its change.
pub struct Item<'q> {
    pub index: usize,
    pub patch: &'q QueuedPatch,
    pub skip_if_contained: bool,
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Committed; `merged` when it took a 3-way merge.
    Committed { index: usize, commit: String, merged: bool },
    /// Left out: the parent already contains its change.
    AlreadyIn { index: usize },
}

/// A chain built on `start`: its links, and the failure it stopped at.
pub struct Chain {
    pub head: String,
    pub links: Vec<Link>,
    /// The queue index of the patch that did not apply, and why.
    pub failure: Option<(usize, ApplyFailure)>,
}

impl Chain {
    /// The commits, in order.
    pub fn commits(&self) -> impl Iterator<Item = (usize, &str)> {
        self.links.iter().filter_map(|l| match l {
            Link::Committed { index, commit, .. } => Some((*index, commit.as_str())),
            Link::AlreadyIn { .. } => None,
        })
    }
}

pub struct Builder<'g> {
    pub git: &'g Git,
    pub fit: Fit,
    pub message: Message,
}

impl Builder<'_> {
    /// Puts `items` one by one on `start`, stopping at the first patch
    /// that does not fit.
    pub fn build<'q>(&self, start: &str, items: impl IntoIterator<Item = Item<'q>>) -> Result<Chain> {
        let mut chain = Chain { head: start.to_owned(), links: Vec::new(), failure: None };
        // One index for the whole chain: each patch goes on the tree the one
        // before made, which the index holds already.
        let mut index = self.git.patch_index()?;
        for item in items {
            if item.skip_if_contained && index.contains(&chain.head, &item.patch.path)? {
                chain.links.push(Link::AlreadyIn { index: item.index });
                continue;
            }
            let fitted = match self.fit {
                Fit::Exact => index.apply(&chain.head, &item.patch.path)?.map(|t| (t, false)),
                Fit::ExactOrMerge => index.apply_or_merge(&chain.head, &item.patch.path)?,
            };
            let (tree, merged) = match fitted {
                Ok(fitted) => fitted,
                Err(failure) => {
                    chain.failure = Some((item.index, failure));
                    break;
                }
            };
            let commit = self.commit(&tree, &chain.head, item.patch)?;
            chain.links.push(Link::Committed { index: item.index, commit: commit.clone(), merged });
            chain.head = commit;
        }
        Ok(chain)
    }

    /// Commits `tree` on `parent` with the patch's author and date as both
    /// author and committer, so that the same patch always gives the same id.
    pub fn commit(&self, tree: &str, parent: &str, patch: &QueuedPatch) -> Result<String> {
        let mail = self.git.mailinfo(&patch.path)?;
        let message = match self.message {
            Message::Patch => mail.message,
            Message::Upstream => strip_fork_trailers(&mail.message),
        };
        self.git.commit_tree(tree, Some(parent), &message, &mail.author, &mail.author)
    }
}

/// The items for patches `indices` of `patches`, none skipped.
pub fn items<'q>(patches: &'q [QueuedPatch], indices: impl IntoIterator<Item = usize>) -> Vec<Item<'q>> {
    indices.into_iter().map(|index| Item { index, patch: &patches[index], skip_if_contained: false }).collect()
}
