//! Start order from depends_on.

use std::collections::BTreeMap;

use super::model::Compose;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    Unknown { service: String, dependency: String },
    Cycle(Vec<String>),
}

/// Services in an order where each comes after its dependencies (file order among
/// equals). A cycle is reported as the services on it, first repeated at the end.
pub fn start_order(compose: &Compose) -> Result<Vec<String>, GraphError> {
    let names: Vec<&String> = compose.services.keys().collect();
    let deps: BTreeMap<&str, Vec<String>> = compose
        .services
        .iter()
        .map(|(n, s)| {
            (
                n.as_str(),
                s.depends_on
                    .as_ref()
                    .map(|d| d.entries().into_iter().map(|e| e.0).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    for (svc, ds) in &deps {
        if let Some(d) = ds.iter().find(|d| !compose.services.contains_key(*d)) {
            return Err(GraphError::Unknown {
                service: svc.to_string(),
                dependency: d.clone(),
            });
        }
    }
    // Depth-first with colours, visiting in file order: deterministic and finds a cycle's path.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = names.iter().map(|n| (n.as_str(), Mark::New)).collect();
    let mut order = Vec::new();
    fn visit<'a>(
        n: &'a str,
        deps: &'a BTreeMap<&str, Vec<String>>,
        mark: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), GraphError> {
        match mark[n] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let from = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[from..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Err(GraphError::Cycle(cycle));
            }
            Mark::New => {}
        }
        mark.insert(n, Mark::Active);
        stack.push(n);
        for d in &deps[n] {
            visit(d.as_str(), deps, mark, stack, order)?;
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        order.push(n.to_string());
        Ok(())
    }
    for n in names {
        visit(n.as_str(), &deps, &mut mark, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// `order` (a start order) stably sorted so that services heading the longest chains of
/// dependents come first: the order to build images in when only a few build at once, so
/// the start chain can begin while the images at its end still build.
pub fn critical_first(compose: &Compose, order: &[String]) -> Vec<String> {
    // Reverse start order visits dependents before what they depend on.
    let mut chain: BTreeMap<&str, usize> = BTreeMap::new();
    for name in order.iter().rev() {
        let below = compose
            .services
            .iter()
            .filter(|(_, s)| {
                s.depends_on
                    .as_ref()
                    .is_some_and(|d| d.entries().iter().any(|(dep, _)| dep == name))
            })
            .map(|(n, _)| chain.get(n.as_str()).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        chain.insert(name.as_str(), below + 1);
    }
    let mut out = order.to_vec();
    out.sort_by_key(|n| std::cmp::Reverse(chain.get(n.as_str()).copied().unwrap_or(0)));
    out
}
