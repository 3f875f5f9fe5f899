//! Which port the app listens on: the `jwtgate.io/upstream-port`
//! annotation (a number, or the name of a containerPort), else the one TCP
//! containerPort the app containers declare. Also refuses app ports that
//! the sidecar itself needs, since two processes of one pod share a network
//! namespace and the second `bind` would fail at run time, not here.

use super::error::Problem;
use super::{ADMIN_PORT, CONTAINER_NAME, LISTEN_PORT};
use serde_yaml::{Mapping, Value};

/// The app port jwtgate forwards to, with its name when it has one (a
/// Service may target it by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub number: u16,
    pub name: Option<String>,
}

struct Declared {
    container: String,
    name: Option<String>,
    number: u16,
}

impl Declared {
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({name} in {})", self.number, self.container),
            None => format!("{} (in {})", self.number, self.container),
        }
    }
}

/// Resolves the upstream port of a pod spec; `annotation` is the value of
/// `jwtgate.io/upstream-port`, if set. A numeric annotation need not be
/// declared: containerPort lists are informational and often incomplete.
pub(crate) fn resolve(spec: &Mapping, annotation: Option<&Value>) -> Result<Upstream, Problem> {
    let declared = declared(spec)?;
    if let Some(clash) = declared.iter().find(|d| d.number == LISTEN_PORT || d.number == ADMIN_PORT) {
        return Err(Problem::PortCollision { container: clash.container.clone(), port: clash.number });
    }
    let upstream = match annotation {
        Some(value) => by_annotation(&declared, value)?,
        None => match declared.as_slice() {
            [only] => Upstream { number: only.number, name: only.name.clone() },
            [] => return Err(Problem::NoPort),
            many => return Err(Problem::AmbiguousPort(many.iter().map(Declared::describe).collect())),
        },
    };
    if upstream.number == LISTEN_PORT || upstream.number == ADMIN_PORT {
        return Err(Problem::PortCollision { container: "jwtgate.io/upstream-port".into(), port: upstream.number });
    }
    Ok(upstream)
}

fn by_annotation(declared: &[Declared], value: &Value) -> Result<Upstream, Problem> {
    let wanted = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Problem::Malformed("the jwtgate.io/upstream-port annotation")),
    };
    if let Some(number) = wanted.parse::<u16>().ok().filter(|n| *n > 0) {
        let name = declared.iter().find(|d| d.number == number).and_then(|d| d.name.clone());
        return Ok(Upstream { number, name });
    }
    match declared.iter().find(|d| d.name.as_deref() == Some(wanted.as_str())) {
        Some(d) => Ok(Upstream { number: d.number, name: d.name.clone() }),
        None => Err(Problem::UnknownPort { wanted, known: declared.iter().filter_map(|d| d.name.clone()).collect() }),
    }
}

/// TCP containerPorts of the app containers (every container but ours).
fn declared(spec: &Mapping) -> Result<Vec<Declared>, Problem> {
    let containers = match spec.get("containers") {
        Some(Value::Sequence(list)) => list,
        None => return Ok(Vec::new()),
        Some(_) => return Err(Problem::Malformed("spec.containers")),
    };
    let mut out = Vec::new();
    for container in containers {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        if name == CONTAINER_NAME {
            continue;
        }
        let ports = match container.get("ports") {
            Some(Value::Sequence(ports)) => ports.as_slice(),
            None | Some(Value::Null) => &[],
            Some(_) => return Err(Problem::Malformed("a container's ports")),
        };
        for port in ports {
            let protocol = port.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if protocol != "TCP" {
                continue;
            }
            let number = port
                .get("containerPort")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(Problem::Malformed("a containerPort"))?;
            let port_name = port.get("name").and_then(Value::as_str).map(str::to_owned);
            out.push(Declared { container: name.to_owned(), name: port_name, number });
        }
    }
    Ok(out)
}
