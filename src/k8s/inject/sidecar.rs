//! The sidecar itself, as the contract (docs/sidecar-contract.md) spells
//! it: the `jwtgate` container, its two volumes, the `jwtgate.io/injected`
//! annotation and a grace period long enough for preStop plus draining.
//! Built as `serde_yaml::Value` mappings so the output keeps the
//! contract's field order.

use super::{Options, ADMIN_PORT, CONTAINER_NAME, LISTEN_PORT};
use serde_yaml::{Mapping, Value};

pub(crate) const CONFIG_VOLUME: &str = "jwtgate-config";
pub(crate) const SECRET_VOLUME: &str = "jwtgate-secrets";
const CONFIG_DIR: &str = "/etc/jwtgate";
const CONFIG_FILE: &str = "/etc/jwtgate/jwtgate.yaml";
const SECRET_DIR: &str = "/var/run/secrets/jwtgate";
/// preStop sleeps 5 s, then jwtgate drains for up to 30 s: 40 leaves slack.
const MIN_GRACE_SECONDS: u64 = 40;

/// Where the container goes. A Job's pods end when their containers exit,
/// and a proxy never does: there it must be a native sidecar (an init
/// container with `restartPolicy: Always`, Kubernetes ≥ 1.29), which the
/// kubelet stops once the app containers have finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Containers,
    NativeSidecar,
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(pairs.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

fn seq<const N: usize>(items: [Value; N]) -> Value {
    Value::Sequence(items.into())
}

fn container(upstream_port: u16, opts: &Options, slot: Slot) -> Value {
    let probe = |path: &str| map([("httpGet", map([("path", path.into()), ("port", "jwtgate-admin".into())]))]);
    let mount =
        |name: &str, path: &str| map([("name", name.into()), ("mountPath", path.into()), ("readOnly", true.into())]);
    let Value::Mapping(mut c) = map([
        ("name", CONTAINER_NAME.into()),
        ("image", opts.image.as_str().into()),
        (
            "args",
            seq([
                "run".into(),
                "-c".into(),
                CONFIG_FILE.into(),
                "--upstream".into(),
                format!("http://127.0.0.1:{upstream_port}").into(),
            ]),
        ),
        (
            "ports",
            seq([
                map([("name", "jwtgate-http".into()), ("containerPort", LISTEN_PORT.into())]),
                map([("name", "jwtgate-admin".into()), ("containerPort", ADMIN_PORT.into())]),
            ]),
        ),
        ("volumeMounts", seq([mount(CONFIG_VOLUME, CONFIG_DIR), mount(SECRET_VOLUME, SECRET_DIR)])),
        ("livenessProbe", probe("/healthz")),
        ("readinessProbe", probe("/readyz")),
        (
            "resources",
            map([
                ("requests", map([("cpu", "50m".into()), ("memory", "32Mi".into())])),
                ("limits", map([("memory", "128Mi".into())])),
            ]),
        ),
        (
            "securityContext",
            map([
                ("runAsNonRoot", true.into()),
                ("runAsUser", 65532.into()),
                ("runAsGroup", 65532.into()),
                ("readOnlyRootFilesystem", true.into()),
                ("allowPrivilegeEscalation", false.into()),
                ("capabilities", map([("drop", seq(["ALL".into()]))])),
                // Its own, so Pod Security "restricted" holds even in a pod
                // that sets seccomp per container rather than for the pod.
                ("seccompProfile", map([("type", "RuntimeDefault".into())])),
            ]),
        ),
        ("lifecycle", map([("preStop", map([("sleep", map([("seconds", 5.into())]))]))])),
    ]) else {
        return Value::Null;
    };
    if slot == Slot::NativeSidecar {
        c.insert("restartPolicy".into(), "Always".into());
    }
    Value::Mapping(c)
}

fn volumes(opts: &Options) -> [Value; 2] {
    [
        map([("name", CONFIG_VOLUME.into()), ("configMap", map([("name", opts.config_map.as_str().into())]))]),
        map([("name", SECRET_VOLUME.into()), ("secret", map([("secretName", opts.secret.as_str().into())]))]),
    ]
}

/// The mapping under `key`, created empty (at the end) when absent or null.
fn child<'a>(parent: &'a mut Mapping, key: &str) -> Option<&'a mut Mapping> {
    let slot = parent.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
}

fn list<'a>(parent: &'a mut Mapping, key: &str) -> Option<&'a mut Vec<Value>> {
    let slot = parent.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Sequence(Vec::new());
    }
    slot.as_sequence_mut()
}

/// Adds the sidecar to a pod template (`metadata` + `spec`). `None` when a
/// field on the way is not the mapping or list Kubernetes requires.
pub(crate) fn add(pod: &mut Mapping, upstream_port: u16, opts: &Options, slot: Slot) -> Option<()> {
    let annotations = child(child(pod, "metadata")?, "annotations")?;
    annotations.insert(super::INJECTED_KEY.into(), "true".into());
    let spec = child(pod, "spec")?;
    let containers = match slot {
        Slot::Containers => "containers",
        Slot::NativeSidecar => "initContainers",
    };
    list(spec, containers)?.push(container(upstream_port, opts, slot));
    let existing = list(spec, "volumes")?;
    for volume in volumes(opts) {
        if !existing.iter().any(|v| v.get("name") == volume.get("name")) {
            existing.push(volume);
        }
    }
    let grace = spec.get("terminationGracePeriodSeconds").and_then(Value::as_u64);
    if grace.is_none_or(|g| g < MIN_GRACE_SECONDS) {
        spec.insert("terminationGracePeriodSeconds".into(), MIN_GRACE_SECONDS.into());
    }
    Some(())
}
