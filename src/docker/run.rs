//! Networks, volumes and containers of one run.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListNetworksOptionsBuilder};

use super::scope::Scope;
use super::{DockerError, Engine, MANAGED_LABEL};
use crate::compose::model::{parse_bytes, parse_duration, FileMount, FileSource, Mount, Service};

/// The project's networks, by compose name: each one's Docker name and id.
#[derive(Debug, Clone, Default)]
pub struct Networks {
    pub by_name: HashMap<String, (String, String)>,
}

/// A network or volume the project uses: its compose name, its Docker name, and whether it
/// is external (made outside the project: looked up, never created or removed).
#[derive(Debug, Clone)]
pub struct NetworkWanted {
    pub name: String,
    pub docker_name: String,
    pub external: bool,
}

/// The project's networks: each looked up by name first (creating a name that exists
/// makes a second network on 20.10), else created with the project's labels; used by id.
pub async fn ensure_networks(
    engine: &Engine,
    scope: &Scope,
    run: &str,
    wanted: &[NetworkWanted],
) -> Result<Networks, DockerError> {
    let mut out = Networks::default();
    for w in wanted {
        let id = match find_network(engine, &w.docker_name).await? {
            Some(id) => id,
            None if w.external => {
                return Err(DockerError::op(
                    "find network",
                    &w.docker_name,
                    format!("network '{}' is declared external, and no network of that name exists: create it (docker network create {}) or drop external:", w.name, w.docker_name),
                ))
            }
            None => {
                let req = NetworkCreateRequest {
                    name: w.docker_name.clone(),
                    driver: Some("bridge".into()),
                    labels: Some(scope.labels(run, None)),
                    ..Default::default()
                };
                engine
                    .docker
                    .create_network(req)
                    .await
                    .map_err(|e| DockerError::op("create network", &w.docker_name, e))?
                    .id
            }
        };
        out.by_name
            .insert(w.name.clone(), (w.docker_name.clone(), id));
    }
    Ok(out)
}

async fn find_network(engine: &Engine, name: &str) -> Result<Option<String>, DockerError> {
    let filters: HashMap<&str, Vec<&str>> = [("name", vec![name])].into();
    let existing = engine
        .docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|e| DockerError::op("list networks", name, e))?;
    Ok(existing
        .into_iter()
        .find(|n| n.name.as_deref() == Some(name))
        .and_then(|n| n.id))
}

/// The endpoint of `svc` (service `name`) on compose network `net`: the service's name
/// and that network's aliases; container_name and hostname resolve too.
fn endpoint(name: &str, svc: &Service, net: &str, id: &str) -> EndpointSettings {
    let mut aliases = vec![name.to_string()];
    aliases.extend(svc.container_name.clone());
    aliases.extend(svc.hostname.clone());
    aliases.extend(svc.networks.iter().flat_map(|n| n.aliases_on(net)));
    EndpointSettings {
        aliases: Some(aliases),
        network_id: Some(id.to_string()),
        ..Default::default()
    }
}

/// The networks `svc` joins after its container is created (API 1.41 creates a container
/// on one network): the Docker network and the endpoint for each.
pub fn extra_endpoints(
    name: &str,
    svc: &Service,
    networks: &Networks,
) -> Vec<(String, EndpointSettings)> {
    if svc.network_mode.as_deref().is_some_and(|m| !m.is_empty()) {
        return Vec::new();
    }
    svc.network_names()
        .iter()
        .skip(1)
        .filter_map(|n| {
            let (docker, id) = networks.by_name.get(n)?;
            Some((docker.clone(), endpoint(name, svc, n, id)))
        })
        .collect()
}

/// Connect a created container to its other networks.
pub async fn connect_networks(
    engine: &Engine,
    container: &str,
    extra: Vec<(String, EndpointSettings)>,
) -> Result<(), String> {
    for (network, endpoint) in extra {
        let req = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(endpoint),
        };
        engine
            .docker
            .connect_network(&network, req)
            .await
            .map_err(|e| format!("connecting to network {network}: {e}"))?;
    }
    Ok(())
}

/// Create the project's named volumes (labelled; an external one must exist and is used
/// as it is); returns compose name -> Docker name.
pub async fn ensure_volumes(
    engine: &Engine,
    scope: &Scope,
    run: &str,
    wanted: &[NetworkWanted],
) -> Result<HashMap<String, String>, DockerError> {
    let mut out = HashMap::new();
    for w in wanted {
        if engine.docker.inspect_volume(&w.docker_name).await.is_err() {
            if w.external {
                return Err(DockerError::op(
                    "find volume",
                    &w.docker_name,
                    format!("volume '{}' is declared external, and no volume of that name exists: create it (docker volume create {}) or drop external:", w.name, w.docker_name),
                ));
            }
            let req = VolumeCreateRequest {
                name: Some(w.docker_name.clone()),
                labels: Some(scope.labels(run, None)),
                ..Default::default()
            };
            engine
                .docker
                .create_volume(req)
                .await
                .map_err(|e| DockerError::op("create volume", &w.docker_name, e))?;
        }
        out.insert(w.name.clone(), w.docker_name.clone());
    }
    Ok(out)
}

/// Settings of one container that do not come from the compose file.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// How the run names and labels its objects.
    pub scope: Scope,
    /// Publish declared host ports (`--execute`) instead of ephemeral ones on 127.0.0.1.
    pub publish_declared: bool,
    /// Default memory limit in bytes.
    pub memory: i64,
    pub pids: i64,
}

fn nanos(d: &Option<String>) -> Option<i64> {
    d.as_deref()
        .and_then(|s| parse_duration(s).ok())
        .map(|d| d.as_nanos() as i64)
}

/// `environment` as `KEY=VALUE` strings (loading the project folded `env_file` into it and
/// took values given by name from the project's variables; a name still without one is unset).
pub fn environment(svc: &Service) -> Vec<String> {
    svc.environment
        .iter()
        .flat_map(|e| e.pairs())
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect()
}

/// What a container is attached to: the run's networks and volumes, how the run names and
/// limits containers, and the service's secret and config files.
pub struct Attachments<'a> {
    pub networks: &'a Networks,
    pub volumes: &'a HashMap<String, String>,
    pub settings: &'a RunSettings,
    pub files: &'a [FileMount],
}

/// Start a created container.
pub async fn start(engine: &Engine, container: &str) -> Result<(), bollard::errors::Error> {
    engine
        .docker
        .start_container(
            container,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
}

/// The container body for `service`.
pub fn container_body(
    run: &str,
    name: &str,
    svc: &Service,
    image: &str,
    root: &Path,
    with: &Attachments,
) -> Result<ContainerCreateBody, String> {
    let (networks, volumes, settings, files) =
        (with.networks, with.volumes, with.settings, with.files);
    let scope = &settings.scope;
    let mut lbls = scope.labels(run, Some(name));
    for (k, v) in svc.labels.iter().flat_map(|l| l.pairs()) {
        lbls.insert(k, v.unwrap_or_default());
    }
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &svc.ports {
        for m in p.mappings()? {
            let key = format!("{}/{}", m.container_port, m.protocol);
            exposed.push(key.clone());
            let binding = if settings.publish_declared {
                PortBinding {
                    host_ip: m.host_ip.clone().or(Some("0.0.0.0".into())),
                    host_port: m.published(),
                }
            } else {
                // Verifying: ephemeral ports on loopback, so runs never collide.
                PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: None,
                }
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    for e in &svc.expose {
        let t = e.text();
        exposed.push(if t.contains('/') {
            t
        } else {
            format!("{t}/tcp")
        });
    }
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    let mut tmpfs: HashMap<String, String> = HashMap::new();
    for v in &svc.volumes {
        match v.mount()? {
            Mount::Named {
                name: vol,
                target,
                read_only,
            } => {
                let docker_name = volumes.get(&vol).cloned().unwrap_or(vol);
                binds.push(format!(
                    "{docker_name}:{target}{}",
                    if read_only { ":ro" } else { "" }
                ));
            }
            Mount::Bind {
                source,
                target,
                read_only,
            } => {
                let src = if Path::new(&source).is_absolute() {
                    Path::new(&source).to_path_buf()
                } else {
                    root.join(&source)
                };
                binds.push(format!(
                    "{}:{target}{}",
                    src.display(),
                    if read_only { ":ro" } else { "" }
                ));
            }
            Mount::Anonymous { target } => anonymous.push(target),
            Mount::Tmpfs { target } => {
                tmpfs.insert(target, String::new());
            }
        }
    }
    // Secrets and configs from files are read-only bind mounts, as compose makes them; the
    // others are copied in after creation (copy_files).
    for f in files {
        if let FileSource::Path(p) = &f.source {
            binds.push(format!("{}:{}:ro", p.display(), f.target));
        }
    }
    for (target, opts) in svc.tmpfs_mounts() {
        tmpfs.insert(target, opts);
    }
    let healthcheck = svc.healthcheck.as_ref().and_then(|h| {
        if h.disabled() {
            return Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            });
        }
        h.docker_test().map(|test| HealthConfig {
            test: Some(test),
            interval: nanos(&h.interval),
            timeout: nanos(&h.timeout),
            retries: h.retries.map(i64::from),
            start_period: nanos(&h.start_period),
            start_interval: None, // needs API 1.44
        })
    });
    let memory = match svc.memory_limit() {
        Some(m) => parse_bytes(&m)?,
        None => settings.memory,
    };

    // `network_mode: host`, `none` or `bridge` (the first only with --allow-unsafe) instead
    // of the project's network; published ports mean nothing on host or none.
    let project_network = svc.network_mode.as_deref().is_none_or(str::is_empty);
    // Created on its first network; the others are joined before it starts.
    let first = svc.network_names().into_iter().next().unwrap_or_default();
    let primary = match networks.by_name.get(&first) {
        Some((docker_name, id)) if project_network => {
            let mut endpoint = endpoint(name, svc, &first, id);
            // A link is an alias only this container sees, as compose makes it on its network.
            endpoint.links = Some(
                svc.link_pairs()
                    .into_iter()
                    .map(|(target, alias)| format!("{}:{alias}", scope.container(&target)))
                    .collect(),
            );
            Some((docker_name.clone(), endpoint))
        }
        None if project_network => {
            return Err(format!(
                "network '{first}' is not one of the project's networks"
            ))
        }
        _ => None,
    };
    if !project_network && svc.network_mode.as_deref() != Some("bridge") {
        bindings.clear();
    }
    // `service:X` is X's container; joining its network leaves names, ports and DNS to it
    // (Docker refuses them on such a container).
    let namespace = |mode: &Option<String>| {
        mode.as_deref().map(|m| {
            m.strip_prefix("service:").map_or(m.to_string(), |x| {
                format!("container:{}", scope.container(x.trim()))
            })
        })
    };
    let joins_network = svc
        .network_mode
        .as_deref()
        .is_some_and(|m| m.starts_with("service:"));
    if joins_network {
        exposed.clear();
    }
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        binds: Some(binds),
        tmpfs: Some(tmpfs),
        memory: Some(memory),
        pids_limit: Some(settings.pids),
        nano_cpus: svc.cpu_limit().map(|c| (c * 1e9) as i64),
        init: svc.init,
        // The policy refused the unsafe values of these unless --allow-unsafe was given;
        // what is left runs as written.
        privileged: svc.privileged,
        cap_add: Some(svc.cap_add.clone()),
        cap_drop: Some(svc.cap_drop.clone()),
        security_opt: Some(svc.security_opt.clone()),
        devices: Some(
            svc.device_mappings()
                .into_iter()
                .map(|(host, inside, perms)| DeviceMapping {
                    path_on_host: Some(host),
                    path_in_container: Some(inside),
                    cgroup_permissions: Some(perms),
                })
                .collect(),
        ),
        pid_mode: namespace(&svc.pid),
        ipc_mode: namespace(&svc.ipc),
        readonly_rootfs: svc.read_only,
        shm_size: svc
            .shm_size
            .as_ref()
            .map(|s| parse_bytes(&s.text()))
            .transpose()?,
        extra_hosts: Some(if joins_network {
            Vec::new()
        } else {
            svc.extra_hosts()
        }),
        ulimits: Some(
            svc.ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.limits().0),
                    hard: Some(u.limits().1),
                })
                .collect(),
        ),
        volumes_from: Some(
            svc.volumes_from_entries()
                .into_iter()
                .map(|(service, source, mode)| {
                    let container = if service.is_some() {
                        scope.container(&source)
                    } else {
                        source
                    };
                    mode.map_or(container.clone(), |m| format!("{container}:{m}"))
                })
                .collect(),
        ),
        dns: svc
            .dns
            .as_ref()
            .filter(|_| !joins_network)
            .map(|d| d.list()),
        dns_search: svc
            .dns_search
            .as_ref()
            .filter(|_| !joins_network)
            .map(|d| d.list()),
        dns_options: Some(if joins_network {
            Vec::new()
        } else {
            svc.dns_opt.clone()
        }),
        group_add: Some(svc.group_add.iter().map(|g| g.text()).collect()),
        log_config: svc.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: l.options.as_ref().map(|o| {
                o.pairs()
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect()
            }),
        }),
        sysctls: svc.sysctls.as_ref().map(|s| {
            s.pairs()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect()
        }),
        // masgen watches every exit itself; Docker restarting a crashed container would
        // hide the crash.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        network_mode: Some(match &primary {
            Some((docker_name, _)) => docker_name.clone(),
            None => namespace(&svc.network_mode).unwrap_or_default(),
        }),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: svc.command.as_ref().map(|c| c.argv()),
        entrypoint: svc.entrypoint.as_ref().map(|c| c.argv()),
        env: Some(environment(svc)),
        working_dir: svc.working_dir.clone(),
        user: svc.user.as_ref().map(|u| u.text()),
        hostname: svc.hostname.clone().filter(|_| !joins_network),
        domainname: svc.domainname.clone().filter(|_| !joins_network),
        stop_signal: svc.stop_signal.clone(),
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        labels: Some(lbls),
        exposed_ports: Some(exposed),
        volumes: Some(anonymous),
        healthcheck,
        host_config: Some(host_config),
        networking_config: primary.map(|(docker_name, endpoint)| NetworkingConfig {
            endpoints_config: Some([(docker_name, endpoint)].into()),
        }),
        ..Default::default()
    })
}

/// Create a container named `<project>-<service>-1`, replacing a leftover of an earlier
/// masgen run of the same project. The inner Err is the daemon refusing the container's
/// settings (HTTP 400, e.g. a memory limit below its minimum): the system's fault, not
/// Docker's.
pub async fn create(
    engine: &Engine,
    container: &str,
    body: ContainerCreateBody,
) -> Result<Result<String, String>, DockerError> {
    if let Ok(old) = engine
        .docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        let ours = old
            .config
            .and_then(|c| c.labels)
            .is_some_and(|l| l.contains_key(MANAGED_LABEL));
        if !ours {
            return Err(DockerError::op(
                "create container",
                container,
                "a container with this name exists and was not made by masgen: remove or rename it",
            ));
        }
        let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let _ = engine.docker.remove_container(container, Some(opts)).await;
    }
    let opts = CreateContainerOptionsBuilder::new().name(container).build();
    match engine.docker.create_container(Some(opts), body).await {
        Ok(created) => Ok(Ok(created.id)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message,
        }) => Ok(Err(message)),
        Err(e) => Err(DockerError::op("create container", container, e)),
    }
}

/// The host addresses of a started container's published ports: "80/tcp" -> "127.0.0.1:49153".
pub async fn published_ports(engine: &Engine, container: &str) -> Vec<(String, String)> {
    let Ok(info) = engine
        .docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (port, bindings) in info
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default()
    {
        for b in bindings.unwrap_or_default() {
            let ip = b.host_ip.unwrap_or_default();
            let ip = if ip.is_empty() || ip == "0.0.0.0" {
                "127.0.0.1".to_string()
            } else {
                ip
            };
            if let Some(hp) = b.host_port {
                out.push((port.clone(), format!("{ip}:{hp}")));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Put the content of secrets and configs (`environment:`, `content:`) into a created
/// container, before it starts; file sources are bind mounts instead.
pub async fn copy_files(
    engine: &Engine,
    container: &str,
    files: &[FileMount],
) -> Result<(), String> {
    let mut tar = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut any = false;
    for f in files {
        let FileSource::Content(text) = &f.source else {
            continue;
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(f.mode);
        header.set_uid(f.uid);
        header.set_gid(f.gid);
        header.set_mtime(now);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(
            &mut header,
            f.target.trim_start_matches('/'),
            text.as_bytes(),
        )
        .map_err(|e| format!("{} '{}': {e}", f.kind, f.name))?;
        any = true;
    }
    if !any {
        return Ok(());
    }
    let body = tar.into_inner().map_err(|e| e.to_string())?;
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
        .path("/")
        .build();
    engine
        .docker
        .upload_to_container(container, Some(opts), bollard::body_full(body.into()))
        .await
        .map_err(|e| e.to_string())
}
