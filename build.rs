//! Stamps the commit into the binary (`jwtgate_build_info{commit}`):
//! `JWTGATE_COMMIT` when the build sets it (the Dockerfile's build
//! argument: an image build has no `.git`), else `git rev-parse`, else
//! nothing (the metric says `unknown`).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=JWTGATE_COMMIT");
    if std::env::var_os("JWTGATE_COMMIT").is_some() {
        return;
    }
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else { return };
    println!("cargo:rustc-env=JWTGATE_COMMIT={commit}");
    // Rebuilt when HEAD moves: the file HEAD names, and HEAD itself.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo:rerun-if-changed={path}");
    }
}
