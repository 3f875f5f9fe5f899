//! `--services`: a Service in the same input that selects an injected
//! workload's pods and targets its app port is pointed at the sidecar
//! (`targetPort: jwtgate-http`), so traffic through the Service passes
//! jwtgate. Only Services in the same stream are seen; retargeted ports no
//! longer match the app port, which keeps a second run a no-op.

use super::workload::Target;
use serde_yaml::{Mapping, Value};

/// The sidecar's public port name (contract).
pub(crate) const PORT_NAME: &str = "jwtgate-http";

/// Retargets the matching ports of `doc` if it is such a Service.
pub(crate) fn retarget(doc: &mut Value, targets: &[Target]) {
    if doc.get("kind").and_then(Value::as_str) != Some("Service") {
        return;
    }
    let namespace = doc.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str);
    let Some(selector) = doc.get("spec").and_then(|s| s.get("selector")).and_then(Value::as_mapping) else {
        return;
    };
    let selected: Vec<&Target> =
        targets.iter().filter(|t| t.namespace.as_deref() == namespace && selects(selector, &t.labels)).collect();
    if selected.is_empty() {
        return;
    }
    let Some(ports) = doc.get_mut("spec").and_then(|s| s.get_mut("ports")).and_then(Value::as_sequence_mut) else {
        return;
    };
    for port in ports.iter_mut().filter_map(Value::as_mapping_mut) {
        let target = port.get("targetPort").or_else(|| port.get("port"));
        if target.is_some_and(|t| selected.iter().any(|s| is_app_port(t, s))) {
            port.insert("targetPort".into(), PORT_NAME.into());
        }
    }
}

/// A Service with an empty selector selects nothing (its endpoints are
/// managed by hand), so it is never retargeted.
fn selects(selector: &Mapping, labels: &Mapping) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn is_app_port(port: &Value, target: &Target) -> bool {
    match port {
        Value::Number(n) => n.as_u64() == Some(u64::from(target.upstream.number)),
        Value::String(s) => {
            target.upstream.name.as_deref() == Some(s.as_str()) || s.parse::<u16>().ok() == Some(target.upstream.number)
        }
        _ => false,
    }
}
