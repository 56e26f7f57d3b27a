//! Container dependencies of a task: `dependsOn` (START, COMPLETE, SUCCESS, HEALTHY) plus the implicit START
//! dependencies of `links` and `volumesFrom`; the start order, the stop order, and whether a condition is met.
//! Pure functions.

use gantry_model::ecs::ContainerDefinition;

use crate::runtime::Health;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        match s {
            "START" => Some(Condition::Start),
            "COMPLETE" => Some(Condition::Complete),
            "SUCCESS" => Some(Condition::Success),
            "HEALTHY" => Some(Condition::Healthy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Start => "START",
            Condition::Complete => "COMPLETE",
            Condition::Success => "SUCCESS",
            Condition::Healthy => "HEALTHY",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Index of the container depended on.
    pub on: usize,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    #[error("container {container} depends on unknown container {reference}")]
    UnknownContainer {
        container: String,
        reference: String,
    },
    #[error("container {container}: unknown dependency condition {condition}")]
    UnknownCondition {
        container: String,
        condition: String,
    },
    #[error("the container dependencies form a cycle through {0}")]
    Cycle(String),
}

fn index_of(
    defs: &[ContainerDefinition],
    container: &str,
    reference: &str,
) -> Result<usize, DependencyError> {
    defs.iter()
        .position(|d| d.name() == reference)
        .ok_or_else(|| DependencyError::UnknownContainer {
            container: container.to_string(),
            reference: reference.to_string(),
        })
}

/// The dependencies of each container, by index.
pub fn dependencies(defs: &[ContainerDefinition]) -> Result<Vec<Vec<Dependency>>, DependencyError> {
    let mut all = Vec::with_capacity(defs.len());
    for def in defs {
        let name = def.name();
        let mut deps: Vec<Dependency> = Vec::new();
        for d in def.depends_on.iter().flatten() {
            let condition = Condition::parse(&d.condition).ok_or_else(|| {
                DependencyError::UnknownCondition {
                    container: name.to_string(),
                    condition: d.condition.clone(),
                }
            })?;
            deps.push(Dependency {
                on: index_of(defs, name, &d.container_name)?,
                condition,
            });
        }
        let implicit = def
            .links
            .iter()
            .flatten()
            .map(|l| l.split(':').next().unwrap_or(l).to_string())
            .chain(
                def.volumes_from
                    .iter()
                    .filter_map(|v| v.source_container.clone()),
            );
        for reference in implicit {
            let on = index_of(defs, name, &reference)?;
            if !deps.iter().any(|d| d.on == on) {
                deps.push(Dependency {
                    on,
                    condition: Condition::Start,
                });
            }
        }
        all.push(deps);
    }
    Ok(all)
}

/// A start order where every container comes after those it depends on; ties keep the definition order.
pub fn start_order(defs: &[ContainerDefinition]) -> Result<Vec<usize>, DependencyError> {
    let deps = dependencies(defs)?;
    let mut placed = vec![false; defs.len()];
    let mut order = Vec::with_capacity(defs.len());
    while order.len() < defs.len() {
        let next = (0..defs.len()).find(|&i| !placed[i] && deps[i].iter().all(|d| placed[d.on]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                let stuck = (0..defs.len())
                    .find(|&i| !placed[i])
                    .map(|i| defs[i].name().to_string());
                return Err(DependencyError::Cycle(stuck.unwrap_or_default()));
            }
        }
    }
    Ok(order)
}

/// Groups to stop one after the other: first the containers nothing depends on, then those only they depended
/// on, and so on. With broken dependencies, everything at once.
pub fn stop_layers(defs: &[ContainerDefinition]) -> Vec<Vec<usize>> {
    let Ok(deps) = dependencies(defs) else {
        return vec![(0..defs.len()).collect()];
    };
    let mut stopped = vec![false; defs.len()];
    let mut layers = Vec::new();
    while stopped.iter().any(|s| !s) {
        let layer: Vec<usize> = (0..defs.len())
            .filter(|&i| !stopped[i])
            .filter(|&i| {
                (0..defs.len()).all(|j| stopped[j] || j == i || !deps[j].iter().any(|d| d.on == i))
            })
            .collect();
        if layer.is_empty() {
            layers.push((0..defs.len()).filter(|&i| !stopped[i]).collect());
            break;
        }
        for &i in &layer {
            stopped[i] = true;
        }
        layers.push(layer);
    }
    layers
}

/// What the agent knows of a container depended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    NotStarted,
    Running { health: Option<Health> },
    Exited { code: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Met,
    Waiting,
    /// The condition can never be met; the reason says why.
    Never(String),
}

/// Whether `condition` on the container `name` holds.
pub fn resolve(
    name: &str,
    condition: Condition,
    observed: Observed,
    has_health_check: bool,
) -> Resolution {
    use Observed::*;
    if condition == Condition::Healthy && !has_health_check {
        return Resolution::Never(format!("container {name} has no health check"));
    }
    match (condition, observed) {
        (_, NotStarted) => Resolution::Waiting,
        (Condition::Start, _) => Resolution::Met,
        (Condition::Complete, Exited { .. }) => Resolution::Met,
        (Condition::Success, Exited { code: Some(0) }) => Resolution::Met,
        (Condition::Success, Exited { code }) => Resolution::Never(format!(
            "container {name} exited with code {}, not 0",
            code.map(|c| c.to_string())
                .unwrap_or_else(|| "unknown".into())
        )),
        (Condition::Complete | Condition::Success, Running { .. }) => Resolution::Waiting,
        (
            Condition::Healthy,
            Running {
                health: Some(Health::Healthy),
            },
        ) => Resolution::Met,
        (
            Condition::Healthy,
            Running {
                health: Some(Health::Unhealthy),
            },
        ) => Resolution::Never(format!("container {name} is unhealthy")),
        (Condition::Healthy, Running { .. }) => Resolution::Waiting,
        (Condition::Healthy, Exited { .. }) => {
            Resolution::Never(format!("container {name} exited before it was healthy"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_model::ecs::{ContainerDependency, VolumeFrom};

    fn def(name: &str, deps: &[(&str, &str)]) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some("busybox".into()),
            depends_on: (!deps.is_empty()).then(|| {
                deps.iter()
                    .map(|(c, cond)| ContainerDependency {
                        container_name: c.to_string(),
                        condition: cond.to_string(),
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn orders_by_dependencies_then_definition() {
        let defs = vec![
            def("app", &[("db", "HEALTHY"), ("init", "SUCCESS")]),
            def("db", &[]),
            def("init", &[("db", "START")]),
            def("side", &[]),
        ];
        assert_eq!(start_order(&defs).unwrap(), vec![1, 2, 0, 3]);
        // app first, then init (db still needed by it), then db; side with app
        assert_eq!(stop_layers(&defs), vec![vec![0, 3], vec![2], vec![1]]);
    }

    #[test]
    fn links_and_volumes_from_are_start_dependencies() {
        let mut app = def("app", &[]);
        app.links = Some(vec!["db:database".into()]);
        app.volumes_from = vec![VolumeFrom {
            source_container: Some("data".into()),
            read_only: None,
        }];
        let defs = vec![app, def("db", &[]), def("data", &[])];
        let deps = dependencies(&defs).unwrap();
        assert_eq!(
            deps[0],
            vec![
                Dependency {
                    on: 1,
                    condition: Condition::Start
                },
                Dependency {
                    on: 2,
                    condition: Condition::Start
                }
            ]
        );
        assert_eq!(start_order(&defs).unwrap(), vec![1, 2, 0]);
    }

    #[test]
    fn rejects_cycles_unknown_names_and_conditions() {
        let defs = vec![def("a", &[("b", "START")]), def("b", &[("a", "START")])];
        assert!(matches!(start_order(&defs), Err(DependencyError::Cycle(_))));
        assert_eq!(stop_layers(&defs), vec![vec![0, 1]]);
        let defs = vec![def("a", &[("ghost", "START")])];
        assert!(matches!(
            start_order(&defs),
            Err(DependencyError::UnknownContainer { .. })
        ));
        let defs = vec![def("a", &[]), def("b", &[("a", "READY")])];
        assert!(matches!(
            start_order(&defs),
            Err(DependencyError::UnknownCondition { .. })
        ));
    }

    #[test]
    fn resolves_conditions() {
        use Observed::*;
        let running = Running { health: None };
        assert_eq!(
            resolve("a", Condition::Start, NotStarted, false),
            Resolution::Waiting
        );
        assert_eq!(
            resolve("a", Condition::Start, running, false),
            Resolution::Met
        );
        assert_eq!(
            resolve("a", Condition::Start, Exited { code: Some(1) }, false),
            Resolution::Met
        );
        assert_eq!(
            resolve("a", Condition::Complete, running, false),
            Resolution::Waiting
        );
        assert_eq!(
            resolve("a", Condition::Complete, Exited { code: Some(1) }, false),
            Resolution::Met
        );
        assert_eq!(
            resolve("a", Condition::Success, Exited { code: Some(0) }, false),
            Resolution::Met
        );
        assert!(matches!(
            resolve("a", Condition::Success, Exited { code: Some(2) }, false),
            Resolution::Never(_)
        ));
        assert!(matches!(
            resolve("a", Condition::Healthy, NotStarted, false),
            Resolution::Never(_)
        ));
        assert_eq!(
            resolve("a", Condition::Healthy, NotStarted, true),
            Resolution::Waiting
        );
        assert_eq!(
            resolve(
                "a",
                Condition::Healthy,
                Running {
                    health: Some(Health::Starting)
                },
                true
            ),
            Resolution::Waiting
        );
        assert_eq!(
            resolve(
                "a",
                Condition::Healthy,
                Running {
                    health: Some(Health::Healthy)
                },
                true
            ),
            Resolution::Met
        );
        assert!(matches!(
            resolve(
                "a",
                Condition::Healthy,
                Running {
                    health: Some(Health::Unhealthy)
                },
                true
            ),
            Resolution::Never(_)
        ));
        assert!(matches!(
            resolve("a", Condition::Healthy, Exited { code: Some(0) }, true),
            Resolution::Never(_)
        ));
    }
}
