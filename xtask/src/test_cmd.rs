//! `cargo xtask test`: the project's single test command.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::{gen_defs, pg};

#[derive(Default)]
pub struct TestOpts {
    /// Set up PostgreSQL and check generated files, but only print the test commands.
    pub dry_run: bool,
    /// Always start a throwaway PostgreSQL cluster.
    pub temp_pg: bool,
    /// Arguments after `--`, passed to the test runner.
    pub runner_args: Vec<OsString>,
}

pub fn run(root: &Path, opts: &TestOpts) -> Result<ExitCode> {
    // Installed before a throwaway cluster may start, so that Ctrl-C or SIGTERM still lets
    // us stop it and delete its folder.
    signals::install();

    println!("xtask: looking for PostgreSQL");
    let pg = pg::obtain(opts.temp_pg)?;
    println!("xtask: postgres at {} ({})", pg::redact(&pg.url), pg.source);
    let result = run_steps(root, opts, &pg.url);
    pg.shutdown();
    if signals::interrupted() {
        eprintln!("xtask: interrupted");
        return Ok(ExitCode::from(130));
    }
    result
}

fn run_steps(root: &Path, opts: &TestOpts, db_url: &str) -> Result<ExitCode> {
    println!("xtask: checking generated files (gen-defs --check)");
    gen_defs::check(root)?;
    // The same package the generator used, for tests that read the R4 examples.
    let package = crate::defs::locate_package(None, root)?;
    println!("xtask: FHIR package at {}", package.display());
    println!("xtask: checking the deployment kit (deploy/check_kit.py)");
    let kit = Command::new("python3")
        .arg(root.join("deploy/check_kit.py"))
        .status()
        .context("running python3 deploy/check_kit.py (python3 is needed for this check)")?;
    if !kit.success() {
        anyhow::bail!(
            "the deployment kit disagrees with the binary's settings (deploy/check_kit.py)"
        );
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let has_nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());

    let mut commands: Vec<Vec<OsString>> = Vec::new();
    if has_nextest {
        // nextest does not run doctests. They run first so that nextest's summary is the
        // last thing printed (CI reads the runner's closing lines). Runner arguments are
        // nextest's, so they are not passed to this run.
        commands.push(args(
            &["test", "--workspace", "--doc", "--no-fail-fast"],
            &[],
        ));
        commands.push(args(
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            &opts.runner_args,
        ));
    } else {
        println!("xtask: cargo-nextest not installed; using cargo test");
        // `cargo test` runs the doctests too.
        commands.push(args(
            &["test", "--workspace", "--no-fail-fast"],
            &opts.runner_args,
        ));
    }

    let mut first_failure: Option<u8> = None;
    let mut failed = Vec::new();
    // The fuzz targets first, for a bounded time each, so that the test runner's
    // summary stays the last thing printed.
    let fuzz_seconds = std::env::var("EMBER_FUZZ_SECONDS").unwrap_or_else(|_| "20".into());
    let fuzz = format!("scripts/fuzz.sh {fuzz_seconds}");
    if opts.dry_run {
        println!("xtask: dry run, would run: {fuzz}");
    } else if fuzz_seconds == "0" {
        println!("xtask: EMBER_FUZZ_SECONDS=0: the fuzz targets do not run");
    } else {
        println!("xtask: running {fuzz}");
        let mut child = Command::new("bash")
            .arg(root.join("scripts/fuzz.sh"))
            .arg(&fuzz_seconds)
            .current_dir(root)
            .spawn()
            .with_context(|| format!("starting {fuzz}"))?;
        signals::set_child(child.id());
        let status = child.wait();
        signals::set_child(0);
        if !status
            .with_context(|| format!("waiting for {fuzz}"))?
            .success()
        {
            failed.push(fuzz);
            first_failure.get_or_insert(1);
        }
    }
    for command in &commands {
        let shown = display(&command[..]);
        if opts.dry_run {
            println!(
                "xtask: dry run, would run: {shown} (with {}={db_url:?})",
                pg::URL_ENV
            );
            continue;
        }
        if signals::interrupted() {
            break;
        }
        println!("xtask: running {shown}");
        let mut child = Command::new(&cargo)
            .args(command)
            .current_dir(root)
            .env(pg::URL_ENV, db_url)
            .env(crate::defs::PACKAGE_ENV, &package)
            .spawn()
            .with_context(|| format!("starting {shown}"))?;
        signals::set_child(child.id());
        let status = child.wait();
        signals::set_child(0);
        let status = status.with_context(|| format!("waiting for {shown}"))?;
        if !status.success() {
            failed.push(shown);
            let code = status.code().unwrap_or(1).clamp(1, 255) as u8;
            first_failure.get_or_insert(code);
        }
    }
    for shown in &failed {
        eprintln!("xtask: FAILED: {shown}");
    }
    Ok(first_failure.map_or(ExitCode::SUCCESS, ExitCode::from))
}

fn args(fixed: &[&str], extra: &[OsString]) -> Vec<OsString> {
    fixed
        .iter()
        .map(OsString::from)
        .chain(extra.iter().cloned())
        .collect()
}

fn display(args: &[OsString]) -> String {
    let mut out = String::from("cargo");
    for arg in args {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Minimal signal handling without extra crates: SIGINT, SIGTERM and SIGHUP set a flag
/// instead of killing xtask, so the throwaway cluster is always cleaned up. Handlers are
/// reset to the default in child processes by exec, so children behave normally. A
/// terminal's Ctrl-C reaches the whole process group (our child too); SIGTERM and SIGHUP
/// sent to xtask alone are forwarded to the running child.
mod signals {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    const SIGHUP: i32 = 1;
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;

    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    static CHILD: AtomicI32 = AtomicI32::new(0);

    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn kill(pid: i32, sig: i32) -> i32;
    }

    extern "C" fn on_signal(sig: i32) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let child = CHILD.load(Ordering::SeqCst);
        if sig != SIGINT && child > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe {
                kill(child, sig);
            }
        }
    }

    pub fn install() {
        for sig in [SIGHUP, SIGINT, SIGTERM] {
            // SAFETY: the handler only touches atomics and calls kill(2).
            unsafe {
                signal(sig, on_signal);
            }
        }
    }

    pub fn interrupted() -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }

    pub fn set_child(pid: u32) {
        CHILD.store(i32::try_from(pid).unwrap_or(0), Ordering::SeqCst);
    }
}
