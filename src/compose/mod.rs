//! docker-compose files: a typed model of the supported subset, loading (with `${VAR}`
//! interpolation and `.env`), the dependency graph, and the security policy.

pub mod extends;
pub mod graph;
pub mod load;
pub mod merge;
pub mod model;
pub mod policy;

pub use graph::start_order;
pub use load::{
    find_compose_file, load_project, parse_compose_str, ComposeError, Project, COMPOSE_FILE_NAMES,
};
pub use model::{Compose, Condition, Service};
pub use policy::{check_policy, Violation};
