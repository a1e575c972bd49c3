//! `masgen down [DIR]`: remove what masgen left running for a project.

use super::*;

pub(super) async fn down(a: &args::DownArgs, ui: &Ui) -> Result<i32, Fatal> {
    let (dir, project, images) = (a.dir.as_path(), &a.project, a.images);
    let (events, json) = (&ui.events, ui.json);
    let name = match crate::compose::load::load_with(dir, &project.load_options()) {
        Ok(p) => p.name,
        Err(_) => {
            let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            crate::compose::load::sanitize_project_name(
                &abs.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        }
    };
    if !dir.is_dir() {
        // A deleted system's containers can still be removed by its project name.
        events.warn(format!(
            "{} is not a folder: removing what project '{name}' left running, found by its name",
            dir.display()
        ));
    }
    let rt = runtime();
    let rt = rt
        .connect()
        .await
        .map_err(|e| Fatal::new(exit::ENVIRONMENT, e))?;
    // Compose runs pre_stop hooks before it stops the containers.
    let load = project.load_options();
    if let Ok(plan) = crate::plan::load(dir, &load, true, Duration::from_secs(5)) {
        crate::verify::pre_stop_kept(rt, &plan, events).await;
    }
    // The kept system and what runs that are over left; a live verification keeps its own.
    let mut removed = rt.remove_project(&name, a.volumes).await;
    if images {
        // No image is current once the containers are gone; one another container uses stays.
        removed.images = rt.prune_images(&name, &[]).await;
    }
    for why in removed.left.iter().chain(&removed.held) {
        events.warn(why.clone());
    }
    events.emit(crate::Event::TornDown {
        containers: removed.containers,
        networks: removed.networks,
        volumes: removed.volumes,
        images: removed.images,
    });
    if !json {
        let images = if images {
            format!(", {} image(s)", removed.images)
        } else {
            String::new()
        };
        println!(
            "project {name}: removed {} container(s), {} network(s), {} volume(s){images}",
            removed.containers, removed.networks, removed.volumes
        );
        if !removed.kept_volumes.is_empty() {
            println!(
                "kept volume(s) {} with their data for the next --keep or --execute: `masgen down -v` removes them",
                removed.kept_volumes.join(", ")
            );
        }
    }
    if !removed.left.is_empty() {
        return Err(Fatal::new(
            exit::ENVIRONMENT,
            format!(
                "project {name}: {} object(s) could not be removed (see above)",
                removed.left.len()
            ),
        ));
    }
    Ok(exit::OK)
}
