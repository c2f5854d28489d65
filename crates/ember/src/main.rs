//! `ember`: the command line that wires the platform, storage, domain and HTTP layers
//! into one binary (`serve`, `migrate`, `bench`, `check`, `dataset`, `import`, `export`,
//! `bench-search`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ember_api::{ApiSettings, AppState};
use ember_platform::http_client::HttpClient;
use ember_platform::logging::LogSettings;
use ember_platform::{Lifecycle, ServeConfig};
use ember_repo::{Limits, Repo};
use ember_store::{StoreError, StoreOptions};

/// mimalloc spends less time in the allocator than glibc malloc under load
/// (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Ember: a FHIR R4 server for telemedicine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FHIR API.
    // Boxed: the settings are much larger than the other commands' arguments.
    Serve(Box<ServeConfig>),
    /// Apply database migrations and exit (safe to run from several pods at once).
    Migrate(MigrateArgs),
    /// Drive a FHIR server with a CRUD workload and compare against HTTP and storage ceilings.
    Bench(ember_bench::BenchArgs),
    /// Smoke-test a live deployment: metadata, a CRUD round trip, search, CDS Hooks discovery.
    Check(ember_bench::check::CheckArgs),
    /// Load a deterministic telemonitoring data set (patients, care plans, thresholds,
    /// measurements) into a FHIR server through transaction Bundles.
    Dataset(ember_bench::dataset::DatasetArgs),
    /// Load NDJSON files, transaction or batch Bundles and folders of them into a FHIR
    /// server (resumable; rejected entries go to a rejects file). Exits 1 when some
    /// resources were rejected, 2 on a usage or connection error.
    Import(ember_bench::import::ImportArgs),
    /// Fetch a Bulk Data export (system, Patient or Group level) into a folder of NDJSON
    /// files and its manifest, which `ember import` loads back. Ctrl-C cancels the
    /// export on the server. Exits 1 when the server reported errors, 2 when the export
    /// failed or a file does not match the manifest.
    Export(ember_bench::export::ExportArgs),
    /// Measure FHIR search (latency per query kind against its target, every answer
    /// checked) on a server loaded by `ember dataset`.
    BenchSearch(ember_bench::search::SearchBenchArgs),
    /// Measure the delivery latency of rest-hook Subscriptions under a steady rate of
    /// matching writes, with a receiver of its own on a loopback port.
    BenchSubscriptions(ember_bench::subscriptions::SubscriptionBenchArgs),
    /// Serve a token issuer for benchmarks of authenticated requests: prints its URL
    /// and a token, then serves discovery and its JWKS until stopped.
    BenchIssuer(ember_bench::issuer::IssuerArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// `postgres://…` or `sqlite://path`.
    #[arg(
        long,
        env = "EMBER_DATABASE_URL",
        default_value = "sqlite://ember-data/ember.db",
        hide_env_values = true
    )]
    database_url: String,
}

fn main() -> ExitCode {
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = ember_platform::config::check_env(&ember_platform::config::known_env(&command))
    {
        eprintln!("ember: {e}");
        return ExitCode::from(2);
    }
    if let (Command::Serve(config), Some(("serve", serve_matches)), Some(serve)) = (
        &cli.command,
        matches.subcommand(),
        command.find_subcommand("serve"),
    ) {
        if config.print_config {
            print!("{}", ember_platform::config::describe(serve, serve_matches));
            return ExitCode::SUCCESS;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ember: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => serve(*config).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Bench(args) => ember_bench::run(args).await,
            Command::Check(args) => match ember_bench::check::run(args).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("the smoke test failed")),
                Err(e) => Err(e),
            },
            Command::Dataset(args) => ember_bench::dataset::run(args).await,
            Command::Import(args) => finished(ember_bench::import::run(args).await.map(|s| {
                (s.failed() > 0).then(|| {
                    format!(
                        "{} resource(s) were rejected, see {}",
                        s.failed(),
                        s.rejects_path.display()
                    )
                })
            })),
            Command::Export(args) => finished(ember_bench::export::run(args).await.map(|s| {
                (s.errors.files > 0).then(|| {
                    format!(
                        "the server reported errors: {} OperationOutcome(s) in {}",
                        s.errors.resources,
                        s.out.join("error").display()
                    )
                })
            })),
            Command::BenchSearch(args) => ember_bench::search::run(args).await,
            Command::BenchSubscriptions(args) => ember_bench::subscriptions::run(args).await,
            Command::BenchIssuer(args) => ember_bench::issuer::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ember stopped");
            eprintln!("ember: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The result of a command that moves data: exit status 0 when it is done, 1 when it
/// finished with a problem to report, 2 (at once) when it failed.
fn finished(result: anyhow::Result<Option<String>>) -> anyhow::Result<()> {
    match result {
        Ok(None) => Ok(()),
        Ok(Some(problem)) => Err(anyhow::anyhow!(problem)),
        Err(e) => {
            eprintln!("ember: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    ember_platform::logging::init(&LogSettings {
        filter: "info".into(),
        app: "ember".into(),
        phi: false,
    });
    let options = StoreOptions {
        url: args.database_url,
        pool_size: 1,
        acquire_timeout: Duration::from_secs(30),
    };
    let applied = ember_store::migrate(&options).await?;
    tracing::info!(applied, "migrations done");
    Ok(())
}

/// Applies the start-up rule of authentication (see `ember_auth::settings`): the
/// verifier when tokens are checked, `None` when Ember runs open, an error when it must
/// not start.
fn auth_verifier(config: &ServeConfig) -> anyhow::Result<Option<Arc<ember_auth::Verifier>>> {
    use ember_auth::settings::{Input, posture};
    let input = Input {
        mode: config.auth.as_deref(),
        issuers: &config.auth_issuers,
        audience: config.auth_audience.as_deref(),
        public_fhir_base: config
            .public_base_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty()),
        listen: Some(config.listen),
        leeway: Duration::from_secs(config.auth_leeway_seconds),
        claims: &config.auth_claims,
        introspection_url: config.auth_introspection_url.as_deref(),
        introspection_client_id: config.auth_introspection_client_id.as_deref(),
        introspection_client_secret: config.auth_introspection_client_secret.as_deref(),
    };
    match posture(&input)? {
        ember_auth::Posture::Enforced(settings) => {
            tracing::info!(
                issuers = settings.issuers.join(","),
                "bearer tokens are required"
            );
            let client = ember_platform::http_client::HttpClient::new(
                &config.app_name,
                Duration::from_secs(5),
            );
            Ok(Some(Arc::new(ember_auth::Verifier::new(settings, client))))
        }
        ember_auth::Posture::OpenOnLoopback => {
            tracing::error!(
                log_type = "alert",
                "no EMBER_AUTH_ISSUERS: Ember runs without authentication, reachable on a loopback address only"
            );
            Ok(None)
        }
        ember_auth::Posture::Disabled => {
            tracing::error!(
                log_type = "alert",
                "EMBER_AUTH=disabled: Ember runs without authentication; anyone who reaches it can read and change every record"
            );
            Ok(None)
        }
    }
}

/// Who may call the CDS services: the clients of `EMBER_CDS_CLIENTS`, or, with none,
/// anyone on a loopback listen address and no one elsewhere.
fn cds_trust(config: &ServeConfig, client: &HttpClient) -> anyhow::Result<ember_api::CdsTrust> {
    let clients = ember_auth::settings::cds_clients(&config.cds_clients)?;
    if !clients.is_empty() {
        let issuers: Vec<&str> = clients.iter().map(|c| c.issuer.as_str()).collect();
        tracing::info!(
            clients = issuers.join(","),
            "CDS Hooks calls need a client JWT"
        );
        let verifier = ember_auth::CdsVerifier::new(clients, client.clone());
        return Ok(ember_api::CdsTrust::Clients(Arc::new(verifier)));
    }
    if config.listen.ip().is_loopback() {
        return Ok(ember_api::CdsTrust::Loopback);
    }
    tracing::warn!("no EMBER_CDS_CLIENTS: the CDS services refuse every call on a network address");
    Ok(ember_api::CdsTrust::Closed)
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let started_at = Instant::now();
    ember_platform::logging::init(&LogSettings {
        filter: config.log.clone(),
        app: config.app_name.clone(),
        phi: config.log_phi,
    });
    if config.log_phi {
        tracing::warn!("EMBER_LOG_PHI is on: personal data may appear in the logs");
    }
    let public_url = config.public_url().map_err(anyhow::Error::msg)?;
    let auth = auth_verifier(&config)?;
    let client = HttpClient::new(&config.app_name, Duration::from_secs(5));
    let cds = cds_trust(&config, &client)?;
    let mut signals = ember_platform::shutdown::Signals::install()
        .context("cannot listen for termination signals")?;
    let lifecycle = Lifecycle::new();
    let store = open_store(&config, &mut signals).await?;
    let limits = Limits {
        max_json_depth: config.max_json_depth,
        max_bundle_entries: config.max_bundle_entries,
        max_count: config.max_count,
        max_conditional_delete: config.max_conditional_delete,
        max_expansion: config.max_expansion as usize,
        max_search_codes: (config.max_expansion as usize / 10).max(100),
        job_lease: Duration::from_secs(config.job_lease_seconds),
        job_max_attempts: config.job_max_attempts,
        job_retry_base: Duration::from_millis(config.job_retry_base_ms),
        job_concurrency: config.job_concurrency as usize,
        export_expiry: Duration::from_secs(config.export_expiry_seconds),
        export_file_resources: config.export_file_resources,
        validation: config
            .validation
            .parse()
            .map_err(|e| anyhow::anyhow!("EMBER_VALIDATION: {e}"))?,
        validate_profiles: config.validate_profiles,
        ..Limits::default()
    };
    lifecycle.set_database_ok(true);
    let probe_store = store.clone();
    lifecycle.watch_database(Duration::from_millis(500), move || {
        let store = probe_store.clone();
        async move {
            matches!(
                tokio::time::timeout(Duration::from_secs(1), store.ping()).await,
                Ok(Ok(()))
            )
        }
    });
    let telemonitoring = ember_telemed::Settings {
        coexistence_tag: config.coexistence_tag().map_err(anyhow::Error::msg)?,
        missing_check: (config.missing_check_seconds > 0)
            .then(|| Duration::from_secs(config.missing_check_seconds)),
    };
    let metrics: Arc<ember_platform::metrics::Metrics> = Default::default();
    let repo = ember_telemed::install(Repo::new(store, limits), telemonitoring);
    let (repo, subscriptions) =
        ember_subscriptions::install(repo, client.clone(), Arc::clone(&metrics));
    // Run-time SearchParameters are searchable from the first request on.
    let loaded = repo
        .load_search_params()
        .await
        .context("cannot load the stored SearchParameters")?;
    tracing::info!(search_params = loaded, "run-time search parameters loaded");
    let background = repo.start_background();
    let active = subscriptions
        .start(&repo)
        .await
        .context("cannot load the active Subscriptions")?;
    tracing::info!(subscriptions = active, "active subscriptions loaded");
    let audit = match config.audit.as_str() {
        "log" => ember_api::Audit::Log,
        "fhir" => ember_api::Audit::Fhir(ember_repo::audit::AuditSink::start(repo.clone())),
        _ => ember_api::Audit::Off,
    };
    let state = AppState {
        repo,
        lifecycle: lifecycle.clone(),
        metrics,
        spans: config
            .opentelemetry_collector_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|url| {
                ember_platform::otlp::SpanExporter::start(url, &config.app_name, client.clone())
            }),
        settings: Arc::new(ApiSettings {
            base_path: config.normalized_base_path(),
            public_url,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout(),
            liveness_path: config.liveness_path.clone(),
            readiness_path: config.readiness_path.clone(),
            cors_origins: config
                .cors_origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            kv_max_bytes: config.kv_max_bytes as usize,
        }),
        auth,
        audit,
        cds,
        client,
        subscriptions,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    lifecycle.mark_started();
    tracing::info!(
        listen = %local,
        startup_ms = started_at.elapsed().as_millis() as u64,
        "ember is ready"
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = ember_api::service(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(async move { server.await });

    tokio::select! {
        result = &mut server => {
            background.stop(Duration::ZERO).await;
            return Ok(result??);
        }
        () = signals.recv() => {}
    }
    // Draining: readiness fails at once while requests are still served, then the
    // listener closes and requests in flight finish, all within the grace period.
    let deadline = Instant::now() + config.shutdown_grace();
    lifecycle.mark_draining();
    tracing::info!(
        delay_ms = config.shutdown_delay_ms,
        "shutdown requested; draining"
    );
    tokio::select! {
        () = tokio::time::sleep(config.shutdown_delay().min(config.shutdown_grace())) => {}
        () = signals.recv() => return Ok(()),
    }
    let _ = stop_tx.send(());
    // Background jobs go back to the queue while the last requests finish.
    let background =
        tokio::spawn(background.stop(deadline.saturating_duration_since(Instant::now())));
    tokio::select! {
        result = tokio::time::timeout_at(deadline.into(), &mut server) => match result {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!("requests still in flight at the end of the grace period"),
        },
        () = signals.recv() => return Ok(()),
    }
    tokio::select! {
        _ = background => {}
        () = signals.recv() => return Ok(()),
    }
    tracing::info!("ember stopped");
    Ok(())
}

/// Opens the store, waiting for the database while it is unreachable.
async fn open_store(
    config: &ServeConfig,
    signals: &mut ember_platform::shutdown::Signals,
) -> anyhow::Result<Arc<dyn ember_store::Store>> {
    let options = StoreOptions {
        url: config.database_url.clone(),
        pool_size: config.db_pool_size,
        acquire_timeout: config.db_acquire_timeout(),
    };
    let mut wait = Duration::from_millis(200);
    loop {
        match ember_store::open(&options).await {
            Ok(store) => return Ok(store),
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "database unavailable; retrying");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = signals.recv() => anyhow::bail!("stopped while waiting for the database"),
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("cannot open the database"),
        }
    }
}
