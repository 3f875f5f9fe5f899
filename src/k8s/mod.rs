//! Kubernetes tooling: `inject` adds the sidecar to workload YAML, and
//! `webhook` does the same as a mutating admission webhook.

pub mod inject;
pub mod webhook;
