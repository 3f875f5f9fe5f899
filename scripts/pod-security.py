#!/usr/bin/env python3
"""Checks every pod template in Kubernetes YAML against the Pod Security
Standards "restricted" profile (which includes "baseline"), as the
PodSecurity admission controller of Kubernetes 1.30 enforces it:
https://kubernetes.io/docs/concepts/security/pod-security-standards/

    pod-security.py FILE...      report each violation; exit 1 if any
    pod-security.py --self-test  a deliberately bad pod must be refused on
                                 every rule, a good one accepted

Pod templates: Pod, PodTemplate, Deployment, ReplicaSet, StatefulSet,
DaemonSet, ReplicationController, Job, CronJob; containers, initContainers
and ephemeralContainers. Each violation names file, object, container and
field. Custom resources and objects without pods are skipped.
"""
import sys

import yaml

# Volume types restricted allows (besides these, only the volume's name).
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}
# Sysctls baseline allows (the "safe" set of 1.30).
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}
APPARMOR_OK = {"RuntimeDefault", "Localhost"}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_specs(obj):
    """(where, pod metadata, pod spec) of every pod template in obj."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield obj.get("metadata") or {}, spec
    elif kind == "PodTemplate":
        t = obj.get("template") or {}
        yield t.get("metadata") or {}, t.get("spec") or {}
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController", "Job"):
        t = spec.get("template") or {}
        yield t.get("metadata") or {}, t.get("spec") or {}
    elif kind == "CronJob":
        t = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        yield t.get("metadata") or {}, t.get("spec") or {}


def check_pod(meta, pod):
    """Violations of one pod template as (container or None, field, problem)."""
    out = []
    psc = pod.get("securityContext") or {}

    def bad(ctr, field, problem):
        out.append((ctr, field, problem))

    # baseline: host namespaces, hostPath, HostProcess, sysctls, SELinux, AppArmor.
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(f):
            bad(None, f"spec.{f}", "must be unset or false")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        bad(None, "spec.securityContext.windowsOptions.hostProcess", "must be unset or false")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            bad(None, "spec.securityContext.sysctls", f"{s.get('name')} is not a safe sysctl")
    for v in pod.get("volumes") or []:
        types = [k for k in v if k != "name"]
        for t in types:
            if t not in ALLOWED_VOLUMES:
                bad(None, f"spec.volumes[{v.get('name')}].{t}",
                    "volume type not allowed (restricted: " + ", ".join(sorted(ALLOWED_VOLUMES)) + ")")
    check_selinux(bad, None, "spec.securityContext", psc)
    check_apparmor(bad, None, "spec.securityContext", psc)
    for k, v in ((meta.get("annotations") or {}).items()):
        if k.startswith("container.apparmor.security.beta.kubernetes.io/") \
                and v != "runtime/default" and not str(v).startswith("localhost/"):
            bad(k.rsplit("/", 1)[1], f"metadata.annotations[{k}]", f"{v!r}: must be runtime/default or localhost/*")

    pod_nonroot = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_nonroot is False:
        bad(None, "spec.securityContext.runAsNonRoot", "false: must be true or unset")
    if psc.get("runAsUser") == 0:
        bad(None, "spec.securityContext.runAsUser", "0 (root)")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_OK:
        bad(None, "spec.securityContext.seccompProfile.type", f"{pod_seccomp}: must be RuntimeDefault or Localhost")

    for lst in CONTAINER_LISTS:
        for c in pod.get(lst) or []:
            check_container(bad, c.get("name"), f"spec.{lst}[{c.get('name')}]", c, pod_nonroot, pod_seccomp)
    return out


def check_container(bad, name, at, c, pod_nonroot, pod_seccomp):
    sc = c.get("securityContext") or {}
    here = f"{at}.securityContext"
    if sc.get("privileged"):
        bad(name, f"{here}.privileged", "must be unset or false")
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        bad(name, f"{here}.windowsOptions.hostProcess", "must be unset or false")
    if sc.get("procMount") not in (None, "Default"):
        bad(name, f"{here}.procMount", f"{sc.get('procMount')}: must be Default")
    for p in c.get("ports") or []:
        if p.get("hostPort"):
            bad(name, f"{at}.ports[{p.get('containerPort')}].hostPort", f"{p.get('hostPort')}: host ports not allowed")
    check_selinux(bad, name, here, sc)
    check_apparmor(bad, name, here, sc)
    if sc.get("allowPrivilegeEscalation") is not False:
        bad(name, f"{here}.allowPrivilegeEscalation", "must be false")
    nonroot = sc.get("runAsNonRoot", pod_nonroot)
    if nonroot is not True:
        bad(name, f"{here}.runAsNonRoot", "must be true (here or in the pod's securityContext)")
    if sc.get("runAsUser") == 0:
        bad(name, f"{here}.runAsUser", "0 (root)")
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_OK:
        bad(name, f"{here}.seccompProfile.type", f"{seccomp}: must be RuntimeDefault or Localhost")
    elif seccomp is None and pod_seccomp is None:
        bad(name, f"{here}.seccompProfile.type", "unset here and in the pod: must be RuntimeDefault or Localhost")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        bad(name, f"{here}.capabilities.drop", "must include ALL")
    for cap in caps.get("add") or []:
        if cap != "NET_BIND_SERVICE":
            bad(name, f"{here}.capabilities.add", f"{cap}: only NET_BIND_SERVICE may be added")


def check_selinux(bad, name, at, sc):
    se = sc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES:
        bad(name, f"{at}.seLinuxOptions.type", f"{se.get('type')}: not an allowed SELinux type")
    for f in ("user", "role"):
        if se.get(f):
            bad(name, f"{at}.seLinuxOptions.{f}", "must be unset")


def check_apparmor(bad, name, at, sc):
    t = (sc.get("appArmorProfile") or {}).get("type")
    if t is not None and t not in APPARMOR_OK:
        bad(name, f"{at}.appArmorProfile.type", f"{t}: must be RuntimeDefault or Localhost")


def check_docs(label, docs):
    """Violation lines for every pod template of docs; and how many pods were seen."""
    lines, pods = [], 0
    for obj in docs:
        if not isinstance(obj, dict):
            continue
        for meta, pod in pod_specs(obj):
            pods += 1
            what = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            for ctr, field, problem in check_pod(meta, pod):
                where = f" container {ctr}" if ctr else ""
                lines.append(f"{label}: {what}{where}: {field}: {problem}")
    return lines, pods


BAD_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: bad
  annotations:
    container.apparmor.security.beta.kubernetes.io/app: unconfined
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  securityContext:
    runAsUser: 0
    runAsNonRoot: false
    sysctls: [{ name: kernel.msgmax, value: "1" }]
    seLinuxOptions: { user: system_u }
  volumes:
    - { name: host, hostPath: { path: / } }
    - { name: nfs, nfs: { server: x, path: / } }
  initContainers:
    - name: init
      image: x
      securityContext: { seccompProfile: { type: Unconfined } }
  containers:
    - name: app
      image: x
      ports: [{ containerPort: 80, hostPort: 80 }]
      securityContext:
        privileged: true
        allowPrivilegeEscalation: true
        runAsNonRoot: false
        procMount: Unmasked
        capabilities: { add: [SYS_ADMIN, NET_BIND_SERVICE] }
        appArmorProfile: { type: Unconfined }
  ephemeralContainers:
    - name: debug
      image: x
      securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: [ALL] } }
"""
# Every rule the bad pod breaks, as a fragment of its violation line.
BAD_POD_EXPECTS = [
    "spec.hostNetwork", "spec.hostPID", "spec.hostIPC", "spec.securityContext.runAsUser: 0",
    "spec.securityContext.runAsNonRoot: false",
    "kernel.msgmax is not a safe sysctl", "spec.securityContext.seLinuxOptions.user",
    "spec.volumes[host].hostPath", "spec.volumes[nfs].nfs",
    "container app: metadata.annotations[container.apparmor",
    "container init: spec.initContainers[init].securityContext.seccompProfile.type: Unconfined",
    "container init: spec.initContainers[init].securityContext.allowPrivilegeEscalation",
    "container init: spec.initContainers[init].securityContext.runAsNonRoot",
    "container init: spec.initContainers[init].securityContext.capabilities.drop",
    "container app: spec.containers[app].ports[80].hostPort",
    "container app: spec.containers[app].securityContext.privileged",
    "container app: spec.containers[app].securityContext.allowPrivilegeEscalation",
    "container app: spec.containers[app].securityContext.runAsNonRoot",
    "container app: spec.containers[app].securityContext.procMount",
    "container app: spec.containers[app].securityContext.capabilities.add: SYS_ADMIN",
    "container app: spec.containers[app].securityContext.capabilities.drop",
    "container app: spec.containers[app].securityContext.appArmorProfile.type",
    "container app: spec.containers[app].securityContext.seccompProfile.type: unset",
    "container debug: spec.ephemeralContainers[debug].securityContext.seccompProfile.type: unset",
]
GOOD_CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: { name: good }
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
          volumes: [{ name: c, configMap: { name: c } }, { name: t, emptyDir: {} }]
          containers:
            - name: app
              image: x
              securityContext:
                allowPrivilegeEscalation: false
                runAsUser: 1000
                capabilities: { drop: [ALL], add: [NET_BIND_SERVICE] }
"""


def self_test():
    """The checker refuses each rule of a bad pod and passes a good CronJob."""
    lines, pods = check_docs("self-test", list(yaml.safe_load_all(BAD_POD)))
    missing = [e for e in BAD_POD_EXPECTS if not any(e in line for line in lines)]
    good, good_pods = check_docs("self-test", list(yaml.safe_load_all(GOOD_CRONJOB)))
    ok = pods == 1 and not missing and good_pods == 1 and not good
    for e in missing:
        print(f"pod-security: FAIL: self-test: the bad pod was not refused for {e!r}", file=sys.stderr)
    for line in good:
        print(f"pod-security: FAIL: self-test: the good CronJob was refused: {line}", file=sys.stderr)
    if ok:
        print(f"pod-security: self-test ok: the bad pod refused on all {len(BAD_POD_EXPECTS)} rules "
              f"({len(lines)} violations), the good CronJob accepted")
    return ok


def main(argv):
    if argv == ["--self-test"]:
        return 0 if self_test() else 1
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path in argv:
        with open(path) as f:
            lines, pods = check_docs(path, list(yaml.safe_load_all(f)))
        for line in lines:
            print(f"pod-security: FAIL: {line}", file=sys.stderr)
        failed |= bool(lines)
        print(f"pod-security: {path}: {pods} pod template(s), {len(lines)} violation(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
