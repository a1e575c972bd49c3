//! Remove what masgen started: containers, networks and volumes, found by label.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    RemoveVolumeOptions,
};

use super::{Engine, MANAGED_LABEL, PROJECT_LABEL};
use crate::runtime::scope::{run_is_over, HOST_LABEL, KEPT_LABEL, PID_LABEL};
pub use crate::runtime::Removed;

/// Remove every masgen object carrying `label=value` (a project or a run label); its named
/// volumes too only with `volumes` (a kept system's hold the user's data, as Compose's
/// `down` keeps them without `-v`). Best effort: keeps going past failures and reports what
/// it removed, and which volumes it kept.
pub async fn remove_labelled(engine: &Engine, label: &str, value: &str, volumes: bool) -> Removed {
    let all = |_: &HashMap<String, String>| true;
    let none = |_: &HashMap<String, String>| false;
    let vols: &(dyn Fn(&HashMap<String, String>) -> bool + Sync) =
        if volumes { &all } else { &none };
    remove_where(engine, label, value, &all, vols).await
}

/// What is left of `project` by runs that are over (their process is gone, see
/// [`crate::runtime::scope`]): removed. Kept systems and live runs' objects stay.
pub async fn remove_dead_runs(engine: &Engine, project: &str) -> Removed {
    remove_where(engine, PROJECT_LABEL, project, &run_is_over, &run_is_over).await
}

/// `masgen down`: the project's kept system and what dead runs left, removed; what live
/// runs hold stays, and `left` says so. The kept system's named volumes stay unless
/// `volumes` (`-v`): they hold the user's data. Dead verification runs' volumes are
/// run-scoped copies, and go.
pub async fn remove_project(engine: &Engine, project: &str, volumes: bool) -> Removed {
    let over_or_kept = |l: &HashMap<String, String>| l.contains_key(KEPT_LABEL) || run_is_over(l);
    let dead_run = |l: &HashMap<String, String>| !l.contains_key(KEPT_LABEL) && run_is_over(l);
    let vols: &(dyn Fn(&HashMap<String, String>) -> bool + Sync) =
        if volumes { &over_or_kept } else { &dead_run };
    let mut removed = remove_where(engine, PROJECT_LABEL, project, &over_or_kept, vols).await;
    for (run, n) in live_runs(engine, project).await {
        removed.held.push(format!(
            "{n} container(s) of a verification still running ({run}) were left alone: it removes its own when it ends"
        ));
    }
    removed
}

/// The containers `project` has kept (`--keep`), by name.
pub async fn kept_containers(engine: &Engine, project: &str) -> Vec<String> {
    containers_of(engine, project)
        .await
        .into_iter()
        .filter(|(_, l)| l.contains_key(KEPT_LABEL))
        .map(|(name, _)| name)
        .collect()
}

/// Live runs of `project` (not kept), each described, with how many containers it has.
async fn live_runs(engine: &Engine, project: &str) -> Vec<(String, usize)> {
    let mut runs: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, l) in containers_of(engine, project).await {
        if !l.contains_key(KEPT_LABEL) && !run_is_over(&l) {
            let pid = l.get(PID_LABEL).cloned().unwrap_or_default();
            let host = l.get(HOST_LABEL).cloned().unwrap_or_default();
            *runs.entry(format!("process {pid} on {host}")).or_default() += 1;
        }
    }
    runs.into_iter().collect()
}

/// The project's masgen containers: name and labels.
async fn containers_of(engine: &Engine, project: &str) -> Vec<(String, HashMap<String, String>)> {
    labelled_containers(engine, PROJECT_LABEL, project)
        .await
        .into_iter()
        .map(|c| {
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
            (
                name.trim_start_matches('/').to_string(),
                c.labels.unwrap_or_default(),
            )
        })
        .collect()
}

/// Every masgen container (running or not) carrying `label=value`.
async fn labelled_containers(
    engine: &Engine,
    label: &str,
    value: &str,
) -> Vec<bollard::models::ContainerSummary> {
    let filter = format!("{label}={value}");
    let filters: HashMap<&str, Vec<&str>> =
        [("label", vec![filter.as_str(), MANAGED_LABEL])].into();
    engine
        .docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap_or_default()
}

/// Remove the masgen objects carrying `label=value` whose labels `select` takes.
async fn remove_where(
    engine: &Engine,
    label: &str,
    value: &str,
    select: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
    volumes: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
) -> Removed {
    let mut removed = Removed::default();
    let filter = format!("{label}={value}");
    let filters: HashMap<&str, Vec<&str>> =
        [("label", vec![filter.as_str(), MANAGED_LABEL])].into();
    remove_containers(engine, label, value, select, &mut removed).await;
    remove_networks(engine, &filters, select, &mut removed).await;
    remove_volumes(engine, &filters, select, volumes, &mut removed).await;
    removed
}

/// The containers, all at once: each removal waits on the daemon killing and unmounting
/// its container.
async fn remove_containers(
    engine: &Engine,
    label: &str,
    value: &str,
    select: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
    removed: &mut Removed,
) {
    let containers = labelled_containers(engine, label, value).await;
    let removals = containers
        .into_iter()
        .filter(|c| c.labels.as_ref().is_none_or(select))
        .filter_map(|c| {
            Some((
                c.id?,
                c.names.and_then(|n| n.first().cloned()).unwrap_or_default(),
            ))
        })
        .map(|(id, name)| async move {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match engine.docker.remove_container(&id, Some(opts)).await {
                // Gone already (a patch's probe container removes itself in the background).
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(()),
                r => r.map_err(|e| {
                    format!(
                        "container {} was not removed ({})",
                        name.trim_start_matches('/'),
                        short(&e.to_string())
                    )
                }),
            }
        });
    for result in futures_util::future::join_all(removals).await {
        match result {
            Ok(()) => removed.containers += 1,
            Err(why) => removed.left.push(why),
        }
    }
}

async fn remove_networks(
    engine: &Engine,
    filters: &HashMap<&str, Vec<&str>>,
    select: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
    removed: &mut Removed,
) {
    let networks = engine
        .docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(filters).build(),
        ))
        .await
        .unwrap_or_default();
    for n in networks
        .into_iter()
        .filter(|n| n.labels.as_ref().is_none_or(select))
    {
        let (Some(id), name) = (n.id, n.name.unwrap_or_default()) else {
            continue;
        };
        match engine.docker.remove_network(&id).await {
            Ok(()) => removed.networks += 1,
            Err(e) => removed
                .left
                .push(network_left(engine, &name, &id, &e.to_string()).await),
        }
    }
}

/// The volumes `select` takes: those `remove` also takes are removed, the others kept
/// (named in `removed.kept_volumes`).
async fn remove_volumes(
    engine: &Engine,
    filters: &HashMap<&str, Vec<&str>>,
    select: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
    remove: &(dyn Fn(&HashMap<String, String>) -> bool + Sync),
    removed: &mut Removed,
) {
    let volumes = engine
        .docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(filters).build(),
        ))
        .await
        .ok();
    for v in volumes
        .and_then(|v| v.volumes)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| select(&v.labels))
    {
        if !remove(&v.labels) {
            removed.kept_volumes.push(v.name.clone());
            continue;
        }
        match engine.docker.remove_volume(&v.name, None::<RemoveVolumeOptions>).await {
            Ok(()) => removed.volumes += 1,
            Err(e) => removed.left.push(format!("volume {} was not removed ({}): remove what still uses it, then `docker volume rm {}`", v.name, short(&e.to_string()), v.name)),
        }
    }
}

/// Why a network stayed, and what to do about it.
async fn network_left(engine: &Engine, name: &str, id: &str, error: &str) -> String {
    let users: Vec<String> = engine
        .docker
        .inspect_network(id, None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
        .ok()
        .and_then(|n| n.containers)
        .map(|c| c.into_values().filter_map(|e| e.name).collect())
        .unwrap_or_default();
    network_left_message(name, error, &users)
}

fn network_left_message(name: &str, error: &str, users: &[String]) -> String {
    if !users.is_empty() {
        return format!(
            "network {name} was not removed: {} still use(s) it, and masgen did not start them; disconnect them (`docker network disconnect {name} <container>`), then `masgen down`",
            users.join(", ")
        );
    }
    if error.contains("active endpoints") {
        return format!(
            "network {name} was not removed: the daemon says it has active endpoints, but no container uses it. That is a known Docker bug (moby/moby#43286); only restarting the Docker daemon clears it, and masgen reuses the network meanwhile"
        );
    }
    format!("network {name} was not removed ({})", short(error))
}

/// A Docker error without bollard's wrapping.
fn short(error: &str) -> String {
    error
        .rsplit_once("Docker responded with status code ")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| error.to_string())
}

/// Remove the project's images that `current` (the images of this run) superseded: older
/// `masgen/<project>-<service>:<hash>` tags, and images a `--no-cache` rebuild left without a
/// tag. Each fix of a repair loop tags a new image, so without this a long repair or iterate
/// history piles up tags. An image a container still uses (a system kept with `--keep`)
/// is left alone; so is every image not named `masgen/<project>-...`.
pub async fn prune_images(engine: &Engine, project: &str, current: &[String]) -> usize {
    let filter = format!("{PROJECT_LABEL}={project}");
    let filters: HashMap<&str, Vec<&str>> = [("label", vec![filter.as_str()])].into();
    let images = engine
        .docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap_or_default();
    let ours = format!("masgen/{project}-");
    let mut doomed: Vec<String> = Vec::new();
    for image in images {
        let tags: Vec<&String> = image
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .collect();
        if tags.is_empty() {
            doomed.push(image.id.clone());
        } else if tags.iter().all(|t| t.starts_with(&ours)) {
            // By tag: an image id with two tags cannot be removed by id without force. An
            // image that also carries a current tag (a patch that found nothing changed
            // tags the earlier image anew) only loses its old tags.
            doomed.extend(tags.into_iter().filter(|t| !current.contains(t)).cloned());
        }
    }
    let removals = doomed.into_iter().map(|name| async move {
        let opts = RemoveImageOptionsBuilder::new().force(false).build();
        engine
            .docker
            .remove_image(&name, Some(opts), None)
            .await
            .is_ok()
    });
    futures_util::future::join_all(removals)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_left_behind_says_why_and_what_to_do() {
        let users = network_left_message(
            "p_default",
            "has active endpoints",
            &["someone-else".into()],
        );
        assert!(
            users.contains(
                "someone-else still use(s) it, and masgen did not start them; disconnect them"
            ),
            "{users}"
        );
        let stale = network_left_message("p_default", "Docker responded with status code 403: error while removing network: network p_default id 1 has active endpoints", &[]);
        assert!(
            stale.contains(
                "known Docker bug (moby/moby#43286); only restarting the Docker daemon clears it"
            ),
            "{stale}"
        );
        assert_eq!(
            network_left_message(
                "p_default",
                "Docker responded with status code 500: boom",
                &[]
            ),
            "network p_default was not removed (500: boom)"
        );
    }
}
