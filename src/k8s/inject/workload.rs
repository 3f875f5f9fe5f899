//! One workload document: where its pod template sits, whether it opted
//! in, and injecting it. Reads first, then writes, so a refused workload is
//! left exactly as it was.

use super::error::{Problem, WorkloadId};
use super::ports::{self, Upstream};
use super::sidecar::{self, Slot};
use super::{Options, CONTAINER_NAME, INJECT_KEY, PORT_KEY};
use serde_yaml::{Mapping, Value};

/// An injected workload as `--services` needs it: which pods, which port.
pub(crate) struct Target {
    pub namespace: Option<String>,
    pub labels: Mapping,
    pub upstream: Upstream,
}

/// Keys from the document root to the pod template (its `metadata` and
/// `spec`); `None` for kinds that run no pods.
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&[]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some(&["spec", "template"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// Injects the sidecar when the workload opted in (or `opts.all`) and has
/// none yet. Returns the target for Service retargeting when the workload
/// carries the sidecar (now or before; computed for the latter only with
/// `opts.services`), `None` when it is not a workload or stays without one.
pub(crate) fn inject(doc: &mut Value, opts: &Options) -> Result<Option<Target>, (WorkloadId, Problem)> {
    let Some(kind) = doc.get("kind").and_then(Value::as_str).map(str::to_owned) else { return Ok(None) };
    let Some(path) = template_path(&kind) else { return Ok(None) };
    let id = identity(doc, &kind);
    let fail = |problem| (id.clone(), problem);
    let Some(pod) = descend(doc, path).and_then(Value::as_mapping) else {
        return Err(fail(Problem::Malformed("the pod template")));
    };
    let opted = opt_in(doc, pod).map_err(fail)?.unwrap_or(opts.all);
    let spec = match pod.get("spec") {
        Some(Value::Mapping(spec)) => spec,
        None if !opted => return Ok(None),
        _ => return Err(fail(Problem::Malformed("the pod spec"))),
    };
    let injected = has_sidecar(spec);
    if !opted || (injected && !opts.services) {
        return Ok(None);
    }
    let upstream = ports::resolve(spec, annotation(doc, pod, PORT_KEY)).map_err(fail)?;
    let target = Target {
        namespace: id.namespace.clone(),
        labels: metadata(pod, "labels").cloned().unwrap_or_default(),
        upstream,
    };
    if !injected {
        let slot = slot(&kind, pod);
        let pod = descend_mut(doc, path).and_then(Value::as_mapping_mut);
        pod.and_then(|pod| sidecar::add(pod, target.upstream.number, opts, slot))
            .ok_or_else(|| fail(Problem::Malformed("the pod template's metadata or spec")))?;
    }
    Ok(Some(target))
}

fn identity(doc: &Value, kind: &str) -> WorkloadId {
    let meta = |key: &str| doc.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str);
    let name = match (meta("name"), meta("generateName")) {
        (Some(name), _) => name.to_owned(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => "(unnamed)".to_owned(),
    };
    WorkloadId { kind: kind.to_owned(), namespace: meta("namespace").map(str::to_owned), name }
}

fn descend<'a>(mut v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    for key in path {
        v = v.get(key)?;
    }
    Some(v)
}

fn descend_mut<'a>(mut v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    for key in path {
        v = v.get_mut(key)?;
    }
    Some(v)
}

fn metadata<'a>(obj: &'a Mapping, field: &str) -> Option<&'a Mapping> {
    obj.get("metadata")?.get(field)?.as_mapping()
}

/// The pod template's annotation, else the workload's own.
fn annotation<'a>(doc: &'a Value, pod: &'a Mapping, key: &str) -> Option<&'a Value> {
    let own = doc.as_mapping().and_then(|d| metadata(d, "annotations")).and_then(|a| a.get(key));
    metadata(pod, "annotations").and_then(|a| a.get(key)).or(own)
}

/// `jwtgate.io/inject` as an annotation or label, on the pod template
/// first, then on the workload: `Some(false)` opts out even under `--all`.
fn opt_in(doc: &Value, pod: &Mapping) -> Result<Option<bool>, Problem> {
    let label = |obj: &Mapping| metadata(obj, "labels").and_then(|l| l.get(INJECT_KEY)).cloned();
    let on_workload = doc.as_mapping().and_then(label);
    let found = annotation(doc, pod, INJECT_KEY).cloned().or_else(|| label(pod)).or(on_workload);
    match found {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(Problem::InvalidOptIn(serde_yaml::to_string(&other).unwrap_or_default().trim().into())),
    }
}

/// Idempotence: a pod with a container named `jwtgate` (regular or native
/// sidecar) is never touched again, whatever else changed.
pub(crate) fn has_sidecar(spec: &Mapping) -> bool {
    ["containers", "initContainers"].iter().any(|key| {
        spec.get(*key)
            .and_then(Value::as_sequence)
            .is_some_and(|list| list.iter().any(|c| c.get("name").and_then(Value::as_str) == Some(CONTAINER_NAME)))
    })
}

/// Jobs (and the pods a Job owns, as the webhook sees them) get a native
/// sidecar; everything else a regular container.
fn slot(kind: &str, pod: &Mapping) -> Slot {
    let owned_by_job = pod
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_sequence)
        .is_some_and(|refs| refs.iter().any(|r| r.get("kind").and_then(Value::as_str) == Some("Job")));
    if matches!(kind, "Job" | "CronJob") || owned_by_job {
        Slot::NativeSidecar
    } else {
        Slot::Containers
    }
}
