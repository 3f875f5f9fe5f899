//! The command line as clap reads it: every subcommand, flag and
//! positional, each with its help text (a unit test walks the tree and
//! fails for one without), and the parsers that turn flag values into
//! what the commands use, so a bad value is refused naming its flag.

use crate::config::LogFormat;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "jwtgate", version, about = "JWT-verifying, revocation-enforcing reverse proxy sidecar")]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    /// Log line format on stderr: `text` (default) or `json` (one object
    /// per line). Wins over the config file's `log_format` (for `run`).
    #[arg(long, global = true, env = "JWTGATE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// `jwtgate explain`'s exit codes, in its help and the README.
const EXPLAIN_EXIT_CODES: &str = "Exit code: 0 forwarded or answered by jwtgate itself, 1 refused \
    (the proxy would answer with an error), 2 the config or the request given is not usable.";

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy with a config file.
    Run {
        /// The config file (YAML); reloaded on SIGHUP and on change.
        #[arg(short, long)]
        config: PathBuf,
        /// Listen address, instead of the file's `listen` (kept on reload):
        /// `ip:port` or `host:port` (resolved once, at start).
        #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
        listen: Option<SocketAddr>,
        /// Default upstream URL, instead of the file's `upstream.url` (kept on
        /// reload); the sidecar injector sets it per workload.
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
    },
    /// Validate a config file, fetch its JWKS URLs and print a summary;
    /// exit 1 when anything is wrong (each problem on stderr).
    Check {
        /// The config file (YAML) to check.
        #[arg(short, long)]
        config: PathBuf,
        /// Do not fetch the issuers' `jwks_url` key sets (a build machine
        /// without network access); the summary says they were not fetched.
        #[arg(long)]
        offline: bool,
    },
    /// Show how a config treats one request: the matching rule and each
    /// decision step (auth, token, requirements, revocation, headers).
    #[command(after_help = EXPLAIN_EXIT_CODES)]
    Explain {
        /// The config file (YAML) whose rules decide.
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
        /// Listen address of the demo proxy: `ip:port` or `host:port`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = listen_addr)]
        listen: SocketAddr,
    },
    /// Revoke a token, a jti, a subject or a session through a running
    /// jwtgate's admin API.
    Revoke(super::revoke::RevokeArgs),
    /// Serve the tiny built-in upstream (for demos and benchmarks).
    Upstream {
        /// Listen address: `ip:port` or `host:port`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000", value_parser = listen_addr)]
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
        /// Listen address of the webhook: `ip:port` or `host:port`.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443", value_parser = listen_addr)]
        listen: SocketAddr,
        /// The webhook's TLS certificate chain (PEM), as the API server's
        /// webhook configuration trusts it.
        #[arg(long, value_name = "FILE")]
        tls_cert: PathBuf,
        /// The private key of --tls-cert (PEM).
        #[arg(long, value_name = "FILE")]
        tls_key: PathBuf,
        #[command(flatten)]
        sidecar: SidecarArgs,
    },
}

/// What the injected sidecar uses (defaults: docs/sidecar-contract.md).
#[derive(clap::Args)]
pub struct SidecarArgs {
    /// Container image of the injected sidecar.
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
    pub fn options(self, all: bool, services: bool) -> crate::k8s::inject::Options {
        crate::k8s::inject::Options {
            all,
            services,
            image: self.image,
            config_map: self.config_map,
            secret: self.secret,
        }
    }
}

/// A listen address, `ip:port` or `host:port`, resolved now (the process
/// binds one socket). A name with IPv4 and IPv6 addresses (`localhost`)
/// takes the first IPv4 one: clients resolving the name try each address,
/// and IPv4 loopback exists in containers that have no IPv6.
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let resolved: Vec<SocketAddr> = match text.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Err(format!("not an ip:port or host:port address that resolves ({e})")),
    };
    let first_v4 = resolved.iter().find(|a| a.is_ipv4()).or_else(|| resolved.first());
    first_v4.copied().ok_or_else(|| "the host name resolves to no address".to_string())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument below `cmd` that has no help text, as `path: --flag`.
    fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{path}: (no about)"));
            }
            undocumented(sub, &path, missing);
        }
    }

    #[test]
    fn every_flag_and_positional_of_every_subcommand_has_help_text() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        undocumented(&cmd, "jwtgate", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
        // Positive control: the walk reaches subcommand arguments.
        let run = cmd.find_subcommand("run").map(|r| r.get_arguments().count());
        assert!(run.is_some_and(|n| n >= 3), "{run:?}");
    }

    #[test]
    fn listen_addresses_take_host_names_and_ip_literals() {
        assert_eq!(super::listen_addr("127.0.0.1:8080"), Ok(([127, 0, 0, 1], 8080).into()));
        let local = super::listen_addr("localhost:19082").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 19082, "{local}");
        assert!(super::listen_addr("localhost").is_err(), "no port");
        assert!(super::listen_addr("no-such-host.invalid:80").is_err());
    }
}
