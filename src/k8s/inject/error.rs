//! What can stop an injection, as types: the CLI prints them, the webhook
//! turns them into a denial, tests match on them. Every message names the
//! workload (kind, namespace, name) and says what to change.

use std::fmt;

/// The workload an error is about, as written in its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadId {
    pub kind: String,
    /// `None` when the manifest leaves it to `kubectl -n` / the request.
    pub namespace: Option<String>,
    /// `metadata.name`, or `generateName*` for pods a controller creates.
    pub name: String,
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Why one workload cannot be injected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("jwtgate.io/inject is {0:?}; set it to \"true\" or \"false\"")]
    InvalidOptIn(String),
    #[error(
        "its containers declare several ports ({}); set the annotation jwtgate.io/upstream-port \
         to the one (number or name) jwtgate should forward to",
        .0.join(", ")
    )]
    AmbiguousPort(Vec<String>),
    #[error(
        "no container declares a containerPort; declare the app's port, or set the annotation \
         jwtgate.io/upstream-port to its number"
    )]
    NoPort,
    #[error(
        "jwtgate.io/upstream-port names port {wanted:?}, which no container declares (declared: {}); \
         use one of those names or a port number",
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    )]
    UnknownPort { wanted: String, known: Vec<String> },
    #[error(
        "container {container:?} uses port {port}, which the jwtgate sidecar needs (8080 public, \
         9901 admin); move the app to another port"
    )]
    PortCollision { container: String, port: u16 },
    #[error("{0} is not what Kubernetes expects there; fix the manifest")]
    Malformed(&'static str),
}

/// Everything `inject` and `inject_object` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// `index` counts documents from 1, as `---` separates them.
    #[error("document {index}: invalid YAML: {source}")]
    Yaml { index: usize, source: serde_yaml::Error },
    #[error("{}{workload}: {problem}", at(*.document))]
    Workload { document: Option<usize>, workload: Box<WorkloadId>, problem: Problem },
    #[error("cannot write the result as YAML: {0}")]
    Output(serde_yaml::Error),
    /// An admission object that has no YAML form (or back): not a Kubernetes object.
    #[error("the object cannot be converted between JSON and YAML: {0}")]
    Convert(String),
}

fn at(document: Option<usize>) -> String {
    document.map(|i| format!("document {i}: ")).unwrap_or_default()
}
