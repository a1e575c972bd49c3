//! What a container is made of besides its plan: the run's networks and volumes, the
//! settings of the run, and why a runtime would not create one.

use std::collections::HashMap;

use super::scope::Scope;
use crate::plan::FileMount;

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
    /// How to create it, when it is not external.
    pub options: crate::plan::ObjectOptions,
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

/// What a container is attached to: the run's networks and volumes, how the run names and
/// limits containers, and the service's secret and config files.
pub struct Attachments<'a> {
    pub networks: &'a Networks,
    pub volumes: &'a HashMap<String, String>,
    pub settings: &'a RunSettings,
    pub files: &'a [FileMount],
}

/// Why a container could not be created or started: its own settings (the system's
/// fault, with the runtime's words), not the runtime failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The plan cannot be expressed (e.g. a network that is not the project's).
    Spec(String),
    /// The runtime would not create the container.
    Create(String),
    /// The runtime would not connect it to its other networks.
    Connect(String),
    /// Its secrets and configs could not be put into it.
    Files(String),
    /// The runtime would not start it.
    Start(String),
}

impl Refused {
    /// What was refused, in a line (None for a plan that cannot be expressed: its own
    /// words say it).
    pub fn what(&self) -> Option<&'static str> {
        match self {
            Refused::Spec(_) => None,
            Refused::Create(_) => Some("the runtime refused to create the container"),
            Refused::Connect(_) => {
                Some("the runtime refused to connect the container to its networks")
            }
            Refused::Files(_) => {
                Some("its secrets and configs could not be put into the container")
            }
            Refused::Start(_) => Some("the container could not start"),
        }
    }

    /// The runtime's own words.
    pub fn words(&self) -> &str {
        match self {
            Refused::Spec(w)
            | Refused::Create(w)
            | Refused::Connect(w)
            | Refused::Files(w)
            | Refused::Start(w) => w,
        }
    }
}
