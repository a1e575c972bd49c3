//! Image patching: when a change only touches files that a Dockerfile's trailing COPY
//! instructions copy, the new image is the previous image's lower layers plus new COPY
//! layers that masgen writes itself and hands to the daemon through `/images/load`,
//! instead of a builder run.
//!
//! Why: on storage drivers without a native diff (fuse-overlayfs, which rootless Docker and
//! this kind of machine use; also vfs, btrfs, zfs), every builder export walks the whole
//! image to find the new layer's files, so a one-line change to a service on a Python base
//! image costs seconds of export, where loading a layer masgen wrote costs a small
//! fraction of that (README, "Patching instead of building", has the measurements).
//!
//! When it applies (anything else is built by the builder as before):
//! - the image was built by BuildKit or patched by masgen: its `io.masgen.steps` label
//!   records, for each instruction after FROM, a digest of what it read from the context;
//! - the Dockerfile, the build args, the target and the base image are unchanged, and the
//!   Dockerfile has a single stage, no parser directive and no heredoc;
//! - the first instruction whose input changed is a COPY of context paths (no flags, no
//!   variables, no wildcards, no symlinked source), and every instruction after it is such
//!   a COPY or one that only sets configuration (ENV, CMD, EXPOSE, LABEL, USER, ...);
//! - the image's layers line up with its instructions (checked against the base image's
//!   layers and the image's history).
//!
//! The new layers hold what the builder's COPY would write: the files with the context's
//! modes and times, owned by root, and every folder above them with the metadata it has in
//! the image below (read from a container of that image that never starts) or, when the COPY
//! creates it, 0755 and root. `--no-cache` never patches.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ImportImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{Engine, MANAGED_LABEL, PROJECT_LABEL};
use crate::runtime::build::BuildRequest;

/// The label that records each instruction's inputs.
pub const STEPS_LABEL: &str = "io.masgen.steps";
/// The history comment on layers masgen wrote.
const PATCH_COMMENT: &str = "masgen: patched COPY layer";

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
struct Instr {
    keyword: String,
    args: String,
}

/// A Dockerfile's instructions, or None when it uses what patching does not follow (a
/// parser directive, which may name another frontend or escape character; a heredoc).
fn instructions(text: &str) -> Option<Vec<Instr>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut preamble = true;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            if preamble && current.is_empty() {
                let body = comment.trim_start();
                if body.split_once('=').is_some_and(|(k, _)| {
                    !k.trim().is_empty() && k.trim().chars().all(|c| c.is_ascii_alphanumeric())
                }) {
                    return None;
                }
            }
            continue;
        }
        if current.is_empty() && trimmed.is_empty() {
            continue;
        }
        preamble = false;
        match line.trim_end().strip_suffix('\\') {
            Some(body) => {
                current.push_str(body);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(instr(&current)?);
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(instr(&current)?);
    }
    Some(out)
}

fn instr(line: &str) -> Option<Instr> {
    let line = line.trim();
    let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let keyword = keyword.to_ascii_uppercase();
    const KNOWN: [&str; 18] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "MAINTAINER",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ];
    if !KNOWN.contains(&keyword.as_str()) || args.contains("<<") {
        return None;
    }
    Some(Instr {
        keyword,
        args: args.trim().to_string(),
    })
}

/// What one instruction after FROM does, as far as patching is concerned.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A COPY of context paths that masgen can write itself. Sources are relative to the
    /// context ("" is the whole context).
    Copy {
        sources: Vec<String>,
        dest: String,
        digest: String,
    },
    /// Makes a layer masgen does not write (RUN, ADD, WORKDIR, any other COPY); `reads`
    /// when the context can change what it does.
    Layer { reads: bool },
    /// Sets only the image's configuration.
    Config,
}

#[derive(Debug, Clone)]
struct Step {
    keyword: String,
    args: String,
    kind: Kind,
}

impl Step {
    /// This step's word in the label: the COPY digest, `-` for a step that reads nothing
    /// from the context, `*` plus the context's hash for one that may read anything.
    fn token(&self, context_hash: &str) -> String {
        match &self.kind {
            Kind::Copy { digest, .. } => digest.clone(),
            Kind::Layer { reads: true } => {
                format!("*{}", &context_hash[..16.min(context_hash.len())])
            }
            _ => "-".into(),
        }
    }
}

/// One entry of the build context.
#[derive(Debug, Clone)]
struct CtxEntry {
    header: tar::Header,
    data: std::ops::Range<usize>,
}

/// The build context by path (no trailing `/`).
struct Ctx<'a> {
    tar: &'a [u8],
    entries: BTreeMap<String, CtxEntry>,
}

impl<'a> Ctx<'a> {
    fn read(tar: &'a [u8]) -> Option<Ctx<'a>> {
        let mut archive = tar::Archive::new(tar);
        let mut entries = BTreeMap::new();
        for e in archive.entries().ok()? {
            let e = e.ok()?;
            let path = e
                .path()
                .ok()?
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let start = e.raw_file_position() as usize;
            let size = e.header().size().ok()? as usize;
            entries.insert(
                path,
                CtxEntry {
                    header: e.header().clone(),
                    data: start..start + size,
                },
            );
        }
        Some(Ctx { tar, entries })
    }

    /// The entries a source selects, as (path below the source, entry): a file alone (with
    /// its own name), or everything below a folder. None when the source is missing or
    /// selects a symlink or anything else but files and folders.
    fn select(&self, source: &str) -> Option<(bool, Vec<(String, &CtxEntry)>)> {
        let plain = |e: &CtxEntry| {
            matches!(
                e.header.entry_type(),
                tar::EntryType::Regular | tar::EntryType::Directory
            )
        };
        if let Some(e) = self
            .entries
            .get(source)
            .filter(|e| e.header.entry_type() == tar::EntryType::Regular)
        {
            let name = source.rsplit('/').next().unwrap_or(source).to_string();
            return Some((false, vec![(name, e)]));
        }
        let prefix = if source.is_empty() {
            String::new()
        } else {
            format!("{source}/")
        };
        let below: Vec<(String, &CtxEntry)> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, e)| (p[prefix.len()..].to_string(), e))
            .collect();
        if (below.is_empty() && !self.entries.contains_key(source) && !source.is_empty())
            || below.iter().any(|(_, e)| !plain(e))
        {
            return None;
        }
        if self.entries.get(source).is_some_and(|e| !plain(e)) {
            return None;
        }
        Some((true, below))
    }

    fn data(&self, e: &CtxEntry) -> &[u8] {
        &self.tar[e.data.clone()]
    }
}

/// `a/./b/../c` -> `a/c`; None when it climbs out.
fn clean(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    Some(out.join("/"))
}

fn copy_kind(args: &str, ctx: &Ctx) -> Kind {
    let opaque = Kind::Layer { reads: true };
    let words: Vec<String> = if args.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(args) {
            Ok(w) => w,
            Err(_) => return opaque,
        }
    } else {
        args.split_whitespace().map(str::to_string).collect()
    };
    if words.len() < 2
        || words
            .iter()
            .any(|w| w.starts_with("--") || w.contains(['$', '*', '?', '[', '\\', '"', '\'']))
    {
        return opaque;
    }
    let (dest, sources) = words.split_last().expect("two words at least");
    if sources.len() > 1 && !dest.ends_with('/') {
        return opaque;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(args.as_bytes());
    let mut cleaned = Vec::new();
    for s in sources {
        let Some(s) = clean(s.trim_start_matches('/')) else {
            return opaque;
        };
        let Some((_, selected)) = ctx.select(&s) else {
            return opaque;
        };
        for (rel, e) in selected {
            hasher.update(
                format!(
                    "\0{s}\0{rel}\0{:?}\0{:o}\0",
                    e.header.entry_type(),
                    e.header.mode().unwrap_or(0)
                )
                .as_bytes(),
            );
            hasher.update(ctx.data(e));
        }
        cleaned.push(s);
    }
    Kind::Copy {
        sources: cleaned,
        dest: dest.clone(),
        digest: hasher.finalize().to_hex()[..16].to_string(),
    }
}

/// The steps after a single-stage Dockerfile's FROM, or None for any other Dockerfile.
fn steps(dockerfile: &str, ctx: &Ctx) -> Option<Vec<Step>> {
    let instrs = instructions(dockerfile)?;
    let from = instrs.iter().position(|i| i.keyword == "FROM")?;
    if instrs[..from].iter().any(|i| i.keyword != "ARG")
        || instrs[from + 1..].iter().any(|i| i.keyword == "FROM")
    {
        return None;
    }
    let steps = instrs[from + 1..]
        .iter()
        .map(|i| {
            let kind = match i.keyword.as_str() {
                "COPY" => copy_kind(&i.args, ctx),
                "ADD" => Kind::Layer { reads: true },
                "RUN" => Kind::Layer {
                    reads: i.args.contains("--mount"),
                },
                "WORKDIR" => Kind::Layer { reads: false },
                "ONBUILD" => Kind::Layer { reads: true },
                _ => Kind::Config,
            };
            Step {
                keyword: i.keyword.clone(),
                args: i.args.clone(),
                kind,
            }
        })
        .collect();
    Some(steps)
}

/// What patching knows of one build: its `io.masgen.steps` label and the steps behind it.
pub struct Plan {
    /// A version, a digest of the build settings and the Dockerfile, and one token per
    /// instruction after FROM.
    pub label: String,
    steps: Vec<Step>,
}

/// The plan for a build, from its context (the Dockerfile is read from the context as sent).
/// None when patching can never apply to this Dockerfile.
pub fn plan(
    dockerfile_path: &str,
    settings: &str,
    context_tar: &[u8],
    context_hash: &str,
) -> Option<Plan> {
    let ctx = Ctx::read(context_tar)?;
    // The Dockerfile and .dockerignore are sent even when .dockerignore names them; whether
    // a COPY then sees them is the builder's business, so such a context is not patched.
    if let Some(e) = ctx.entries.get(".dockerignore") {
        let ignore = super::context::DockerIgnore::parse(&String::from_utf8_lossy(ctx.data(e)));
        if ignore.excluded(dockerfile_path) || ignore.excluded(".dockerignore") {
            return None;
        }
    }
    let dockerfile =
        String::from_utf8_lossy(ctx.data(ctx.entries.get(&clean(dockerfile_path)?)?)).to_string();
    let steps = steps(&dockerfile, &ctx)?;
    Some(Plan {
        label: label_of(&dockerfile, settings, &steps, context_hash),
        steps,
    })
}

fn label_of(dockerfile: &str, settings: &str, steps: &[Step], context_hash: &str) -> String {
    let head =
        blake3::hash(format!("{settings}\0{dockerfile}").as_bytes()).to_hex()[..16].to_string();
    let mut words = vec!["1".to_string(), head];
    words.extend(steps.iter().map(|s| s.token(context_hash)));
    words.join(" ")
}

/// Whether the steps from `k` (the first whose input changed) on can be written by masgen:
/// COPYs it reproduces, and steps that only set configuration.
fn patchable(steps: &[Step], k: usize) -> bool {
    matches!(steps.get(k).map(|s| &s.kind), Some(Kind::Copy { .. }))
        && steps[k + 1..]
            .iter()
            .all(|s| matches!(s.kind, Kind::Copy { .. } | Kind::Config))
}

/// The first step whose input differs between two labels of the same Dockerfile and
/// settings: Some(None) when none does, None when the labels are not comparable.
fn first_change(old: &str, new: &str) -> Option<Option<usize>> {
    let (o, n): (Vec<&str>, Vec<&str>) = (old.split(' ').collect(), new.split(' ').collect());
    if o.len() != n.len() || o.len() < 2 || o[..2] != n[..2] {
        return None;
    }
    Some(o[2..].iter().zip(&n[2..]).position(|(a, b)| a != b))
}

/// A folder's metadata in the image below the new layers.
#[derive(Debug, Clone, PartialEq)]
struct DirMeta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl DirMeta {
    fn created() -> DirMeta {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        DirMeta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: now,
        }
    }
}

/// What a path is in the image below.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Missing,
    Dir(DirMeta),
    File,
    /// A symlink, or anything else a COPY would not simply replace or write into.
    Other,
}

/// Why patching steps aside, so that the builder builds the image: what a patch does not
/// do, what the image below does not allow, or the engine refusing a step of it.
#[derive(Debug, thiserror::Error)]
pub enum StepAside {
    /// Something a patch does not do; the builder does.
    #[error("{0}")]
    Unsupported(String),
    /// The image below, or the earlier image, is not as a patch needs it.
    #[error("{0}")]
    Below(String),
    /// The engine refused an operation of the patch.
    #[error("{op}: {message}")]
    Engine { op: &'static str, message: String },
    /// A layer or an image archive could not be written.
    #[error("writing the layer: {0}")]
    Archive(#[from] std::io::Error),
}

impl StepAside {
    fn engine(op: &'static str) -> impl Fn(bollard::errors::Error) -> StepAside {
        move |e| StepAside::Engine {
            op,
            message: e.to_string(),
        }
    }
}

impl From<serde_json::Error> for StepAside {
    fn from(e: serde_json::Error) -> Self {
        StepAside::Archive(e.into())
    }
}

/// Paths of the image below the new layers, read from a created (never started) container.
struct Probe<'a> {
    engine: &'a Engine,
    container: String,
    seen: HashMap<String, Found>,
}

impl Probe<'_> {
    /// `path` (absolute, clean) in the image below: the first tar header of the container's
    /// archive of it, the rest of the stream dropped.
    async fn stat(&mut self, path: &str) -> Result<Found, StepAside> {
        if let Some(f) = self.seen.get(path) {
            return Ok(f.clone());
        }
        let opts = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self
            .engine
            .docker
            .download_from_container(&self.container, Some(opts));
        let mut buf: Vec<u8> = Vec::new();
        let found = loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    if buf.len() >= 4096 {
                        break None;
                    }
                }
                Some(Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })) => break Some(Found::Missing),
                Some(Err(e)) => {
                    return Err(StepAside::Below(format!(
                        "cannot read {path} in the image below: {e}"
                    )))
                }
                None => break None,
            }
        };
        drop(stream);
        let found = match found {
            Some(f) => f,
            None => {
                let mut archive = tar::Archive::new(&buf[..]);
                let entry = archive
                    .entries()?
                    .next()
                    .ok_or_else(|| StepAside::Below(format!("{path}: an empty archive")))??;
                let h = entry.header();
                match h.entry_type() {
                    tar::EntryType::Directory => Found::Dir(DirMeta {
                        mode: h.mode().unwrap_or(0o755) & 0o7777,
                        uid: h.uid().unwrap_or(0),
                        gid: h.gid().unwrap_or(0),
                        mtime: h.mtime().unwrap_or(0),
                    }),
                    tar::EntryType::Regular => Found::File,
                    _ => Found::Other,
                }
            }
        };
        self.seen.insert(path.to_string(), found.clone());
        Ok(found)
    }
}

/// One entry of a new layer.
enum Item<'a> {
    Dir(DirMeta),
    File(&'a CtxEntry),
}

impl<'a> Item<'a> {
    /// A context entry as the layer holds it: a folder with its own mode and time, owned
    /// by root, or a file.
    fn of(e: &'a CtxEntry) -> Item<'a> {
        match e.header.entry_type() {
            tar::EntryType::Directory => Item::Dir(DirMeta {
                mode: e.header.mode().unwrap_or(0o755) & 0o7777,
                uid: 0,
                gid: 0,
                mtime: e.header.mtime().unwrap_or(0),
            }),
            _ => Item::File(e),
        }
    }
}

fn join(dir: &str, rel: &str) -> String {
    let joined = if rel.is_empty() {
        dir.to_string()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
    };
    format!("/{}", clean(&joined).unwrap_or_default())
}

/// The layer a COPY writes, as a tar, and the folders it created (for the COPYs after it).
async fn copy_layer(
    step: &Step,
    workdir: &str,
    ctx: &Ctx<'_>,
    probe: &mut Probe<'_>,
    created: &mut HashMap<String, DirMeta>,
) -> Result<Vec<u8>, StepAside> {
    let Kind::Copy { sources, dest, .. } = &step.kind else {
        return Err(StepAside::Unsupported("not a COPY".into()));
    };
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        format!("{workdir}/{dest}")
    };
    let dest_abs = format!(
        "/{}",
        clean(&dest_abs)
            .ok_or_else(|| StepAside::Unsupported("the destination climbs out of /".into()))?
    );
    let dir_like = dest.ends_with('/') || dest == "." || dest.ends_with("/.") || sources.len() > 1;
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    let mut copies_folder = false;
    for s in sources {
        let (is_dir, selected) = ctx
            .select(s)
            .ok_or_else(|| StepAside::Unsupported(format!("{s} is not in the context")))?;
        copies_folder |= is_dir;
        for (rel, e) in selected {
            let target = if is_dir || dir_like {
                join(&dest_abs, &rel)
            } else {
                single_file_target(&dest_abs, &rel, probe, created).await?
            };
            items.insert(target, Item::of(e));
        }
    }
    let folder = (copies_folder && dest_abs != "/").then_some(dest_abs.as_str());
    add_folders_above(&mut items, folder, probe, created).await?;
    // The COPYs after this one see these folders.
    for (path, item) in &items {
        if let Item::Dir(m) = item {
            created.insert(path.clone(), m.clone());
        }
    }
    layer_tar(&items, ctx)
}

/// Where a single-file COPY writes: `dest` names the file, unless it is a folder already.
async fn single_file_target(
    dest_abs: &str,
    rel: &str,
    probe: &mut Probe<'_>,
    created: &HashMap<String, DirMeta>,
) -> Result<String, StepAside> {
    let existing = match created.get(dest_abs) {
        Some(_) => Found::Dir(DirMeta::created()),
        None => probe.stat(dest_abs).await?,
    };
    match existing {
        Found::Dir(_) => Ok(join(dest_abs, rel)),
        Found::Missing | Found::File => Ok(dest_abs.to_string()),
        // The builder would follow a symlink; a patch does not guess where to.
        Found::Other => Err(StepAside::Below(format!(
            "{dest_abs} is a symlink in the image below"
        ))),
    }
}

/// Every folder above what the layer writes, and the destination `folder` of a folder
/// copy, with the metadata it has below (or 0755 and root where this COPY creates it).
async fn add_folders_above(
    items: &mut BTreeMap<String, Item<'_>>,
    folder: Option<&str>,
    probe: &mut Probe<'_>,
    created: &HashMap<String, DirMeta>,
) -> Result<(), StepAside> {
    let mut resolve: Vec<String> = Vec::new();
    for path in items.keys() {
        let mut p = path.as_str();
        while let Some((up, _)) = p.rsplit_once('/') {
            if up.is_empty() {
                break;
            }
            resolve.push(up.to_string());
            p = up;
        }
    }
    resolve.extend(folder.map(str::to_string));
    resolve.sort();
    resolve.dedup();
    for dir in resolve {
        if items.contains_key(&dir) {
            continue;
        }
        let meta = match created.get(&dir) {
            Some(m) => m.clone(),
            None => match probe.stat(&dir).await? {
                Found::Dir(m) => m,
                Found::Missing => DirMeta::created(),
                Found::File | Found::Other => {
                    return Err(StepAside::Below(format!(
                        "{dir} is not a folder in the image below (a symlink or a file)"
                    )))
                }
            },
        };
        items.insert(dir, Item::Dir(meta));
    }
    Ok(())
}

/// The layer's tar: folders with their metadata, files as BuildKit's COPY writes them
/// (their modes and times, owned by root).
fn layer_tar(items: &BTreeMap<String, Item<'_>>, ctx: &Ctx<'_>) -> Result<Vec<u8>, StepAside> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, item) in items {
        let name = path.trim_start_matches('/');
        let mut h = tar::Header::new_gnu();
        match item {
            Item::Dir(m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(m.mode);
                h.set_uid(m.uid);
                h.set_gid(m.gid);
                h.set_mtime(m.mtime);
                h.set_size(0);
                builder.append_data(&mut h, format!("{name}/"), std::io::empty())?;
            }
            Item::File(e) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(e.header.mode().unwrap_or(0o644) & 0o7777);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(e.header.mtime().unwrap_or(0));
                let data = ctx.data(e);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, name, data)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// Whether a history entry (`docker history`'s CREATED BY and SIZE) made a layer: one with a
/// size did; of the rest, the classic builder's `#(nop)` steps and BuildKit's configuration
/// steps did not, and RUN, COPY, ADD and WORKDIR did.
fn makes_layer(created_by: &str, size: i64) -> bool {
    if size > 0 {
        return true;
    }
    let c = created_by.trim();
    if let Some(rest) = c.strip_prefix("/bin/sh -c #(nop)") {
        return matches!(rest.split_whitespace().next(), Some("COPY" | "ADD"));
    }
    if c.starts_with("/bin/sh -c ") || c.starts_with('|') || c.is_empty() {
        return true;
    }
    let word = c
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(word.as_str(), "RUN" | "COPY" | "ADD" | "WORKDIR")
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Load an image (a config and its layers; `None` for a layer the daemon has) through
/// `/images/load`; returns the image ID.
async fn load(
    engine: &Engine,
    config: &serde_json::Value,
    tag: Option<&str>,
    layers: &[Option<Vec<u8>>],
) -> Result<String, StepAside> {
    let config = serde_json::to_vec(config)?;
    let id = sha256_hex(&config);
    let mut builder = tar::Builder::new(Vec::new());
    let mut names = Vec::new();
    let add = |builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, name, data)
    };
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("{i}/layer.tar");
        if let Some(data) = layer {
            add(&mut builder, &name, data)?;
        }
        names.push(name);
    }
    add(&mut builder, &format!("{id}.json"), &config)?;
    let manifest = serde_json::json!([{ "Config": format!("{id}.json"), "RepoTags": tag.map(|t| vec![t]), "Layers": names }]);
    add(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest)?,
    )?;
    let archive = builder.into_inner()?;
    let opts = ImportImageOptionsBuilder::new().quiet(true).build();
    let mut stream = engine
        .docker
        .import_image(opts, bollard::body_full(archive.into()), None);
    while let Some(item) = stream.next().await {
        item.map_err(StepAside::engine("load the patched image"))?;
    }
    Ok(format!("sha256:{id}"))
}

/// A patched image, and what to say of it in the build log.
pub struct Patched {
    pub log: String,
}

/// Make `image` by patching an earlier image of the same service, when the change allows it
/// (see the module's notes). Ok(None): patching does not apply, and the builder builds.
/// Err: it applied but failed; the builder builds, and the reason goes to the build log.
pub async fn patch(
    engine: &Engine,
    project: &str,
    spec: &BuildRequest,
    image: &str,
    plan: &Plan,
    context_tar: &[u8],
) -> Result<Option<Patched>, StepAside> {
    let (label, steps) = (&plan.label, plan.steps.as_slice());
    let repo = format!("masgen/{project}-{}", spec.service);
    let Some((first, old)) = earlier_image(engine, &repo, label).await? else {
        return Ok(None);
    };
    let Some(k) = first else {
        return retag(engine, &old, image).await.map(Some);
    };
    let ctx = Ctx::read(context_tar)
        .ok_or_else(|| StepAside::Unsupported("the context is not a readable tar".into()))?;
    if !patchable(steps, k) {
        return Ok(None);
    }
    let [base] = spec.bases.as_slice() else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let lineage = Lineage::read(engine, &old, base, steps).await?;
    let lower = lineage.base_layers + layer_steps(&steps[..k]);
    let mut image_json = lineage.image_json(lower)?;
    let new = new_layers_below(engine, project, spec, &image_json, lower, |probe| {
        let (base_image, ctx) = (&lineage.base, &ctx);
        async move {
            let mut probe = probe;
            new_layers(steps, k, base_image, ctx, &mut probe).await
        }
    })
    .await?;
    let mut diff_ids: Vec<String> = lineage.layers[..lower].to_vec();
    let mut data: Vec<Option<Vec<u8>>> = vec![None; lower];
    for tar in &new {
        diff_ids.push(format!("sha256:{}", sha256_hex(tar)));
        data.push(Some(tar.clone()));
    }
    image_json["rootfs"]["diff_ids"] = serde_json::json!(diff_ids);
    image_json["history"] = serde_json::json!(lineage.history_entries(steps, k));
    image_json["created"] = serde_json::json!(rfc3339(SystemTime::now()));
    let labels = &mut image_json["config"]["Labels"];
    if !labels.is_object() {
        *labels = serde_json::json!({});
    }
    labels[STEPS_LABEL] = serde_json::json!(label);
    let id = load(engine, &image_json, Some(image), &data).await?;
    let replaced: Vec<String> = steps[k..]
        .iter()
        .filter(|s| matches!(s.kind, Kind::Copy { .. }))
        .map(|s| format!("COPY {}", s.args))
        .collect();
    let sizes: Vec<String> = new.iter().map(|t| format!("{} bytes", t.len())).collect();
    let log = format!(
        "#1 masgen: patched {old}: kept its lower {lower} layers and wrote {} new layer(s) ({}) for: {}\n#1 loaded as {image} ({id}) in {:.2}s, no builder run\n",
        new.len(),
        sizes.join(", "),
        replaced.join("; "),
        started.elapsed().as_secs_f64()
    );
    Ok(Some(Patched { log }))
}

/// The layers a list of steps makes (configuration-only steps make none).
fn layer_steps(s: &[Step]) -> usize {
    s.iter().filter(|s| !matches!(s.kind, Kind::Config)).count()
}

/// The earlier image of `repo` sharing the longest prefix of unchanged steps (the newest
/// of equals): the first changed step (None: nothing changed) and the image's tag.
async fn earlier_image(
    engine: &Engine,
    repo: &str,
    label: &str,
) -> Result<Option<(Option<usize>, String)>, StepAside> {
    let filters: HashMap<&str, Vec<&str>> = [("reference", vec![repo])].into();
    let images = engine
        .docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(StepAside::engine("list the earlier images"))?;
    let mut best: Option<(Option<usize>, i64, String)> = None;
    for i in &images {
        let Some(old) = i.labels.get(STEPS_LABEL) else {
            continue;
        };
        let Some(k) = first_change(old, label) else {
            continue;
        };
        let Some(tag) = i
            .repo_tags
            .iter()
            .find(|t| t.starts_with(&format!("{repo}:")))
        else {
            continue;
        };
        let rank = |k: Option<usize>| k.unwrap_or(usize::MAX);
        if best.as_ref().is_none_or(|(bk, bc, _)| {
            rank(k) > rank(*bk) || (rank(k) == rank(*bk) && i.created > *bc)
        }) {
            best = Some((k, i.created, tag.clone()));
        }
    }
    Ok(best.map(|(k, _, tag)| (k, tag)))
}

/// Nothing the Dockerfile reads changed: the image is the earlier one, tagged anew.
async fn retag(engine: &Engine, old: &str, image: &str) -> Result<Patched, StepAside> {
    let (repo_name, tag) = super::engine::split_image(image);
    let opts = TagImageOptionsBuilder::new()
        .repo(repo_name)
        .tag(tag)
        .build();
    engine
        .docker
        .tag_image(old, Some(opts))
        .await
        .map_err(StepAside::engine("tag the earlier image"))?;
    Ok(Patched {
        log: format!("#1 masgen: nothing the Dockerfile copies changed since {old}: tagged it as {image}, no builder run\n"),
    })
}

/// The earlier image, checked against its Dockerfile: its layers are the base's plus one
/// per layer-making step, and its history names each step's keyword.
struct Lineage {
    old: bollard::models::ImageInspect,
    base: bollard::models::ImageInspect,
    layers: Vec<String>,
    base_layers: usize,
    /// Oldest first.
    history: Vec<bollard::models::ImageHistoryResponseItem>,
    /// Where the Dockerfile's own entries start in `history`.
    base_count: usize,
    /// Which history entries made no layer.
    empty: Vec<bool>,
}

impl Lineage {
    async fn read(
        engine: &Engine,
        old: &str,
        base: &str,
        steps: &[Step],
    ) -> Result<Lineage, StepAside> {
        let (old_image, base_image, history) = tokio::join!(
            engine.docker.inspect_image(old),
            engine.docker.inspect_image(base),
            engine.docker.image_history(old)
        );
        let (old_image, base_image, mut history) = (
            old_image.map_err(StepAside::engine("inspect the earlier image"))?,
            base_image.map_err(StepAside::engine("inspect the base image"))?,
            history.map_err(StepAside::engine("read the earlier image's history"))?,
        );
        let layers_of = |i: &bollard::models::ImageInspect| {
            i.root_fs
                .as_ref()
                .and_then(|r| r.layers.clone())
                .unwrap_or_default()
        };
        let (layers, base_layers) = (layers_of(&old_image), layers_of(&base_image));
        if !layers.starts_with(&base_layers)
            || layers.len() != base_layers.len() + layer_steps(steps)
        {
            return Err(StepAside::Below(format!(
                "{old}'s layers do not line up with its Dockerfile"
            )));
        }
        history.reverse();
        let base_count = history
            .len()
            .checked_sub(steps.len())
            .ok_or_else(|| StepAside::Below("its history is shorter than its Dockerfile".into()))?;
        for (h, s) in history[base_count..].iter().zip(steps) {
            if !h
                .created_by
                .split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(&s.keyword))
            {
                return Err(StepAside::Below(format!(
                    "{old}'s history does not match its Dockerfile ({:?} for {})",
                    h.created_by, s.keyword
                )));
            }
        }
        let mut empty = base_empty(&history[..base_count], base_layers.len());
        empty.extend(steps.iter().map(|s| matches!(s.kind, Kind::Config)));
        Ok(Lineage {
            old: old_image,
            base: base_image,
            base_layers: base_layers.len(),
            layers,
            history,
            base_count,
            empty,
        })
    }

    /// The image config of the layers below `lower`, with the earlier image's settings.
    fn image_json(&self, lower: usize) -> Result<serde_json::Value, StepAside> {
        let config = serde_json::to_value(self.old.config.clone().unwrap_or_default())?;
        let mut image_json = serde_json::json!({
            "architecture": self.old.architecture.clone().unwrap_or_else(|| "amd64".into()),
            "os": self.old.os.clone().unwrap_or_else(|| "linux".into()),
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": self.layers[..lower] },
            "history": [],
        });
        if let Some(v) = &self.old.variant {
            image_json["variant"] = serde_json::json!(v);
        }
        Ok(image_json)
    }

    /// The new image's history: the earlier one's, the patched COPY steps dated now.
    fn history_entries(&self, steps: &[Step], k: usize) -> Vec<serde_json::Value> {
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for (i, h) in self.history.iter().enumerate() {
            let step = i.checked_sub(self.base_count);
            let patched =
                step.is_some_and(|s| s >= k && matches!(steps[s].kind, Kind::Copy { .. }));
            let created = if patched {
                now
            } else {
                SystemTime::UNIX_EPOCH + Duration::from_secs(h.created.max(0) as u64)
            };
            let mut e =
                serde_json::json!({ "created": rfc3339(created), "created_by": h.created_by });
            if patched {
                e["comment"] = serde_json::json!(PATCH_COMMENT);
            } else if !h.comment.is_empty() {
                e["comment"] = serde_json::json!(h.comment);
            }
            if self.empty[i] {
                e["empty_layer"] = serde_json::json!(true);
            }
            entries.push(e);
        }
        entries
    }
}

/// Which of the base image's history entries made no layer. The API does not say which
/// made one, so it is inferred; the history is only what `docker history` shows, and the
/// layers themselves are kept as they are. A guess that names more layers than the base
/// has is cut back, so that `docker history` can still read it.
fn base_empty(history: &[bollard::models::ImageHistoryResponseItem], layers: usize) -> Vec<bool> {
    let mut empty: Vec<bool> = history
        .iter()
        .map(|h| !makes_layer(&h.created_by, h.size))
        .collect();
    let mut extra = empty.iter().filter(|e| !**e).count().saturating_sub(layers);
    for (e, h) in empty.iter_mut().zip(history) {
        if extra > 0 && !*e && h.size == 0 {
            *e = true;
            extra -= 1;
        }
    }
    empty
}

/// Load the image of the layers below `lower` and write the new layers with `write`,
/// which reads the folders the COPYs write into from a container of it (created, never
/// started). The container and that image are removed in the background: removing a
/// container is slow on some storage drivers, and nothing waits on it.
/// Should the run end first, its teardown removes the container (it has the run's label)
/// and the next verify's pruning the image (untagged, with the project's label).
async fn new_layers_below<'e, F, Fut>(
    engine: &'e Engine,
    project: &str,
    spec: &BuildRequest,
    image_json: &serde_json::Value,
    lower: usize,
    write: F,
) -> Result<Vec<Vec<u8>>, StepAside>
where
    F: FnOnce(Probe<'e>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Vec<u8>>, StepAside>>,
{
    let mut below = image_json.clone();
    below["config"]["Labels"] = serde_json::json!({ MANAGED_LABEL: "1", PROJECT_LABEL: project });
    below["created"] = serde_json::json!(rfc3339(SystemTime::now()));
    let below_id = load(engine, &below, None, &vec![None; lower]).await?;
    let probe_body = ContainerCreateBody {
        image: Some(below_id.clone()),
        cmd: Some(vec!["masgen-probe".into()]),
        network_disabled: Some(true),
        // The run's labels, who made it included: another run's cleanup leaves it alone.
        labels: Some(
            crate::runtime::scope::Scope::run(project, &spec.run_id).labels(&spec.run_id, None),
        ),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            probe_body,
        )
        .await;
    let (container, result) = match created {
        Ok(c) => {
            let probe = Probe {
                engine,
                container: c.id.clone(),
                seen: HashMap::new(),
            };
            (Some(c.id), write(probe).await)
        }
        Err(e) => (
            None,
            Err(StepAside::Engine {
                op: "create a container of the image below",
                message: e.to_string(),
            }),
        ),
    };
    let docker = engine.docker.clone();
    tokio::spawn(async move {
        if let Some(id) = &container {
            let _ = docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
        }
        let _ = docker
            .remove_image(
                &below_id,
                Some(RemoveImageOptionsBuilder::new().noprune(true).build()),
                None,
            )
            .await;
    });
    result
}

/// The tars of the new layers, one per COPY from step `k` on.
async fn new_layers(
    steps: &[Step],
    k: usize,
    base: &bollard::models::ImageInspect,
    ctx: &Ctx<'_>,
    probe: &mut Probe<'_>,
) -> Result<Vec<Vec<u8>>, StepAside> {
    let mut workdir = base
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut created: HashMap<String, DirMeta> = HashMap::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if step.keyword == "WORKDIR" {
            if step.args.contains('$') {
                return Err(StepAside::Unsupported("a WORKDIR with a variable".into()));
            }
            workdir = if step.args.starts_with('/') {
                step.args.clone()
            } else {
                format!("{workdir}/{}", step.args)
            };
        }
        if i >= k && matches!(step.kind, Kind::Copy { .. }) {
            out.push(copy_layer(step, &workdir, ctx, probe, &mut created).await?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(files: &[(&str, &str)]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        super::super::context::build_context(d.path(), "Dockerfile", "")
            .unwrap()
            .tar
    }

    #[test]
    fn instructions_join_continuations_and_skip_comments() {
        let df = "FROM python:3.11-slim\n# a comment\nRUN apt-get update && \\\n  # inside\n  apt-get install -y curl\ncopy a.py .\n";
        let i = instructions(df).unwrap();
        assert_eq!(
            i.iter().map(|i| i.keyword.as_str()).collect::<Vec<_>>(),
            ["FROM", "RUN", "COPY"]
        );
        assert!(i[1].args.contains("apt-get install"), "{:?}", i[1]);
        assert_eq!(i[2].args, "a.py .");
        assert!(
            instructions("# syntax=docker/dockerfile:1\nFROM x\n").is_none(),
            "a parser directive"
        );
        assert!(instructions("# escape=`\nFROM x\n").is_none());
        assert!(
            instructions("FROM x\nRUN <<EOF\necho hi\nEOF\n").is_none(),
            "a heredoc"
        );
        assert!(instructions("FROM x\n# syntax=late is a comment\nRUN true\n").is_some());
    }

    #[test]
    fn only_the_copy_that_reads_a_changed_file_changes_its_token() {
        let df = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nCMD [\"python\", \"app.py\"]\n";
        let a = context(&[
            ("Dockerfile", df),
            ("requirements.txt", "x==1\n"),
            ("app.py", "print(1)\n"),
        ]);
        let b = context(&[
            ("Dockerfile", df),
            ("requirements.txt", "x==1\n"),
            ("app.py", "print(2)\n"),
        ]);
        let c = context(&[
            ("Dockerfile", df),
            ("requirements.txt", "x==2\n"),
            ("app.py", "print(1)\n"),
        ]);
        let label = |tar: &[u8], settings: &str, hash: &str| {
            plan("Dockerfile", settings, tar, hash).unwrap().label
        };
        let (la, lb, lc) = (
            label(&a, "s", "ha"),
            label(&b, "s", "hb"),
            label(&c, "s", "hc"),
        );
        assert_eq!(first_change(&la, &lb), Some(Some(3)), "{la}\n{lb}");
        assert_eq!(first_change(&la, &lc), Some(Some(1)));
        assert_eq!(first_change(&la, &la), Some(None));
        assert_eq!(first_change(&la, &label(&a, "other settings", "ha")), None);
        let ctx = Ctx::read(&b).unwrap();
        let s = steps(df, &ctx).unwrap();
        assert!(
            matches!(&s[3].kind, Kind::Copy { sources, dest, .. } if sources == &[""] && dest == "."),
            "{:?}",
            s[3]
        );
        assert_eq!(s[0].kind, Kind::Layer { reads: false });
        assert_eq!(s[4].kind, Kind::Config);
        let ignored = context(&[
            ("Dockerfile", df),
            (".dockerignore", "Dockerfile\n"),
            ("requirements.txt", "x==1\n"),
            ("app.py", "print(1)\n"),
        ]);
        assert!(
            plan("Dockerfile", "s", &ignored, "h").is_none(),
            "a .dockerignore naming the Dockerfile"
        );
    }

    #[test]
    fn only_trailing_copies_and_configuration_are_patched() {
        let ctx_tar = context(&[
            ("Dockerfile", "FROM x\n"),
            ("requirements.txt", "a\n"),
            ("app.py", "1"),
        ]);
        let ctx = Ctx::read(&ctx_tar).unwrap();
        let usual = steps("FROM x\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nUSER 1000\nCMD [\"python\", \"app.py\"]\n", &ctx).unwrap();
        assert!(patchable(&usual, 3), "the code copied last");
        assert!(
            !patchable(&usual, 1),
            "the requirements: the RUN after it must run again"
        );
        let compiled = steps(
            "FROM x\nCOPY . /app/\nRUN python -m compileall /app\n",
            &ctx,
        )
        .unwrap();
        assert!(!patchable(&compiled, 0), "a RUN after the COPY");
        let added = steps("FROM x\nADD . /app/\n", &ctx).unwrap();
        assert!(!patchable(&added, 0), "ADD");
        let moved = steps("FROM x\nCOPY app.py /app/\nWORKDIR /app\n", &ctx).unwrap();
        assert!(
            !patchable(&moved, 0),
            "a WORKDIR after the COPY makes a layer of its own"
        );
    }

    #[test]
    fn history_entries_that_made_layers() {
        for (by, size) in [
            ("/bin/sh -c #(nop) COPY file:4ab9 in /etc/x", 220),
            ("/bin/sh -c apt-get update", 0),
            ("|1 A=1 /bin/sh -c true", 0),
            ("WORKDIR /app", 0),
            ("RUN /bin/sh -c true # buildkit", 0),
            ("COPY . . # buildkit", 0),
            ("", 0),
        ] {
            assert!(makes_layer(by, size), "{by}");
        }
        for by in [
            "/bin/sh -c #(nop)  CMD [\"python3\"]",
            "/bin/sh -c #(nop) WORKDIR /app",
            "ENV A=1",
            "CMD [\"a\"]",
            "EXPOSE map[9000/tcp:{}]",
            "ARG A=1",
            "LABEL x=y",
        ] {
            assert!(!makes_layer(by, 0), "{by}");
        }
    }

    #[test]
    fn copies_patching_cannot_reproduce_read_the_whole_context() {
        let ctx_tar = context(&[("Dockerfile", "FROM x\n"), ("a.py", "1"), ("lib/b.py", "2")]);
        let ctx = Ctx::read(&ctx_tar).unwrap();
        for args in [
            "--chown=1:1 a.py /app/",
            "*.py /app/",
            "$SRC /app/",
            "missing.py /app/",
            "a.py lib/b.py /app",
            "../a.py /app/",
            "[\"a.py\"]",
        ] {
            assert_eq!(copy_kind(args, &ctx), Kind::Layer { reads: true }, "{args}");
        }
        for args in [
            "a.py /app/",
            "[\"a.py\", \"/app/\"]",
            "lib /opt/lib",
            "./lib/ /opt/",
            ". .",
            "a.py lib/b.py /app/",
        ] {
            assert!(matches!(copy_kind(args, &ctx), Kind::Copy { .. }), "{args}");
        }
        assert!(
            steps("FROM a AS b\nFROM b\nCOPY a.py .\n", &ctx).is_none(),
            "two stages"
        );
        let s = steps(
            "FROM x\nADD a.py .\nRUN --mount=type=bind,target=/s true\nCOPY --from=y /a /a\n",
            &ctx,
        )
        .unwrap();
        assert!(s.iter().all(|s| s.kind == Kind::Layer { reads: true }));
    }
}
