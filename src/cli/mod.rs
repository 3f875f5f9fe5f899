//! The `jwtgate` subcommands, one module each where they are more than a
//! call: `run` (the proxy), `check` and `explain` (what a config does),
//! `demo`, `revoke` (an admin API client), `upstream`, `inject` and
//! `webhook` (Kubernetes, in [`crate::k8s`]). The arguments are in `args`,
//! the log subscriber in `logging`; `main.rs` only parses.

mod args;
pub mod check;
pub mod demo;
mod error;
pub mod explain;
mod logging;
pub mod revoke;
mod spelling;

pub use args::{Cli, Command, SidecarArgs};
pub use error::CliError;

use crate::error::Causes;
use crate::{config, runtime, server};
use std::net::SocketAddr;
use std::process::ExitCode;

/// The whole program after argument parsing: logging, then the command.
pub fn main(cli: Cli) -> ExitCode {
    // rustls (rediss:// to Redis) uses ring; installed once, before any TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    logging::install(&cli.log, log_format(&cli));
    if let Command::Inject { file, all, services, sidecar } = cli.command {
        return inject(&file, sidecar.options(all, services));
    }
    // Tokio's default: one worker per CPU this process may use. A
    // current-thread runtime on one pinned CPU was measured twice
    // (bench/run.sh, alternating A/B; the second time with upstream
    // affinity, 28.2 vs 27.5 CPU us per request) and was not faster, so it
    // is not special-cased.
    let built = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match built {
        Ok(rt) => rt.block_on(dispatch(cli.command)),
        Err(e) => fail(Causes(&CliError::Runtime(e)).to_string()),
    }
}

/// `--log-format` (or its environment variable), else the `run` config
/// file's `log_format`, else text.
fn log_format(cli: &Cli) -> config::LogFormat {
    let from_file = || match &cli.command {
        Command::Run { config, .. } => logging::file_format(config),
        _ => None,
    };
    cli.log_format.or_else(from_file).unwrap_or_default()
}

/// The commands whose exit code says more than success or failure, and
/// the rest through [`run`].
async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Check { config, offline } => check(&config, offline).await,
        Command::Explain { config, method, url, token, headers } => {
            let request = explain::Request { method: &method, url: &url, token: token.as_deref(), headers: &headers };
            explain_command(&config, &request).await
        }
        command => match run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(Causes(&err).to_string()),
        },
    }
}

pub fn fail(msg: String) -> ExitCode {
    eprintln!("jwtgate: {msg}");
    ExitCode::FAILURE
}

/// `jwtgate check`: exit 0 only when the summary's first line says `ok`;
/// each problem on stderr, `jwtgate: FILE: problem`.
pub async fn check(path: &std::path::Path, offline: bool) -> ExitCode {
    let compiled = match runtime::load_file(path, &config::Overrides::default()) {
        Ok(compiled) => compiled,
        Err(err) => return fail(err.to_string()),
    };
    let checked = check::check(path, &compiled, offline).await;
    print!("{}", checked.summary);
    for problem in &checked.problems {
        eprintln!("jwtgate: {}: {problem}", path.display());
    }
    if checked.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `jwtgate explain`: the exit code is the verdict's (see
/// [`explain::Verdict::exit_code`]); a config that does not load is 2.
async fn explain_command(path: &std::path::Path, request: &explain::Request<'_>) -> ExitCode {
    let runtime = match runtime::load_file(path, &config::Overrides::default()) {
        Ok(compiled) => compiled.runtime,
        Err(err) => {
            eprintln!("jwtgate: {err}");
            return ExitCode::from(explain::Verdict::Unusable.exit_code());
        }
    };
    runtime.verifier.start_jwks().await;
    let (text, verdict) = explain::explain(runtime, request).await;
    print!("{text}");
    ExitCode::from(verdict.exit_code())
}

pub fn inject(file: &std::path::Path, options: crate::k8s::inject::Options) -> ExitCode {
    let input = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    };
    let input = match input {
        Ok(text) => text,
        Err(e) => return fail(format!("cannot read {}: {e}", file.display())),
    };
    match crate::k8s::inject::inject(&input, &options) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

pub async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Run { config, listen, upstream } => {
            let overrides = config::Overrides { listen: listen.map(|a| a.to_string()), upstream };
            let config = server::Config::from_file(&config, overrides).await?;
            let running = crate::start(config, server::shutdown_signal()).await?;
            announce(&running);
            running.stopped().await;
            Ok(())
        }
        Command::Revoke(args) => Ok(revoke::run(args).await?),
        Command::Demo { listen } => run_demo(listen).await,
        Command::Upstream { listen } => {
            let bound = |source| CliError::Listen { addr: listen, source };
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(bound)?;
            let local = listener.local_addr().map_err(bound)?;
            println!("jwtgate upstream listening on http://{local}");
            tokio::select! { () = demo::serve_upstream(listener) => {}, () = server::shutdown_signal() => {} }
            Ok(())
        }
        Command::Check { .. } | Command::Explain { .. } | Command::Inject { .. } => Ok(()),
        Command::Webhook { listen, tls_cert, tls_key, sidecar } => {
            let settings =
                crate::k8s::webhook::Settings { listen, tls_cert, tls_key, options: sidecar.options(false, false) };
            Ok(crate::k8s::webhook::run(settings, server::shutdown_signal()).await?)
        }
    }
}

/// The stdout lines scripts and tests wait for, once everything is bound:
/// `jwtgate listening on http://ADDR` (or `https://`), then with
/// forward-auth `jwtgate forward-auth listening on http://ADDR` and (gRPC)
/// `jwtgate forward-auth grpc listening on http://ADDR`, and with an admin
/// listener, last, `jwtgate admin listening on http://ADDR`.
fn announce(running: &crate::Running) {
    let scheme = if running.tls() { "https" } else { "http" };
    println!("jwtgate listening on {scheme}://{}", running.public_addr());
    if let Some(authorizer) = running.forward_auth_addr() {
        println!("jwtgate forward-auth listening on http://{authorizer}");
    }
    if let Some(authorizer) = running.forward_auth_grpc_addr() {
        println!("jwtgate forward-auth grpc listening on http://{authorizer}");
    }
    if let Some(admin) = running.admin_addr() {
        println!("jwtgate admin listening on http://{admin}");
    }
}

/// `jwtgate demo`: the embedded config on a built-in upstream, started
/// like `run` (never reloaded).
async fn run_demo(listen: SocketAddr) -> Result<(), CliError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let bound = |source| CliError::Listen { addr: any, source };
    let upstream = tokio::net::TcpListener::bind(any).await.map_err(bound)?;
    let upstream_addr = upstream.local_addr().map_err(bound)?;
    tokio::spawn(demo::serve_upstream(upstream));
    let secret = demo::random_hex(32).into_bytes();
    let file = demo::demo_config(listen, upstream_addr, &secret)?;
    let origin = config::Origin {
        name: "config/demo.yaml (embedded)",
        dir: std::path::Path::new("."),
        text: Some(demo::DEMO_YAML),
    };
    let compiled = runtime::compile(file, &origin)?;
    let running =
        crate::start(server::Config::fixed(compiled), server::shutdown_signal()).await.map_err(|e| match e {
            crate::StartError::Listen { addr, source } => CliError::DemoListen { addr, source },
            e => CliError::Start(e),
        })?;
    announce(&running);
    let token = demo::mint_demo_token(&secret, 3600).map_err(CliError::DemoToken)?;
    println!("{}", demo::instructions(running.public_addr(), &token));
    running.stopped().await;
    Ok(())
}
