//! What every workload the operator runs shares in its pod: hardening to
//! the `restricted` Pod Security Standard, and optional fields left out
//! when empty.

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile, SecurityContext, Volume,
};

/// An emptyDir volume, for the few paths a read-only root needs writable.
pub fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

/// Non-root with the default seccomp profile; `uid` is also the group and
/// the fsGroup of mounted volumes.
pub fn pod_security_context(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
        ..PodSecurityContext::default()
    }
}

/// Read-only root, no privilege escalation, no capabilities (the
/// `restricted` Pod Security Standard).
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        ..SecurityContext::default()
    }
}

/// `None` for an empty collection, so the rendered object leaves it out.
pub fn none_if_empty<C: IntoIterator + Default + PartialEq>(c: C) -> Option<C> {
    (c != C::default()).then_some(c)
}
