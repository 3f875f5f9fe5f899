//! Sidecar injection: the one transformation behind `jwtgate inject` (YAML
//! streams) and `jwtgate webhook` (one admission object as JSON), so both
//! add exactly the same thing. The sidecar itself is the contract in
//! `docs/sidecar-contract.md`; this module owns applying it.
//!
//! - A workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
//!   CronJob) opts in with `jwtgate.io/inject: "true"`, an annotation or a
//!   label, on its pod template or on itself; `"false"` opts out even under
//!   `--all`. `jwtgate.io/upstream-port` (number or containerPort name)
//!   picks the app port, else the single TCP containerPort does.
//! - A pod that already has a container named `jwtgate` is left unchanged:
//!   injecting twice equals injecting once.
//! - Jobs and CronJobs (and pods owned by a Job) get the container as a
//!   native sidecar (`initContainers`, `restartPolicy: Always`), because a
//!   regular proxy container would keep the Job from ever completing.
//! - Everything else passes through: other documents, other fields, field
//!   order. Comments and quoting styles do not survive (serde_yaml).
//!
//! `workload` finds pod templates and decides, `ports` resolves the app
//! port, `sidecar` builds what is added, `service` retargets Services.

mod error;
mod ports;
mod service;
mod sidecar;
mod workload;

pub use error::{InjectError, Problem, WorkloadId};

use serde::Deserialize;
use serde_yaml::Value;

/// Opt-in key (annotation or label).
pub const INJECT_KEY: &str = "jwtgate.io/inject";
/// Annotation naming the app port (number or containerPort name).
pub const PORT_KEY: &str = "jwtgate.io/upstream-port";
/// Annotation set on every injected pod template.
pub const INJECTED_KEY: &str = "jwtgate.io/injected";
/// Name of the injected container; its presence means "already injected".
pub const CONTAINER_NAME: &str = "jwtgate";
/// The sidecar's public port (`jwtgate-http`) and admin port (`jwtgate-admin`).
pub const LISTEN_PORT: u16 = 8080;
pub const ADMIN_PORT: u16 = 9901;
pub const DEFAULT_IMAGE: &str = "ghcr.io/jwtgate/jwtgate:0.1.0";

/// What to inject and where; `Default` is the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Inject every workload that does not opt out.
    pub all: bool,
    /// Retarget Services that select injected workloads (YAML streams only).
    pub services: bool,
    pub image: String,
    /// ConfigMap holding `jwtgate.yaml`.
    pub config_map: String,
    /// Secret holding `jwt-secret` and `admin-token`.
    pub secret: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            all: false,
            services: false,
            image: DEFAULT_IMAGE.to_owned(),
            config_map: "jwtgate-config".to_owned(),
            secret: "jwtgate-secrets".to_owned(),
        }
    }
}

/// Injects every opted-in workload of a multi-document YAML stream and
/// returns the whole stream, `---` separated, in input order. Empty
/// documents are dropped. Fails on the first workload that cannot be
/// injected, naming its document and workload; nothing is half-written.
pub fn inject(input: &str, opts: &Options) -> Result<String, InjectError> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let value = Value::deserialize(doc).map_err(|source| InjectError::Yaml { index: i + 1, source })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let mut targets = Vec::new();
    for (i, doc) in docs.iter_mut().enumerate() {
        let target = workload::inject(doc, opts).map_err(|(workload, problem)| InjectError::Workload {
            document: Some(i + 1),
            workload: Box::new(workload),
            problem,
        })?;
        targets.extend(target);
    }
    if opts.services {
        docs.iter_mut().for_each(|doc| service::retarget(doc, &targets));
    }
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(doc).map_err(InjectError::Output)?);
    }
    Ok(out)
}

/// Injects one object (the webhook's admission object, as JSON). `Ok(None)`
/// when nothing changes: not a workload, not opted in, or already injected.
/// `opts.services` is ignored: there is no Service beside the object.
pub fn inject_object(object: &serde_json::Value, opts: &Options) -> Result<Option<serde_json::Value>, InjectError> {
    let mut doc: Value = serde_yaml::to_value(object).map_err(|e| InjectError::Convert(e.to_string()))?;
    let opts = Options { services: false, ..opts.clone() };
    let target = workload::inject(&mut doc, &opts).map_err(|(workload, problem)| InjectError::Workload {
        document: None,
        workload: Box::new(workload),
        problem,
    })?;
    if target.is_none() {
        return Ok(None);
    }
    serde_json::to_value(&doc).map(Some).map_err(|e| InjectError::Convert(e.to_string()))
}
