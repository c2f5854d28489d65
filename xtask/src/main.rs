//! Ember's build tooling, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! Commands:
//! - `gen-defs [--package PATH] [--check]`: generate Rust data from the FHIR R4 package.
//! - `test [--dry-run] [--temp-pg] [-- ARGS...]`: the project's single test command.

mod defs;
mod gen_defs;
mod gen_model;
mod model;
mod pg;
mod test_cmd;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  gen-defs [--package PATH] [--check]
      Generate crates/fhir/src/generated/* from hl7.fhir.r4.examples@4.0.1.
      --package PATH  use this .tgz (else $EMBER_FHIR_PACKAGE, ../shared/fhir/,
                      ~/.cache/ember/, or `npm pack` into that cache)
      --check         do not write; fail if the files on disk are stale

  test [--dry-run] [--temp-pg] [-- ARGS...]
      Find or start PostgreSQL, export EMBER_TEST_DATABASE_URL, check the
      generated files, run the fuzz targets for EMBER_FUZZ_SECONDS (20) each,
      then the workspace tests (nextest if installed, else cargo test) plus
      doctests. ARGS go to the test runner.
      --dry-run       set up PostgreSQL and check generated files, print the
                      test commands instead of running them
      --temp-pg       always start a throwaway PostgreSQL cluster
";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    }
    let command = args.remove(0);
    let root = workspace_root();
    match command.to_str() {
        Some("gen-defs") => {
            let opts = parse_gen_defs_args(args)?;
            gen_defs::run(&root, opts.package.as_deref(), opts.check)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("test") => {
            let opts = parse_test_args(args)?;
            test_cmd::run(&root, &opts)
        }
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprint!("{USAGE}");
            bail!("unknown command {:?}", command)
        }
    }
}

struct GenDefsArgs {
    package: Option<PathBuf>,
    check: bool,
}

fn parse_gen_defs_args(args: Vec<OsString>) -> Result<GenDefsArgs> {
    let mut out = GenDefsArgs {
        package: None,
        check: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy();
        if s == "--check" {
            out.check = true;
        } else if s == "--package" {
            let value = it.next().context("--package needs a PATH")?;
            out.package = Some(PathBuf::from(value));
        } else if let Some(value) = s.strip_prefix("--package=") {
            out.package = Some(PathBuf::from(value));
        } else {
            bail!("gen-defs: unexpected argument {s:?}\n\n{USAGE}");
        }
    }
    Ok(out)
}

fn parse_test_args(args: Vec<OsString>) -> Result<test_cmd::TestOpts> {
    let mut opts = test_cmd::TestOpts::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--") => {
                opts.runner_args.extend(it.by_ref());
                break;
            }
            Some("--dry-run") => opts.dry_run = true,
            Some("--temp-pg") => opts.temp_pg = true,
            _ => bail!(
                "test: unexpected argument {:?} (pass test-runner arguments after `--`)\n\n{USAGE}",
                arg
            ),
        }
    }
    Ok(opts)
}

/// The workspace root: the parent of this crate's directory.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` for the program it runs, which keeps this right
/// even when a shared `CARGO_TARGET_DIR` holds a binary built from another checkout.
fn workspace_root() -> PathBuf {
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| is_xtask_dir(dir));
    let manifest_dir = runtime.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn is_xtask_dir(dir: &Path) -> bool {
    dir.file_name().is_some_and(|name| name == "xtask") && dir.join("Cargo.toml").is_file()
}
