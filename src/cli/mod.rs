//! The `jwtgate` subcommands, one module each where they are more than a
//! call: `run` (the proxy), `check` and `explain` (what a config does),
//! `demo`, `revoke` (an admin API client), `upstream`, `inject` and
//! `webhook` (Kubernetes, in [`crate::k8s`]). `main.rs` only parses.

pub mod check;
pub mod demo;
mod error;
pub mod explain;
pub mod revoke;

pub use error::CliError;

use crate::error::Causes;
use crate::{config, runtime, server};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "jwtgate", version, about = "JWT-verifying, revocation-enforcing reverse proxy sidecar")]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy with a config file.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Listen address, instead of the file's `listen` (kept on reload).
        #[arg(long)]
        listen: Option<String>,
        /// Default upstream URL, instead of the file's `upstream.url` (kept on
        /// reload); the sidecar injector sets it per workload.
        #[arg(long)]
        upstream: Option<String>,
    },
    /// Validate a config file and print a summary; non-zero exit on error.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Show how a config treats one request: the matching rule and each
    /// decision step (auth, token, requirements, revocation, headers).
    Explain {
        #[arg(short, long)]
        config: PathBuf,
        /// HTTP method, e.g. GET.
        method: String,
        /// URL or path, e.g. http://api.example.com/orders/1 or /orders/1.
        url: String,
        /// A token to evaluate (or set JWTGATE_EXPLAIN_TOKEN).
        #[arg(long, env = "JWTGATE_EXPLAIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A request header, `Name: value`, for rules that match headers;
        /// repeat for more. An `Authorization: Bearer` header is the token
        /// when --token is not given.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Run on the embedded demo config: memory store, built-in upstream,
    /// fresh HS256 secret; prints a token and curl lines to try.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Revoke a token, a jti, a subject or a session through a running
    /// jwtgate's admin API.
    Revoke(revoke::RevokeArgs),
    /// Serve the tiny built-in upstream (for demos and benchmarks).
    Upstream {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Add the jwtgate sidecar to the opted-in workloads of Kubernetes YAML
    /// (jwtgate.io/inject: "true"); writes every document to stdout.
    Inject {
        /// YAML file, or - for stdin.
        #[arg(short = 'f', long = "filename", default_value = "-")]
        file: PathBuf,
        /// Inject every workload that does not opt out.
        #[arg(long)]
        all: bool,
        /// Point Services that select injected pods at the sidecar.
        #[arg(long)]
        services: bool,
        #[command(flatten)]
        sidecar: SidecarArgs,
    },
    /// Serve the mutating admission webhook (HTTPS, POST /mutate).
    Webhook {
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        #[arg(long)]
        tls_cert: PathBuf,
        #[arg(long)]
        tls_key: PathBuf,
        #[command(flatten)]
        sidecar: SidecarArgs,
    },
}

/// What the injected sidecar uses (defaults: docs/sidecar-contract.md).
#[derive(clap::Args)]
pub struct SidecarArgs {
    #[arg(long, default_value = crate::k8s::inject::DEFAULT_IMAGE)]
    image: String,
    /// ConfigMap with jwtgate.yaml.
    #[arg(long, default_value = "jwtgate-config")]
    config_map: String,
    /// Secret with jwt-secret and admin-token.
    #[arg(long, default_value = "jwtgate-secrets")]
    secret: String,
}

impl SidecarArgs {
    fn options(self, all: bool, services: bool) -> crate::k8s::inject::Options {
        crate::k8s::inject::Options {
            all,
            services,
            image: self.image,
            config_map: self.config_map,
            secret: self.secret,
        }
    }
}

/// The whole program after argument parsing: logging, then the command.
pub fn main(cli: Cli) -> ExitCode {
    // rustls (rediss:// to Redis) uses ring; installed once, before any TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    if let Command::Check { config } = &cli.command {
        return check(config);
    }
    if let Command::Inject { file, all, services, sidecar } = cli.command {
        return inject(&file, sidecar.options(all, services));
    }
    // Tokio's default: one worker per CPU this process may use. A
    // current-thread runtime on one pinned CPU was measured twice
    // (bench/run.sh, alternating A/B; the second time with upstream
    // affinity, 28.2 vs 27.5 CPU us per request) and was not faster, so it
    // is not special-cased.
    let built = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => return fail(Causes(&CliError::Runtime(e)).to_string()),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(Causes(&err).to_string()),
    }
}

pub fn fail(msg: String) -> ExitCode {
    eprintln!("jwtgate: {msg}");
    ExitCode::FAILURE
}

pub fn check(path: &std::path::Path) -> ExitCode {
    match runtime::load_file(path, &config::Overrides::default()) {
        Ok(compiled) => {
            print!("{}", check::summary(path, &compiled));
            let problems = check::problems(&compiled.runtime);
            for problem in &problems {
                eprintln!("jwtgate: {}: {problem}", path.display());
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => fail(err.to_string()),
    }
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
            let overrides = config::Overrides { listen, upstream };
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
        Command::Check { .. } | Command::Inject { .. } => Ok(()),
        Command::Webhook { listen, tls_cert, tls_key, sidecar } => {
            let settings =
                crate::k8s::webhook::Settings { listen, tls_cert, tls_key, options: sidecar.options(false, false) };
            Ok(crate::k8s::webhook::run(settings, server::shutdown_signal()).await?)
        }
        Command::Explain { config, method, url, token, headers } => {
            let runtime = runtime::load_file(&config, &config::Overrides::default())?.runtime;
            runtime.verifier.start_jwks().await;
            let request = explain::Request { method: &method, url: &url, token: token.as_deref(), headers: &headers };
            print!("{}", explain::explain(runtime, &request).await);
            Ok(())
        }
    }
}

/// The stdout lines scripts and tests wait for, once everything is bound:
/// `jwtgate listening on http://ADDR` (or `https://`), then, with an admin
/// listener, `jwtgate admin listening on http://ADDR`.
fn announce(running: &crate::Running) {
    let scheme = if running.tls() { "https" } else { "http" };
    println!("jwtgate listening on {scheme}://{}", running.public_addr());
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
