//! Store keys of ECS resources. Every key starts with the region: ECS resources are regional.
//! Cluster names and families are `[a-zA-Z0-9_-]+`, so they never contain the `/` separator.

pub fn clusters(region: &str) -> String {
    format!("/ecs/{region}/clusters/")
}

pub fn cluster(region: &str, name: &str) -> String {
    format!("/ecs/{region}/clusters/{name}")
}

pub fn task_definitions(region: &str) -> String {
    format!("/ecs/{region}/taskdefs/")
}

pub fn task_definition_family(region: &str, family: &str) -> String {
    format!("/ecs/{region}/taskdefs/{family}/")
}

/// Revisions are zero-padded so that key order is revision order.
pub fn task_definition(region: &str, family: &str, revision: i64) -> String {
    format!("/ecs/{region}/taskdefs/{family}/{revision:010}")
}

pub fn tasks(region: &str, cluster: &str) -> String {
    format!("/ecs/{region}/tasks/{cluster}/")
}

pub fn task(region: &str, cluster: &str, id: &str) -> String {
    format!("/ecs/{region}/tasks/{cluster}/{id}")
}

/// A marker per region that has services, so that the service controller finds them without scanning all keys.
pub fn regions() -> String {
    "/ecs/regions/".to_string()
}

pub fn region(region: &str) -> String {
    format!("/ecs/regions/{region}")
}

pub fn services(region: &str, cluster: &str) -> String {
    format!("/ecs/{region}/services/{cluster}/")
}

pub fn service(region: &str, cluster: &str, name: &str) -> String {
    format!("/ecs/{region}/services/{cluster}/{name}")
}

pub fn instances(region: &str, cluster: &str) -> String {
    format!("/ecs/{region}/instances/{cluster}/")
}

pub fn instance(region: &str, cluster: &str, id: &str) -> String {
    format!("/ecs/{region}/instances/{cluster}/{id}")
}

/// Events on the internal bus (see `events`); not under `/ecs/`: the bus is shared by every service crate.
pub fn all_events() -> String {
    "/events/".to_string()
}

/// Event ids are time-ordered (UUID v7), so key order is time order.
pub fn event(region: &str, id: &str) -> String {
    format!("/events/{region}/{id}")
}
