//! Named build contexts (`build.additional_contexts`) on the builder. Each gets an image:
//! a `docker-image://` one is that image, a `service:` one the image that service built,
//! and a folder becomes a short-lived image holding its files at `/` (its `.dockerignore`
//! applied). The Dockerfile's references to the contexts are rewritten to name those
//! images (see plan/dockerfile.rs), which needs BuildKit for `RUN --mount=from=`, as
//! Compose needs it; the classic builder is refused.

use std::collections::HashMap;

use super::context::{folder_image_context, Context};
use super::{buildkit, Engine, PROJECT_LABEL};
use crate::plan::NamedContext;

/// One context, read: an image's reference, or a folder's archive.
enum Read {
    Image(String),
    Folder(Box<Context>),
}

/// Why a named context cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build.additional_contexts '{name}': cannot read {}: {source}", dir.display())]
    Read {
        name: String,
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "build.additional_contexts '{name}': the image of service '{service}' is not known yet"
    )]
    Unresolved { name: String, service: String },
    #[error("build.additional_contexts '{name}': cannot load the folder: {why}")]
    Load { name: String, why: String },
}

/// A build's named contexts, read before its hash is known (a folder's files are part of it).
pub struct Contexts {
    read: Vec<(String, Read)>,
}

impl Contexts {
    /// Read each context (`service:` ones already resolved to their images); a folder that
    /// cannot be read says so.
    pub fn read(contexts: &[(String, NamedContext)]) -> Result<Contexts, ContextError> {
        let mut read = Vec::new();
        for (name, c) in contexts {
            let r = match c {
                NamedContext::Image(image) => Read::Image(image.clone()),
                NamedContext::Dir(dir) => {
                    Read::Folder(Box::new(folder_image_context(dir).map_err(|source| {
                        ContextError::Read {
                            name: name.clone(),
                            dir: dir.clone(),
                            source,
                        }
                    })?))
                }
                NamedContext::Service(s) => {
                    return Err(ContextError::Unresolved {
                        name: name.clone(),
                        service: s.clone(),
                    })
                }
            };
            read.push((name.clone(), r));
        }
        Ok(Contexts { read })
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_empty()
    }

    /// What of them goes into the image's hash.
    pub fn settings(&self) -> String {
        let parts: Vec<String> = self
            .read
            .iter()
            .map(|(name, r)| match r {
                Read::Image(i) => format!("{name}=image:{i}"),
                Read::Folder(c) => format!("{name}=folder:{}", c.hash),
            })
            .collect();
        match parts.is_empty() {
            true => String::new(),
            false => format!("\ncontexts={parts:?}"),
        }
    }

    /// An image for each context: a folder's is built now (`made` lists those, to remove
    /// once the build is over). Returns (name, image) pairs.
    pub async fn load(
        self,
        engine: &Engine,
        transport: &buildkit::Transport,
        project: &str,
        service: &str,
        made: &mut Vec<String>,
    ) -> Result<Vec<(String, String)>, ContextError> {
        let mut images = Vec::new();
        for (i, (name, r)) in self.read.into_iter().enumerate() {
            let image = match r {
                Read::Image(image) => image,
                Read::Folder(ctx) => {
                    let image =
                        format!("masgen/{project}-{service}--context{i}:{}", &ctx.hash[..12]);
                    let labels: HashMap<&str, &str> = [(PROJECT_LABEL, project)].into();
                    let query = [
                        ("t", image.clone()),
                        ("rm", "1".to_string()),
                        ("forcerm", "1".to_string()),
                        ("labels", serde_json::to_string(&labels).unwrap_or_default()),
                    ];
                    let tar = hyper::body::Bytes::from(ctx.tar);
                    let out = buildkit::build(transport, &engine.api_version(), &query, None, tar)
                        .await
                        .map_err(|buildkit::Refused(why)| why);
                    made.push(image.clone());
                    if let Some(e) = out.and_then(|o| o.error.map_or(Ok(()), Err)).err() {
                        return Err(ContextError::Load { name, why: e });
                    }
                    image
                }
            };
            images.push((name, image));
        }
        Ok(images)
    }
}

/// Remove the images [`Contexts::load`] made.
pub async fn unload(engine: &Engine, made: &[String]) {
    for image in made {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new().build();
        let _ = engine.docker.remove_image(image, Some(opts), None).await;
    }
}
