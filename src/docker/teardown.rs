//! Remove what masgen started: containers, networks and volumes, found by label.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions,
};

use super::{Engine, MANAGED_LABEL};

/// What a teardown removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
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
