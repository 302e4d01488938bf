//! `patchq export`: one git branch per upstream pull request, and the text
//! of the pull request beside it.
//!
//! The patches named (by topic or file name) are grouped by their
//! `Upstream:` PR. Each group becomes a branch `pr/<first patch>` on an
//! upstream commit (by default the work tree's pristine base; `--onto` any
//! commit, e.g. rust-lang/rust's master fetched into the repository), with
//! the commits of the patches it depends on (`Depends-on:`, transitively)
//! first and its own after them. The branch holds no overlay commit:
//! upstream does not want the offline fix-ups. Commit messages lose the
//! fork's trailers; the description (`export/<first patch>.md`) carries
//! them as upstream writes them (Tracking, Fixes, "depends on").
//!
//! `--check` builds what the branch holds the only way it builds offline:
//! base + overlay + dependencies + the PR's patches, with `x.py check`.
//! Everything happens in git's object store; the work tree's files stay put.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::Ctx;
use super::check::Checker;
use crate::git::Git;
use crate::patch::{IssueRef, PatchMeta, Status, description_parts, pr_title_problems};
use crate::queue::{Queue, QueuedPatch};
use crate::stack;
use crate::ui;
use crate::worktree::{WorkTree, describe_failure, short};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Topics (`codegen`) or patch files (`codegen-gep-inbounds-nuw.patch`, `.patch` optional).
    #[arg(required_unless_present = "all", conflicts_with = "all", value_name = "TOPIC|PATCH")]
    pub what: Vec<String>,
    /// Every patch that has an upstream PR.
    #[arg(long)]
    pub all: bool,
    /// The upstream commit to build the branches on (default: the work tree's pristine base).
    #[arg(long, value_name = "REV")]
    pub onto: Option<String>,
    /// The repository to make the branches in (default: the work tree), e.g. a rust-lang/rust clone.
    #[arg(long, value_name = "REPO", requires = "onto")]
    pub into: Option<PathBuf>,
    /// Where the pull-request descriptions are written.
    #[arg(long, value_name = "DIR", default_value = "export")]
    pub out: PathBuf,
    /// Also `x.py check` base + overlay + dependencies + each PR's patches.
    #[arg(long)]
    pub check: bool,
    /// Move a branch that exists and points at another commit.
    #[arg(long)]
    pub force: bool,
}

/// One pull request: the patches that carry its `Upstream:` reference.
struct Pr<'q> {
    upstream: IssueRef,
    /// Indices into the queue, in series order.
    patches: Vec<usize>,
    /// The patches it depends on and does not contain, in series order.
    deps: Vec<usize>,
    metas: &'q BTreeMap<usize, PatchMeta>,
    queue: &'q Queue,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let _lock = ctx.lock()?;
    let queue = ctx.queue()?;
    let mut metas = BTreeMap::new();
    for (i, patch) in queue.patches.iter().enumerate() {
        let meta = patch.file.meta().with_context(|| format!("{}: invalid trailers (`patchq check`)", patch.name))?;
        metas.insert(i, meta);
    }
    let named: Vec<(&str, &PatchMeta)> =
        metas.iter().map(|(&i, meta)| (queue.patches[i].name.as_str(), meta)).collect();
    if let Some(problem) = pr_title_problems(&named).into_iter().next() {
        bail!("{problem} (`patchq check`)");
    }
    let what = match args.all {
        // Every topic with a pull request: one of fork-only patches only
        // (compiletest) has none to export, which is no error here.
        true => metas
            .values()
            .filter(|m| m.upstream.is_some())
            .map(|m| m.topic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        false => args.what.clone(),
    };
    let prs = select(&queue, &metas, &what)?;

    let tree = WorkTree::open(&ctx.tree)?
        .with_context(|| format!("{} does not exist: `patchq apply` makes it", ctx.tree.display()))?;
    let target = match &args.into {
        Some(repo) => {
            if !Git::is_repo_root(repo) {
                bail!("`--into {}`: not a git repository (a rust-lang/rust clone is expected)", repo.display());
            }
            Git::open(&fs_err::canonicalize(repo)?)
        }
        None => tree.git.clone(),
    };
    let onto = match &args.onto {
        Some(rev) => target.rev_parse(rev)?.with_context(|| format!("`--onto {rev}`: no such commit"))?,
        None => tree.state.base_commit.clone(),
    };
    let onto_name = args.onto.clone().unwrap_or_else(|| "the pristine base".to_owned());
    let out_dir = ctx.loaded.root.join(&args.out);
    fs_err::create_dir_all(&out_dir)?;

    let mut checker = None;
    for pr in &prs {
        let stem = queue.patches[pr.patches[0]].name.trim_end_matches(".patch");
        let branch = format!("pr/{stem}");
        let (head, skipped) = build_branch(&target, &onto, pr, &onto_name)?;
        set_branch(&target, &branch, &head, args.force)?;
        let description = describe(pr, &skipped);
        let path = out_dir.join(format!("{stem}.md"));
        fs_err::write(&path, &description)?;
        let own = pr.patches.len();
        let deps = pr.deps.len() - skipped.len();
        ui::out(format!(
            "{branch}: {} ({own} commit(s), {deps} dependency commit(s)) on {} → {}",
            pr.upstream,
            short(&onto),
            short(&head)
        ));
        ui::out(format!("  description: {}", path.display()));

        if args.check {
            let commit = offline_commit(ctx, &tree, pr)?;
            let checker = match &mut checker {
                Some(c) => c,
                None => checker.insert(Checker::prepare(ctx, &tree, &commit, None)?),
            };
            let label = format!("{branch} on base + overlay");
            checker.check(&commit, &label).with_context(|| format!("{label} does not build"))?;
        }
    }
    Ok(())
}

/// Groups the selected patches by upstream PR, in series order.
fn select<'q>(queue: &'q Queue, metas: &'q BTreeMap<usize, PatchMeta>, what: &[String]) -> Result<Vec<Pr<'q>>> {
    let topics: BTreeSet<&str> = metas.values().map(|m| m.topic.as_str()).collect();
    let mut chosen = BTreeSet::new();
    for item in what {
        let by_name = queue.patches.iter().position(|p| p.name == *item || p.name == format!("{item}.patch"));
        match by_name {
            Some(i) => {
                if metas[&i].upstream.is_none() {
                    bail!(
                        "{}: `Upstream: none` (a fork-only patch): there is no pull request to export",
                        queue.patches[i].name
                    );
                }
                chosen.insert(i);
            }
            None if topics.contains(item.as_str()) => {
                let mut any = false;
                for (i, meta) in metas.iter().filter(|(_, m)| m.topic == *item) {
                    if meta.upstream.is_some() {
                        chosen.insert(*i);
                        any = true;
                    } else {
                        ui::note(format!("{}: fork-only, not exported", queue.patches[*i].name));
                    }
                }
                if !any {
                    bail!("topic `{item}` has only fork-only patches: there is no pull request to export");
                }
            }
            None => bail!(
                "`{item}` is neither a patch of the series nor a topic (topics: {})",
                topics.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    let mut groups: Vec<Pr<'q>> = Vec::new();
    for i in chosen {
        let upstream = metas[&i].upstream.clone().expect("fork-only patches were left out");
        match groups.iter_mut().find(|g| g.upstream == upstream) {
            Some(group) => group.patches.push(i),
            None => groups.push(Pr { upstream, patches: vec![i], deps: vec![], metas, queue }),
        }
    }
    for group in &mut groups {
        group.deps = dependencies(queue, metas, &group.patches)?;
    }
    Ok(groups)
}

/// The transitive `Depends-on:` of `patches`, without them, in series order.
fn dependencies(queue: &Queue, metas: &BTreeMap<usize, PatchMeta>, patches: &[usize]) -> Result<Vec<usize>> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<usize> = patches.to_vec();
    while let Some(i) = todo.pop() {
        for dep in &metas[&i].depends_on {
            let j = queue.series.position(dep).with_context(|| {
                format!("{}: depends on `{dep}`, which is not in the series", queue.patches[i].name)
            })?;
            if found.insert(j) {
                todo.push(j);
            }
        }
    }
    Ok(found.into_iter().filter(|j| !patches.contains(j)).collect())
}

/// Commits dependencies then the PR's patches on `onto`; returns the head
/// and the dependencies that `onto` already contains (not committed again).
fn build_branch(git: &Git, onto: &str, pr: &Pr, onto_name: &str) -> Result<(String, Vec<usize>)> {
    let builder = stack::Builder { git, fit: stack::Fit::ExactOrMerge, message: stack::Message::Upstream };
    // A dependency the target already has is not carried on the branch.
    let items = pr.deps.iter().chain(&pr.patches).map(|&index| stack::Item {
        index,
        patch: &pr.queue.patches[index],
        skip_if_contained: pr.deps.contains(&index),
    });
    let chain = builder.build(onto, items)?;
    if let Some((i, failure)) = &chain.failure {
        let why = describe_failure(pr.queue, *i, failure);
        bail!(
            "{why}\non {onto_name}, below the branch for {}.\nif it needs an earlier patch of \
             the series, name that one in its `Depends-on:`; if {onto_name} moved, move the \
             queue first (`patchq rebase --onto …`)",
            pr.upstream
        );
    }
    let mut skipped = Vec::new();
    for link in &chain.links {
        if let stack::Link::AlreadyIn { index } = link {
            ui::note(format!("{}: already in {onto_name}, not carried", pr.queue.patches[*index].name));
            skipped.push(*index);
        }
    }
    Ok((chain.head, skipped))
}

/// Points `branch` at `head`, refusing to move one that holds other work.
fn set_branch(git: &Git, branch: &str, head: &str, force: bool) -> Result<()> {
    let full = format!("refs/heads/{branch}");
    // In the main work tree or a linked one: moving it would leave that
    // tree's files behind its branch.
    let checked_out = git.checked_out_branches()?.contains(&full);
    if let Some(existing) = git.rev_parse(&full)? {
        if existing == head {
            return Ok(());
        }
        if checked_out {
            bail!(
                "{branch} is checked out (in a work tree of the repository): switch that work tree to \
                 another branch before exporting it again"
            );
        }
        if !force {
            bail!(
                "branch {branch} exists at {} (not what this export makes, {}): it may hold review \
                 fixes; move them into the patch, or rerun with --force to replace the branch",
                short(&existing),
                short(head)
            );
        }
    }
    git.update_ref(&full, head)
}

/// The pull-request text: title (the `Pr-title:`, else the first patch's
/// subject), the patches' prose, what is not part of it, and the upstream
/// lines (Tracking, Fixes, depends on, r?/cc).
fn describe(pr: &Pr, skipped: &[usize]) -> String {
    let patches: Vec<&QueuedPatch> = pr.patches.iter().map(|&i| &pr.queue.patches[i]).collect();
    let title = pr.metas[&pr.patches[0]].pr_title.as_ref().unwrap_or(&patches[0].file.subject);
    let mut out = format!("{title}\n\n");
    let mut pings = Vec::new();
    for patch in &patches {
        let (prose, mut more) = description_parts(&patch.file.body);
        if patches.len() > 1 {
            out.push_str(&format!("### {}\n\n", patch.file.subject));
        }
        if !prose.is_empty() {
            out.push_str(&prose);
            out.push_str("\n\n");
        }
        pings.append(&mut more);
    }
    let carried: Vec<usize> = pr.deps.iter().copied().filter(|d| !skipped.contains(d)).collect();
    if !carried.is_empty() {
        out.push_str(
            "### Not part of this PR\n\nThe branch starts with the commits of the changes this PR depends on. \
             They are **not part of this PR**; they are reviewed in their own:\n\n",
        );
        for &d in &carried {
            let meta = &pr.metas[&d];
            let upstream = meta.upstream.as_ref().map_or("not sent upstream".to_owned(), |u| u.to_string());
            let state = match &meta.status {
                Status::MergedIn(v) => format!(", merged in {v}"),
                other => format!(", {other}"),
            };
            out.push_str(&format!("- {} ({upstream}{state})\n", pr.queue.patches[d].file.subject));
        }
        out.push('\n');
    }
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for &d in &carried {
        if let Some(up) = &pr.metas[&d].upstream
            && seen.insert(up.to_string())
            && !matches!(pr.metas[&d].status, Status::MergedIn(_))
        {
            lines.push(format!("Depends on {up}."));
        }
    }
    for &i in &pr.patches {
        for t in &pr.metas[&i].tracking {
            if seen.insert(format!("tracking {t}")) {
                lines.push(format!("Tracking: {t}"));
            }
        }
    }
    for &i in &pr.patches {
        for f in &pr.metas[&i].fixes {
            if seen.insert(format!("fixes {f}")) {
                lines.push(format!("Fixes {f}"));
            }
        }
    }
    if !lines.is_empty() {
        out.push_str(&lines.join("\n"));
        out.push_str("\n\n");
    }
    let mut seen_pings = BTreeSet::new();
    pings.retain(|p| seen_pings.insert(p.clone()));
    if !pings.is_empty() {
        out.push_str(&pings.join("\n"));
        out.push('\n');
    }
    format!("{}\n", out.trim_end())
}

/// The commit `--check` builds: the work tree's overlay commit, then the
/// dependencies and the PR's patches as the queue has them.
fn offline_commit(ctx: &Ctx, tree: &WorkTree, pr: &Pr) -> Result<String> {
    let start = tree.current_overlay_commit(&ctx.overlay()?, ctx.base_date())?;
    let mut all: Vec<usize> = pr.deps.iter().chain(&pr.patches).copied().collect();
    all.sort();
    let chain = tree.builder().build(&start, stack::items(&pr.queue.patches, all))?;
    if let Some((i, failure)) = &chain.failure {
        bail!("{}\non base + overlay", describe_failure(pr.queue, *i, failure));
    }
    Ok(chain.head)
}
