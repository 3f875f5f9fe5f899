//! `jwtgate inject`: golden files under `tests/inject/` (`<case>.in.yaml`
//! → `<case>.out.yaml`, compared exactly; `UPDATE_GOLDEN=1 cargo test`
//! rewrites them). Each input's first line is the command it stands for,
//! e.g. `# jwtgate inject --all`. Goldens run through the library and the
//! real binary (stdin and `-f`); refusals are asserted on their messages.

use jwtgate::k8s::inject::{self, InjectError, Options, Problem};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inject")
}

/// Every `<case>.in.yaml`, sorted, with its input text.
fn cases() -> Vec<(String, String)> {
    let mut cases: Vec<_> = std::fs::read_dir(golden_dir())
        .expect("tests/inject")
        .map(|e| e.expect("dir entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".in.yaml")?.to_owned();
            Some((name, std::fs::read_to_string(&p).expect("read input")))
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 9, "golden inputs missing: {cases:?}");
    cases
}

/// The CLI arguments on the input's first line: `# jwtgate inject ARGS`.
fn args_of(input: &str) -> Vec<String> {
    let first = input.lines().next().unwrap_or_default();
    let args = first.strip_prefix("# jwtgate inject").expect("first line must be `# jwtgate inject [ARGS]`");
    args.split_whitespace().map(str::to_owned).collect()
}

fn options_of(args: &[String]) -> Options {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("flag value").clone();
        match arg.as_str() {
            "--all" => opts.all = true,
            "--services" => opts.services = true,
            "--image" => opts.image = value(),
            "--config-map" => opts.config_map = value(),
            "--secret" => opts.secret = value(),
            other => panic!("unknown flag in golden input: {other}"),
        }
    }
    opts
}

#[track_caller]
fn assert_golden(case: &str, actual: &str) {
    let path = golden_dir().join(format!("{case}.out.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
    assert!(actual == expected, "{case}: output differs from {}\n--- actual:\n{actual}", path.display());
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn binary(args: &[String], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .arg("inject")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jwtgate inject");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("jwtgate inject output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

#[test]
fn every_golden_input_injects_to_its_golden_output() {
    for (case, input) in cases() {
        let out = inject::inject(&input, &options_of(&args_of(&input))).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_golden(&case, &out);
    }
}

#[test]
fn injecting_a_golden_output_again_changes_nothing() {
    for (case, input) in cases() {
        let opts = options_of(&args_of(&input));
        let once = inject::inject(&input, &opts).expect("first pass");
        let twice = inject::inject(&once, &opts).unwrap_or_else(|e| panic!("{case}, second pass: {e}"));
        assert_eq!(twice, once, "{case}: a second injection changed the output");
    }
}

#[test]
fn the_binary_reads_stdin_and_files_and_writes_the_golden_output() {
    for (case, input) in cases() {
        let args = args_of(&input);
        let run = binary(&args, &input);
        assert!(run.ok, "{case}: jwtgate inject failed: {}", run.stderr);
        assert_golden(&case, &run.stdout);
    }
    let (case, input) = cases().into_iter().find(|(c, _)| c == "services").expect("services case");
    let mut args = args_of(&input);
    args.extend(["-f".to_owned(), golden_dir().join(format!("{case}.in.yaml")).display().to_string()]);
    let run = binary(&args, "");
    assert!(run.ok, "-f: {}", run.stderr);
    assert_golden(&case, &run.stdout);
}

/// Parses one output document for the structural checks below.
fn doc(out: &str, index: usize) -> serde_yaml::Value {
    let docs: Vec<&str> = out.split("\n---\n").collect();
    serde_yaml::from_str(docs[index]).expect("output document")
}

fn golden_out(case: &str) -> String {
    let input = std::fs::read_to_string(golden_dir().join(format!("{case}.in.yaml"))).expect("input");
    inject::inject(&input, &options_of(&args_of(&input))).expect("inject")
}

#[test]
fn the_sidecar_forwards_to_the_port_the_annotation_or_the_single_port_names() {
    let upstream = |case: &str, index: usize, list: &str| {
        let d = doc(&golden_out(case), index);
        let spec = d.get("spec").and_then(|s| s.get("template")).map_or(&d["spec"], |t| &t["spec"]).clone();
        let sidecar = spec[list].as_sequence().expect(list).iter().find(|c| c["name"] == "jwtgate").cloned();
        let args = sidecar.expect("jwtgate container")["args"].clone();
        args[4].as_str().expect("--upstream value").to_owned()
    };
    assert_eq!(upstream("deployment-named-port", 0, "containers"), "http://127.0.0.1:3000"); // name `http`
    assert_eq!(upstream("daemonset-port-number", 0, "containers"), "http://127.0.0.1:7070"); // number
    assert_eq!(upstream("statefulset-single-port", 0, "containers"), "http://127.0.0.1:5000"); // the only port
    assert_eq!(upstream("pod", 0, "containers"), "http://127.0.0.1:8000");
    assert_eq!(upstream("job-native-sidecar", 0, "initContainers"), "http://127.0.0.1:8000");
}

#[test]
fn a_job_gets_a_native_sidecar_after_its_own_init_containers() {
    let job = doc(&golden_out("job-native-sidecar"), 0);
    let spec = &job["spec"]["template"]["spec"];
    let init: Vec<_> = spec["initContainers"].as_sequence().expect("init").iter().map(|c| c["name"].clone()).collect();
    assert_eq!(init, ["migrate", "jwtgate"]);
    assert_eq!(spec["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(spec["containers"].as_sequence().expect("containers").len(), 1, "no regular sidecar");
}

#[test]
fn services_are_retargeted_only_where_they_select_the_injected_pods_on_the_app_port() {
    let out = golden_out("services");
    let target = |i: usize, port: usize| doc(&out, i)["spec"]["ports"][port]["targetPort"].clone();
    assert_eq!(target(0, 0), "jwtgate-http", "targetPort 3000");
    assert_eq!(target(0, 1), "metrics", "another port of the same pods stays");
    assert_eq!(target(1, 0), "jwtgate-http", "targetPort by name");
    assert_eq!(target(2, 0), "jwtgate-http", "targetPort defaulting to port");
    assert_eq!(target(3, 0), 3000, "another namespace");
    assert_eq!(target(4, 0), 3000, "other pods");
    let without = inject::inject(&out.replace("jwtgate-http", "3000"), &Options::default()).expect("inject");
    assert!(!without.contains("targetPort: jwtgate-http"), "Services change only with --services");
}

#[test]
fn unrelated_documents_and_undecided_workloads_pass_through_unchanged() {
    let input = std::fs::read_to_string(golden_dir().join("multi-document.in.yaml")).expect("input");
    let out = golden_out("multi-document");
    let before: Vec<serde_yaml::Value> =
        input.split("\n---\n").filter(|d| !d.trim().is_empty()).map(|d| serde_yaml::from_str(d).expect("in")).collect();
    assert_eq!(out.split("\n---\n").count(), 5, "the empty document is dropped, the rest kept in order");
    for (i, j) in [(0, 0), (1, 1), (2, 2), (4, 4)] {
        assert_eq!(doc(&out, j), before[i], "document {} changed", j + 1);
    }
    assert_ne!(doc(&out, 3), before[3], "the opted-in Deployment is injected");
}

/// Runs a refused input through the library and the binary; returns the message.
#[track_caller]
fn refused(input: &str, opts: &Options) -> (InjectError, String) {
    let err = inject::inject(input, opts).expect_err("input must be refused");
    let run = binary(&[], input);
    assert!(!run.ok, "binary accepted it: {}", run.stdout);
    assert!(run.stdout.is_empty(), "nothing is written on failure: {}", run.stdout);
    assert!(run.stderr.contains(&err.to_string()), "binary said {:?}, library {err}", run.stderr);
    let msg = err.to_string();
    (err, msg)
}

fn deployment(annotations: &str, ports: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: first}}\n---\napiVersion: apps/v1\nkind: Deployment\n\
         metadata: {{name: orders, namespace: shop}}\nspec:\n  template:\n    metadata:\n      annotations:\n        \
         jwtgate.io/inject: \"true\"\n{annotations}    spec:\n      containers:\n        - name: app\n          \
         image: example/app:1\n{ports}"
    )
}

const TWO_PORTS: &str = "          ports:\n            - {name: http, containerPort: 3000}\n            - {name: grpc, containerPort: 4000}\n";

#[track_caller]
fn assert_names_the_workload(msg: &str) {
    assert!(msg.contains("document 2: Deployment shop/orders:"), "{msg}");
}

#[test]
fn several_ports_without_an_annotation_are_refused_naming_them() {
    let (err, msg) = refused(&deployment("", TWO_PORTS), &Options::default());
    assert!(matches!(err, InjectError::Workload { problem: Problem::AmbiguousPort(_), .. }), "{err:?}");
    assert_names_the_workload(&msg);
    assert!(msg.contains("3000 (http in app)") && msg.contains("4000 (grpc in app)"), "{msg}");
    assert!(msg.contains("jwtgate.io/upstream-port"), "says what to set: {msg}");
}

#[test]
fn a_workload_without_any_port_is_refused() {
    let (err, msg) = refused(&deployment("", ""), &Options::default());
    assert!(matches!(err, InjectError::Workload { problem: Problem::NoPort, .. }), "{err:?}");
    assert_names_the_workload(&msg);
}

#[test]
fn an_annotation_naming_an_undeclared_port_is_refused() {
    let (err, msg) = refused(&deployment("        jwtgate.io/upstream-port: web\n", TWO_PORTS), &Options::default());
    assert!(matches!(err, InjectError::Workload { problem: Problem::UnknownPort { .. }, .. }), "{err:?}");
    assert_names_the_workload(&msg);
    assert!(msg.contains("\"web\"") && msg.contains("declared: http, grpc"), "{msg}");
}

#[test]
fn an_app_port_the_sidecar_needs_is_refused() {
    let ports = "          ports:\n            - {containerPort: 3000}\n            - {containerPort: 9901}\n";
    let (err, msg) = refused(&deployment("        jwtgate.io/upstream-port: \"3000\"\n", ports), &Options::default());
    assert!(matches!(err, InjectError::Workload { problem: Problem::PortCollision { port: 9901, .. }, .. }));
    assert_names_the_workload(&msg);
    let ports = "          ports:\n            - {containerPort: 8080}\n";
    let (_, msg) = refused(&deployment("", ports), &Options::default());
    assert!(msg.contains("\"app\" uses port 8080"), "{msg}");
}

#[test]
fn an_opt_in_value_other_than_true_or_false_is_refused() {
    let input = deployment("", "          ports: [{containerPort: 3000}]\n").replace("\"true\"", "yes-please");
    let (err, msg) = refused(&input, &Options::default());
    assert!(matches!(err, InjectError::Workload { problem: Problem::InvalidOptIn(_), .. }), "{err:?}");
    assert_names_the_workload(&msg);
}

#[test]
fn invalid_yaml_is_refused_with_its_document_index() {
    let input = "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: Deployment\nmetadata: {name: b\n";
    let (err, msg) = refused(input, &Options::default());
    assert!(matches!(err, InjectError::Yaml { index: 2, .. }), "{err:?}");
    assert!(msg.starts_with("document 2: invalid YAML"), "{msg}");
}

#[test]
fn a_workload_that_did_not_opt_in_is_never_checked() {
    let input = deployment("", TWO_PORTS).replace("jwtgate.io/inject: \"true\"", "unrelated: x");
    let out = inject::inject(&input, &Options::default()).expect("not checked, so not refused");
    assert!(!out.contains("jwtgate"), "not injected: {out}");
    let all = inject::inject(&input, &Options { all: true, ..Options::default() });
    assert!(matches!(all, Err(InjectError::Workload { problem: Problem::AmbiguousPort(_), .. })), "--all checks it");
}
