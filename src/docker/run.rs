//! Networks, volumes and containers of one run.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListNetworksOptionsBuilder};

use super::{Engine, RuntimeError, MANAGED_LABEL};
use crate::plan::{
    Attachment, ContainerSpec, FileMount, FileSource, Health, MountSpec, Namespace, NetworkSpec,
    VolumesFrom,
};
use crate::runtime::container::{Attachments, NetworkWanted, Networks, Refused, RunSettings};
use crate::runtime::scope::Scope;

/// The project's networks: each looked up by name first (creating a name that exists
/// makes a second network on 20.10), else created with the project's labels; used by id.
pub async fn ensure_networks(
    engine: &Engine,
    scope: &Scope,
    run: &str,
    wanted: &[NetworkWanted],
) -> Result<Networks, RuntimeError> {
    let mut out = Networks::default();
    for w in wanted {
        let id = match find_network(engine, &w.docker_name).await? {
            Some(id) => id,
            None if w.external => {
                return Err(RuntimeError::ExternalNetworkMissing {
                    name: w.name.clone(),
                    runtime_name: w.docker_name.clone(),
                })
            }
            None => {
                let req = network_request(w, scope.labels(run, None));
                engine
                    .docker
                    .create_network(req)
                    .await
                    .map_err(|e| RuntimeError::CreateNetwork {
                        network: w.docker_name.clone(),
                        message: e.to_string(),
                    })?
                    .id
            }
        };
        out.by_name
            .insert(w.name.clone(), (w.docker_name.clone(), id));
    }
    Ok(out)
}

async fn find_network(engine: &Engine, name: &str) -> Result<Option<String>, RuntimeError> {
    let filters: HashMap<&str, Vec<&str>> = [("name", vec![name])].into();
    let existing = engine
        .docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|e| RuntimeError::ListNetworks {
            network: name.to_string(),
            message: e.to_string(),
        })?;
    Ok(existing
        .into_iter()
        .find(|n| n.name.as_deref() == Some(name))
        .and_then(|n| n.id))
}

/// The endpoint on Docker network `id` with the names the service answers to there.
fn endpoint(a: &Attachment, id: &str) -> EndpointSettings {
    let fixed = a.ipv4_address.is_some() || a.ipv6_address.is_some();
    EndpointSettings {
        aliases: Some(a.aliases.clone()),
        network_id: Some(id.to_string()),
        driver_opts: a.interface_name.as_ref().map(|n| {
            HashMap::from([("com.docker.network.endpoint.ifname".to_string(), n.clone())])
        }),
        ipam_config: fixed.then(|| bollard::models::EndpointIpamConfig {
            ipv4_address: a.ipv4_address.clone(),
            ipv6_address: a.ipv6_address.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The networks a container joins after it is created (API 1.41 creates a container on
/// one network): the Docker network and the endpoint for each.
pub fn extra_endpoints(
    spec: &ContainerSpec,
    networks: &Networks,
) -> Vec<(String, EndpointSettings)> {
    let NetworkSpec::Project {
        networks: wanted, ..
    } = &spec.network
    else {
        return Vec::new();
    };
    wanted
        .iter()
        .skip(1)
        .filter_map(|a| {
            let (docker, id) = networks.by_name.get(&a.network)?;
            Some((docker.clone(), endpoint(a, id)))
        })
        .collect()
}

/// Connect a created container to its other networks.
pub async fn connect_networks(
    engine: &Engine,
    container: &str,
    extra: Vec<(String, EndpointSettings)>,
) -> Result<(), Refused> {
    for (network, endpoint) in extra {
        let req = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(endpoint),
        };
        engine
            .docker
            .connect_network(&network, req)
            .await
            .map_err(|e| Refused::Connect(format!("connecting to network {network}: {e}")))?;
    }
    Ok(())
}

/// The request that creates a network as the compose file defines it: its driver
/// (`bridge` by default), driver options, `internal`, `attachable`, IPv6, address pools,
/// and its labels with the run's.
fn network_request(w: &NetworkWanted, mut labels: HashMap<String, String>) -> NetworkCreateRequest {
    use bollard::models::{Ipam, IpamConfig};
    let o = &w.options;
    let map = |m: &std::collections::BTreeMap<String, String>| {
        (!m.is_empty()).then(|| m.clone().into_iter().collect::<HashMap<_, _>>())
    };
    labels.extend(o.labels.clone());
    NetworkCreateRequest {
        name: w.docker_name.clone(),
        driver: Some(o.driver.clone().unwrap_or_else(|| "bridge".into())),
        internal: o.internal.then_some(true),
        attachable: o.attachable.then_some(true),
        enable_ipv6: o.enable_ipv6,
        options: map(&o.driver_opts),
        ipam: o.ipam.as_ref().map(|i| Ipam {
            driver: i.driver.clone(),
            options: map(&i.options),
            config: Some(
                i.pools
                    .iter()
                    .map(|p| IpamConfig {
                        subnet: p.subnet.clone(),
                        ip_range: p.ip_range.clone(),
                        gateway: p.gateway.clone(),
                        auxiliary_addresses: map(&p.aux_addresses),
                    })
                    .collect(),
            ),
        }),
        labels: Some(labels),
        ..Default::default()
    }
}

/// Create the project's named volumes (labelled; an external one must exist and is used
/// as it is); returns compose name -> Docker name.
pub async fn ensure_volumes(
    engine: &Engine,
    scope: &Scope,
    run: &str,
    wanted: &[NetworkWanted],
) -> Result<HashMap<String, String>, RuntimeError> {
    let mut out = HashMap::new();
    for w in wanted {
        if engine.docker.inspect_volume(&w.docker_name).await.is_err() {
            if w.external {
                return Err(RuntimeError::ExternalVolumeMissing {
                    name: w.name.clone(),
                    runtime_name: w.docker_name.clone(),
                });
            }
            let o = &w.options;
            let mut labels = scope.labels(run, None);
            labels.extend(o.labels.clone());
            let req = VolumeCreateRequest {
                name: Some(w.docker_name.clone()),
                driver: o.driver.clone(),
                driver_opts: (!o.driver_opts.is_empty())
                    .then(|| o.driver_opts.clone().into_iter().collect()),
                labels: Some(labels),
                ..Default::default()
            };
            engine
                .docker
                .create_volume(req)
                .await
                .map_err(|e| RuntimeError::CreateVolume {
                    volume: w.docker_name.clone(),
                    message: e.to_string(),
                })?;
        }
        out.insert(w.name.clone(), w.docker_name.clone());
    }
    Ok(out)
}

/// Give a running container a restart policy (`always`, `unless-stopped`, `on-failure`
/// with at most `retries` restarts).
pub async fn set_restart(
    engine: &Engine,
    container: &str,
    policy: crate::plan::RestartPolicy,
) -> Result<(), bollard::errors::Error> {
    use crate::plan::RestartPolicy as Planned;
    let (name, retries) = match policy {
        Planned::Always => (RestartPolicyNameEnum::ALWAYS, None),
        Planned::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        Planned::OnFailure(n) => (RestartPolicyNameEnum::ON_FAILURE, n),
    };
    let body = bollard::models::ContainerUpdateBody {
        restart_policy: Some(RestartPolicy {
            name: Some(name),
            maximum_retry_count: retries,
        }),
        ..Default::default()
    };
    engine.docker.update_container(container, body).await
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

/// The engine's request for the container of service `name`, as `spec` plans it.
pub fn container_body(
    run: &str,
    name: &str,
    spec: &ContainerSpec,
    image: &str,
    with: &Attachments,
) -> Result<ContainerCreateBody, Refused> {
    let scope = &with.settings.scope;
    let mut labels = scope.labels(run, Some(name));
    labels.extend(spec.labels.clone());
    let joins = spec.joins_another();
    let m = mounts(spec, with);
    let primary = primary_network(spec, with)?;
    let host_config = HostConfig {
        port_bindings: Some(port_bindings(spec, with.settings)),
        binds: Some(m.binds),
        mounts: (!m.api.is_empty()).then_some(m.api),
        tmpfs: Some(m.tmpfs),
        memory: Some(spec.memory.unwrap_or(with.settings.memory)),
        pids_limit: Some(spec.pids.unwrap_or(with.settings.pids)),
        userns_mode: spec.userns_mode.clone(),
        runtime: spec.runtime.clone(),
        memory_reservation: spec.memory_reservation,
        device_requests: (!spec.device_requests.is_empty()).then(|| {
            spec.device_requests
                .iter()
                .map(|d| bollard::models::DeviceRequest {
                    driver: d.driver.clone(),
                    count: d.count,
                    device_ids: (!d.device_ids.is_empty()).then(|| d.device_ids.clone()),
                    capabilities: Some(d.capabilities.clone()),
                    options: (!d.options.is_empty())
                        .then(|| d.options.clone().into_iter().collect()),
                })
                .collect()
        }),
        network_mode: Some(match &primary {
            Some((docker_name, _)) => docker_name.clone(),
            None => namespace(scope, &spec.network_namespace()).unwrap_or_default(),
        }),
        pid_mode: namespace(scope, &spec.pid),
        ipc_mode: namespace(scope, &spec.ipc),
        // Names, DNS and /etc/hosts of a container on another's network are that one's.
        extra_hosts: Some(if joins {
            Vec::new()
        } else {
            spec.extra_hosts.clone()
        }),
        dns: spec.dns.clone().filter(|_| !joins),
        dns_search: spec.dns_search.clone().filter(|_| !joins),
        dns_options: Some(if joins {
            Vec::new()
        } else {
            spec.dns_options.clone()
        }),
        volumes_from: Some(volumes_from(scope, &spec.volumes_from)),
        // masgen watches every exit itself; Docker restarting a crashed container would
        // hide the crash.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..limits(spec)
    };
    Ok(ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(spec.environment.clone()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone().filter(|_| !joins),
        domainname: spec.domainname.clone().filter(|_| !joins),
        stop_signal: spec.stop_signal.clone(),
        tty: spec.tty,
        open_stdin: spec.stdin_open,
        labels: Some(labels.into_iter().collect()),
        exposed_ports: Some(exposed(spec)),
        volumes: Some(m.anonymous),
        healthcheck: spec.health.as_ref().map(health_config),
        host_config: Some(host_config),
        networking_config: primary.map(|(docker_name, endpoint)| NetworkingConfig {
            endpoints_config: Some([(docker_name, endpoint)].into()),
        }),
        ..Default::default()
    })
}

/// The settings of the container's own process: limits, privileges, devices, logging.
/// The policy refused the unsafe values of these unless --allow-unsafe was given; what is
/// left runs as written.
fn limits(spec: &ContainerSpec) -> HostConfig {
    HostConfig {
        nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
        init: spec.init,
        privileged: spec.privileged,
        cap_add: Some(spec.cap_add.clone()),
        cap_drop: Some(spec.cap_drop.clone()),
        security_opt: Some(spec.security_opt.clone()),
        devices: Some(
            spec.devices
                .iter()
                .map(|(host, inside, perms)| DeviceMapping {
                    path_on_host: Some(host.clone()),
                    path_in_container: Some(inside.clone()),
                    cgroup_permissions: Some(perms.clone()),
                })
                .collect(),
        ),
        readonly_rootfs: spec.read_only,
        shm_size: spec.shm_size,
        ulimits: Some(
            spec.ulimits
                .iter()
                .map(|(name, soft, hard)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect(),
        ),
        group_add: Some(spec.group_add.clone()),
        log_config: spec.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: l.options.as_ref().map(|o| o.clone().into_iter().collect()),
        }),
        sysctls: spec
            .sysctls
            .as_ref()
            .map(|s| s.clone().into_iter().collect()),
        ..Default::default()
    }
}

/// Published ports: while verifying, ephemeral ones on loopback (so runs never collide);
/// with `--execute`, the declared ones. A container off the project's networks (host,
/// none) publishes nothing; one on another's network has neither ports nor exposes.
fn port_bindings(
    spec: &ContainerSpec,
    settings: &RunSettings,
) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let publishes = match &spec.network {
        NetworkSpec::Project { .. } => true,
        NetworkSpec::Shared(Namespace::Mode(m)) => m == "bridge",
        NetworkSpec::Shared(Namespace::Service(_)) => false,
    };
    if !publishes {
        return bindings;
    }
    for p in &spec.ports {
        let binding = if settings.publish_declared {
            PortBinding {
                host_ip: p.host_ip.clone().or(Some("0.0.0.0".into())),
                host_port: p.host_port.clone(),
            }
        } else {
            PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: None,
            }
        };
        bindings
            .entry(p.container.clone())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    bindings
}

fn exposed(spec: &ContainerSpec) -> Vec<String> {
    if spec.joins_another() {
        return Vec::new();
    }
    let mut out: Vec<String> = spec.ports.iter().map(|p| p.container.clone()).collect();
    out.extend(spec.expose.iter().cloned());
    out
}

/// What a container mounts, as the engine takes it.
#[derive(Default)]
struct Mounts {
    /// `src:dst[:mode]` binds: volumes by their Docker names, host paths (a missing one is
    /// created), secret and config files.
    binds: Vec<String>,
    /// Through the Mount API: binds with a propagation or that must not create their host
    /// path, volumes with `nocopy`, as Compose mounts them.
    api: Vec<bollard::models::Mount>,
    anonymous: Vec<String>,
    tmpfs: HashMap<String, String>,
}

/// The container's mounts. Secrets and configs from files are read-only bind mounts, as
/// compose makes them; the others are copied in after creation (copy_files).
fn mounts(spec: &ContainerSpec, with: &Attachments) -> Mounts {
    use bollard::models::{Mount, MountBindOptions, MountType, MountVolumeOptions};
    let mode = |read_only: bool| if read_only { "ro" } else { "rw" };
    let mut out = Mounts::default();
    for m in &spec.mounts {
        match m {
            MountSpec::Volume {
                name,
                target,
                read_only,
                nocopy,
            } => {
                let docker_name = with.volumes.get(name).unwrap_or(name);
                if !nocopy {
                    out.binds
                        .push(format!("{docker_name}:{target}:{}", mode(*read_only)));
                    continue;
                }
                out.api.push(Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(docker_name.clone()),
                    target: Some(target.clone()),
                    read_only: read_only.then_some(true),
                    volume_options: Some(MountVolumeOptions {
                        no_copy: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            MountSpec::Bind {
                source,
                target,
                read_only,
                selinux,
                mount_api: false,
                ..
            } => {
                let label = selinux
                    .as_deref()
                    .map(|l| format!(",{l}"))
                    .unwrap_or_default();
                out.binds.push(format!(
                    "{}:{target}:{}{label}",
                    source.display(),
                    mode(*read_only)
                ));
            }
            MountSpec::Bind {
                source,
                target,
                read_only,
                propagation,
                ..
            } => out.api.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(source.display().to_string()),
                target: Some(target.clone()),
                read_only: read_only.then_some(true),
                bind_options: propagation.as_deref().map(|p| MountBindOptions {
                    propagation: serde_json::from_value(serde_json::json!(p)).ok(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            MountSpec::Anonymous { target } => out.anonymous.push(target.clone()),
            MountSpec::Tmpfs { target, options } => {
                out.tmpfs.insert(target.clone(), options.clone());
            }
        }
    }
    for f in with.files {
        if let FileSource::Path(p) = &f.source {
            out.binds.push(format!("{}:{}:ro", p.display(), f.target));
        }
    }
    out
}

/// The network the container is created on, with its endpoint (a link is an alias only
/// this container sees, as compose makes it on its network); None off the project's
/// networks.
fn primary_network(
    spec: &ContainerSpec,
    with: &Attachments,
) -> Result<Option<(String, EndpointSettings)>, Refused> {
    let NetworkSpec::Project { networks, links } = &spec.network else {
        return Ok(None);
    };
    let Some(first) = networks.first() else {
        return Ok(None);
    };
    let Some((docker_name, id)) = with.networks.by_name.get(&first.network) else {
        return Err(Refused::Spec(format!(
            "network '{}' is not one of the project's networks",
            first.network
        )));
    };
    let mut endpoint = endpoint(first, id);
    endpoint.mac_address = spec.mac_address.clone();
    endpoint.links = Some(
        links
            .iter()
            .map(|(target, alias)| format!("{}:{alias}", with.settings.scope.container(target)))
            .collect(),
    );
    Ok(Some((docker_name.clone(), endpoint)))
}

/// A shared namespace as Docker names it: another service's is `container:<its name>`.
fn namespace(scope: &Scope, ns: &Option<Namespace>) -> Option<String> {
    ns.as_ref().map(|ns| match ns {
        Namespace::Service(x) => format!("container:{}", scope.container(x)),
        Namespace::Mode(m) => m.clone(),
    })
}

fn volumes_from(scope: &Scope, from: &[VolumesFrom]) -> Vec<String> {
    from.iter()
        .map(|v| {
            let (container, mode) = match v {
                VolumesFrom::Service(s, mode) => (scope.container(s), mode),
                VolumesFrom::Container(c, mode) => (c.clone(), mode),
            };
            mode.as_ref()
                .map_or(container.clone(), |m| format!("{container}:{m}"))
        })
        .collect()
}

fn health_config(h: &Health) -> HealthConfig {
    let nanos = |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
    HealthConfig {
        test: Some(h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries,
        start_period: nanos(h.start_period),
        start_interval: None, // needs API 1.44
    }
}

/// Run `config` in `container` until it ends or `deadline`, keeping at most `keep` bytes
/// of what it prints: its exit code (None: still running at the deadline) and output.
pub async fn exec_config(
    engine: &Engine,
    container: &str,
    config: bollard::models::ExecConfig,
    deadline: std::time::Instant,
    keep: usize,
) -> Result<(Option<i64>, String), bollard::errors::Error> {
    use bollard::exec::{StartExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let exec = engine.docker.create_exec(container, config).await?;
    let opts = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let mut text = String::new();
    let read = async {
        if let StartExecResults::Attached { mut output, .. } =
            engine.docker.start_exec(&exec.id, Some(opts)).await?
        {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(c) if text.len() < keep => {
                        text.push_str(&String::from_utf8_lossy(&c.into_bytes()))
                    }
                    Ok(_) => {}
                    Err(e) => text.push_str(&e.to_string()),
                }
            }
        }
        Ok::<(), bollard::errors::Error>(())
    };
    if tokio::time::timeout_at(deadline.into(), read)
        .await
        .is_err()
    {
        return Ok((None, text));
    }
    let done = engine.docker.inspect_exec(&exec.id).await?;
    let code = if done.running == Some(true) {
        None
    } else {
        done.exit_code
    };
    Ok((code, text))
}

/// Run a lifecycle hook in `container`, as Compose runs it (its user, folder, environment
/// and, under the unsafe policy only, privileges).
pub async fn exec_hook(
    engine: &Engine,
    container: &str,
    hook: &crate::plan::HookSpec,
    deadline: std::time::Instant,
) -> Result<crate::runtime::health::Ran, Refused> {
    let config = bollard::models::ExecConfig {
        cmd: Some(hook.command.clone()),
        user: hook.user.clone(),
        working_dir: hook.working_dir.clone(),
        env: (!hook.environment.is_empty()).then(|| hook.environment.clone()),
        privileged: hook.privileged.then_some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let (exit_code, output) = exec_config(engine, container, config, deadline, 64 * 1024)
        .await
        .map_err(|e| Refused::Start(format!("running the hook: {e}")))?;
    Ok(crate::runtime::health::Ran { exit_code, output })
}

/// Settings this engine cannot apply are an environment failure, before the container
/// is made: a MAC address is set on the container's first network endpoint, which the
/// engine honours from API 1.44 (`mac_address`); an interface's name is an endpoint
/// driver option from API 1.49 (`interface_name`).
pub fn engine_supports(
    engine: &Engine,
    container: &str,
    spec: &ContainerSpec,
) -> Result<(), RuntimeError> {
    let named_interface = match &spec.network {
        NetworkSpec::Project { networks, .. } => {
            networks.iter().any(|a| a.interface_name.is_some())
        }
        NetworkSpec::Shared(_) => false,
    };
    for (set, key, needs) in [
        (spec.mac_address.is_some(), "mac_address", (1, 44)),
        (named_interface, "interface_name", (1, 49)),
    ] {
        if set && !engine.api_at_least(needs.0, needs.1) {
            return Err(RuntimeError::EngineTooOld {
                container: container.to_string(),
                key: key.into(),
                needs: format!("{}.{}", needs.0, needs.1),
                api: engine.api_version(),
            });
        }
    }
    Ok(())
}

/// Create a container named `<project>-<service>-1`, replacing a leftover of an earlier
/// masgen run of the same project. The inner Err is the daemon refusing the container's
/// settings (HTTP 400, e.g. a memory limit below its minimum): the system's fault, not
/// Docker's.
pub async fn create(
    engine: &Engine,
    container: &str,
    body: ContainerCreateBody,
) -> Result<Result<String, Refused>, RuntimeError> {
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
            return Err(RuntimeError::NameTaken {
                container: container.to_string(),
            });
        }
        remove(engine, container).await;
    }
    let opts = CreateContainerOptionsBuilder::new().name(container).build();
    let runtime = body.host_config.as_ref().and_then(|h| h.runtime.clone());
    match engine.docker.create_container(Some(opts), body).await {
        Ok(created) => Ok(Ok(created.id)),
        // A runtime the engine does not have is this machine's, not the system's.
        Err(bollard::errors::Error::DockerResponseServerError { message, .. })
            if message.contains("Unknown runtime specified") =>
        {
            let info = engine.docker.info().await.ok();
            let mut available: Vec<String> = info
                .and_then(|i| i.runtimes)
                .map(|r| r.into_keys().collect())
                .unwrap_or_default();
            available.sort();
            Err(RuntimeError::UnknownRuntime {
                container: container.to_string(),
                runtime: runtime.unwrap_or_default(),
                available,
            })
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message,
        }) => Ok(Err(Refused::Create(message))),
        Err(e) => Err(RuntimeError::CreateContainer {
            container: container.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Kill and remove `container` with its anonymous volumes (best effort: one already gone
/// is no failure).
pub async fn remove(engine: &Engine, container: &str) {
    let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = engine.docker.remove_container(container, Some(opts)).await;
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
) -> Result<(), Refused> {
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
        .map_err(|e| Refused::Files(format!("{} '{}': {e}", f.kind, f.name)))?;
        any = true;
    }
    if !any {
        return Ok(());
    }
    let body = tar
        .into_inner()
        .map_err(|e| Refused::Files(e.to_string()))?;
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
        .path("/")
        .build();
    engine
        .docker
        .upload_to_container(container, Some(opts), bollard::body_full(body.into()))
        .await
        .map_err(|e| Refused::Files(e.to_string()))
}
