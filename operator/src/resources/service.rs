//! The ClusterIP Service in front of the runtime pods.

use dbapi_crds::crd::DatabaseApi;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT, API_PORT, child_meta, names, selector_labels};

/// Ports `http` (the REST API) and `admin` (health and readiness), both
/// targeting the container's named ports.
pub fn service(api: &DatabaseApi) -> Service {
    Service {
        metadata: child_meta(api, names::api(api), "api"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(api, "api")),
            ports: Some(vec![port("http", API_PORT), port("admin", ADMIN_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        app_protocol: Some("http".into()),
        ..ServicePort::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{full, minimal};

    #[test]
    fn minimal_service() {
        insta::assert_yaml_snapshot!("minimal_service", service(&minimal()));
    }

    #[test]
    fn full_service() {
        // Pod labels never reach the selector: it must match pods of every
        // revision.
        insta::assert_yaml_snapshot!("full_service", service(&full()));
    }
}
