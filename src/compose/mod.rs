//! Compose projects read exactly as Docker Compose reads them: YAML, `.env`, substitution
//! on parsed values, include, extends, merge, profiles; the key rule (keys.rs); a typed
//! model of what masgen runs, the dependency graph, and the security policy.

pub mod dotenv;
pub mod envfile;
pub mod error;
pub mod extends;
pub mod graph;
pub mod include;
pub mod interp;
pub mod keys;
pub mod load;
pub mod merge;
pub mod model;
pub mod normal;
pub mod policy;
pub mod reader;
pub mod validate;
pub mod yaml;

pub use graph::start_order;
pub use load::{
    find_compose_file, load_project, parse_compose_str, ComposeError, Project, COMPOSE_FILE_NAMES,
};
pub use model::{Compose, Condition, Service};
pub use policy::{check_policy, Violation};
