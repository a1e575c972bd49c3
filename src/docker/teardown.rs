//! Remove what masgen started: containers, networks and volumes, found by label.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, RemoveVolumeOptions,
};

use super::{Engine, MANAGED_LABEL, PROJECT_LABEL};

/// What a teardown removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Superseded images of the project (see [`prune_images`]).
    pub images: usize,
}

/// Remove every masgen object carrying `label=value` (a project or a run label).
/// Best effort: keeps going past failures and reports what it removed.
pub async fn remove_labelled(engine: &Engine, label: &str, value: &str) -> Removed {
    let mut removed = Removed::default();
    let filter = format!("{label}={value}");
    let filters: HashMap<&str, Vec<&str>> = [("label", vec![filter.as_str(), MANAGED_LABEL])].into();
    let containers = engine
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .unwrap_or_default();
    // All at once: each removal waits on the daemon killing and unmounting its container.
    let removals = containers.into_iter().filter_map(|c| c.id).map(|id| async move {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        engine.docker.remove_container(&id, Some(opts)).await.is_ok()
    });
    removed.containers = futures_util::future::join_all(removals).await.into_iter().filter(|ok| *ok).count();
    let networks = engine.docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await.unwrap_or_default();
    for n in networks {
        if let Some(id) = n.id {
            if engine.docker.remove_network(&id).await.is_ok() {
                removed.networks += 1;
            }
        }
    }
    let volumes = engine.docker.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())).await.ok();
    for v in volumes.and_then(|v| v.volumes).unwrap_or_default() {
        if engine.docker.remove_volume(&v.name, None::<RemoveVolumeOptions>).await.is_ok() {
            removed.volumes += 1;
        }
    }
    removed
}

/// Remove the project's images that `current` (the images of this run) superseded: older
/// `masgen/<project>-<service>:<hash>` tags, and images a `--no-cache` rebuild left without a
/// tag. Each fix of a repair loop tags a new image, so without this a long repair or iterate
/// history piles up tags. An image a container still uses (a system kept with `--keep`)
/// is left alone; so is every image not named `masgen/<project>-...`.
pub async fn prune_images(engine: &Engine, project: &str, current: &[String]) -> usize {
    let filter = format!("{PROJECT_LABEL}={project}");
    let filters: HashMap<&str, Vec<&str>> = [("label", vec![filter.as_str()])].into();
    let images = engine.docker.list_images(Some(ListImagesOptionsBuilder::new().filters(&filters).build())).await.unwrap_or_default();
    let ours = format!("masgen/{project}-");
    let mut doomed: Vec<String> = Vec::new();
    for image in images {
        let tags: Vec<&String> = image.repo_tags.iter().filter(|t| t.as_str() != "<none>:<none>").collect();
        if tags.is_empty() {
            doomed.push(image.id.clone());
        } else if tags.iter().all(|t| t.starts_with(&ours) && !current.contains(t)) {
            // By tag: an image id with two tags cannot be removed by id without force.
            doomed.extend(tags.into_iter().cloned());
        }
    }
    let removals = doomed.into_iter().map(|name| async move {
        let opts = RemoveImageOptionsBuilder::new().force(false).build();
        engine.docker.remove_image(&name, Some(opts), None).await.is_ok()
    });
    futures_util::future::join_all(removals).await.into_iter().filter(|ok| *ok).count()
}
