//! `masgen config [DIR]`: the project as masgen reads it, in Compose's form.

use super::*;

/// `masgen config`: the project as masgen reads it, or the error that stops it (exit 2).
pub(super) fn config_cmd(a: &args::ConfigArgs) -> Result<i32, Fatal> {
    // What Compose reads: compose.smoke.yaml only when named with -f.
    let load = crate::compose::load::LoadOptions {
        smoke_file: false,
        ..a.project.load_options()
    };
    let p =
        crate::compose::load::load_with(&a.dir, &load).map_err(|e| Fatal::new(exit::USAGE, e))?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    if a.services {
        p.order.iter().for_each(|s| println!("{s}"));
    } else if a.profiles {
        p.profiles.iter().for_each(|s| println!("{s}"));
    } else {
        let v = crate::compose::normal::project(&p);
        match a.format {
            args::ConfigFormat::Json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            args::ConfigFormat::Yaml => print!("{}", crate::compose::normal::to_yaml(&v)),
        }
    }
    Ok(exit::OK)
}
