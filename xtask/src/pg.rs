//! Finding a PostgreSQL server for the tests, or starting a throwaway one.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub const URL_ENV: &str = "EMBER_TEST_DATABASE_URL";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A PostgreSQL server the tests can use. Dropping it stops the throwaway cluster, if any.
pub struct Postgres {
    pub url: String,
    /// Where the server came from, for messages.
    pub source: String,
    cluster: Option<TempCluster>,
}

impl Postgres {
    /// Stops the throwaway cluster now (if there is one), reporting errors.
    pub fn shutdown(mut self) {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
    }
}

/// Finds PostgreSQL: `$EMBER_TEST_DATABASE_URL`, else a server answering on
/// 127.0.0.1:5432, else a throwaway cluster started here. With `force_temp`, always starts
/// a throwaway cluster.
pub fn obtain(force_temp: bool) -> Result<Postgres> {
    let mut tried = Vec::new();
    if !force_temp {
        if let Some(url) = std::env::var(URL_ENV).ok().filter(|v| !v.is_empty()) {
            return Ok(Postgres {
                url,
                source: format!("from ${URL_ENV}"),
                cluster: None,
            });
        }
        tried.push(format!("${URL_ENV} is not set"));
        match probe_default() {
            Ok(how) => {
                return Ok(Postgres {
                    url: DEFAULT_URL.to_string(),
                    source: how,
                    cluster: None,
                });
            }
            Err(why) => tried.push(why),
        }
    }
    match TempCluster::start() {
        Ok(cluster) => Ok(Postgres {
            url: cluster.url(),
            source: format!("throwaway cluster in {}", cluster.dir.display()),
            cluster: Some(cluster),
        }),
        Err(err) => {
            tried.push(format!("could not start a throwaway cluster: {err:#}"));
            let mut msg = String::from("no PostgreSQL available for the tests:\n");
            for t in &tried {
                msg.push_str(&format!("  - {t}\n"));
            }
            msg.push_str(
                "Fix: set EMBER_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB, run a server on \
                 127.0.0.1:5432 that trusts user `postgres`, or install PostgreSQL (initdb and \
                 pg_ctl, e.g. `apt-get install postgresql`).",
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                msg.push_str(
                    "\nCI=true: PostgreSQL tests are never skipped in CI, so this run fails.",
                );
            } else {
                msg.push_str("\nThe PostgreSQL tests are not skipped, so this run fails.");
            }
            bail!(msg)
        }
    }
}

/// Checks 127.0.0.1:5432: a TCP connect, then `psql ... -c 'select 1'` if psql is installed.
fn probe_default() -> Result<String, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT));
    if let Err(err) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        return Err(format!("nothing answers on {addr} ({err})"));
    }
    match psql_select_1(DEFAULT_URL) {
        None => Ok(format!(
            "{addr} accepts TCP connections (psql not installed)"
        )),
        Some(Ok(())) => Ok(format!("{addr} answered `select 1`")),
        Some(Err(err)) => Err(format!("{addr} accepts TCP but {err}")),
    }
}

/// Runs `psql URL -c 'select 1'`; None when psql is not installed.
fn psql_select_1(url: &str) -> Option<Result<(), String>> {
    let psql = find_in_path("psql")?;
    let out = Command::new(&psql)
        .args(["-X", "-q", "-w", "-At", "-c", "select 1", url])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output();
    Some(match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`psql {url} -c 'select 1'` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!("running {}: {err}", psql.display())),
    })
}

/// A PostgreSQL cluster in a temporary folder, stopped and deleted on drop.
struct TempCluster {
    dir: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    /// The user the server runs as, when we are root (initdb refuses to run as root).
    run_as: Option<String>,
    started: bool,
    /// Set once cleanup has been attempted, so it runs at most once.
    cleaned_up: bool,
}

impl TempCluster {
    fn start() -> Result<TempCluster> {
        let (initdb, pg_ctl) = find_pg_bins()
            .context("initdb/pg_ctl not found in PATH or /usr/lib/postgresql/*/bin")?;
        let run_as = if effective_uid()? == 0 {
            Some("postgres".to_string())
        } else {
            None
        };
        let dir = make_temp_dir()?;
        // From here on, dropping `cluster` deletes the folder (and stops the server).
        let mut cluster = TempCluster {
            dir,
            port: 0,
            pg_ctl,
            run_as,
            started: false,
            cleaned_up: false,
        };
        if let Some(user) = &cluster.run_as {
            let (uid, gid) = user_ids(user).with_context(|| {
                format!("running as root, and initdb must run as user `{user}`")
            })?;
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to {user}", cluster.dir.display()))?;
        }
        let data = cluster.dir.join("data");
        eprintln!(
            "xtask: starting a throwaway PostgreSQL cluster in {} ({})",
            cluster.dir.display(),
            initdb.display()
        );
        let mut initdb_args: Vec<OsString> = vec!["-D".into(), data.clone().into()];
        initdb_args.extend(
            [
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
            .map(OsString::from),
        );
        cluster.run_logged(&initdb, &initdb_args, "initdb.log")?;

        cluster.port = free_port()?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -F",
            cluster.port,
            sh_quote(cluster.dir.as_os_str())
        );
        let start_args: Vec<OsString> = vec![
            "-D".into(),
            data.into(),
            "-l".into(),
            cluster.dir.join("postgres.log").into(),
            "-w".into(),
            "-t".into(),
            "60".into(),
            "-o".into(),
            options.into(),
            "start".into(),
        ];
        // Marked started before the attempt, so a half-started server is stopped too.
        cluster.started = true;
        let pg_ctl = cluster.pg_ctl.clone();
        cluster
            .run_logged(&pg_ctl, &start_args, "pg_ctl-start.log")
            .map_err(|e| e.context(cluster.server_log_tail()))?;
        wait_for_tcp(cluster.port, Duration::from_secs(30))?;
        if let Some(Err(err)) = psql_select_1(&cluster.url()) {
            bail!("the throwaway PostgreSQL does not answer: {err}");
        }
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A command running `program` as `run_as` when set.
    fn command(&self, program: &Path, args: &[OsString]) -> Command {
        let mut cmd = match &self.run_as {
            None => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            Some(user) => {
                if let Some(runuser) = find_in_path("runuser") {
                    let mut cmd = Command::new(runuser);
                    cmd.args(["-u", user, "--"]).arg(program).args(args);
                    cmd
                } else {
                    let mut line = sh_quote(program.as_os_str());
                    for arg in args {
                        line.push(' ');
                        line.push_str(&sh_quote(arg));
                    }
                    let mut cmd = Command::new("su");
                    cmd.args([user, "-s", "/bin/sh", "-c", &line]);
                    cmd
                }
            }
        };
        // The server user may not be able to enter our working directory.
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    /// Runs a command with its output going to `<dir>/<log_name>`, shown on failure.
    fn run_logged(&self, program: &Path, args: &[OsString], log_name: &str) -> Result<()> {
        let log_path = self.dir.join(log_name);
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let status = self
            .command(program, args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {}", program.display()))?;
        if !status.success() {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "{} failed ({status}):\n{}",
                program.display(),
                output.trim_end()
            );
        }
        Ok(())
    }

    fn server_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("server log:\n{tail}")
    }

    /// Stops the server and deletes the folder.
    fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if std::mem::replace(&mut self.cleaned_up, true) {
            return;
        }
        if self.started {
            let data = self.dir.join("data");
            let args: Vec<OsString> = ["-D".into(), data.into_os_string()]
                .into_iter()
                .chain(["-m", "fast", "-w", "-t", "30", "stop"].map(OsString::from))
                .collect();
            let pg_ctl = self.pg_ctl.clone();
            if let Err(err) = self.run_logged(&pg_ctl, &args, "pg_ctl-stop.log") {
                eprintln!(
                    "xtask: warning: could not stop the throwaway PostgreSQL in {}: {err:#}",
                    self.dir.display()
                );
                return; // Keep the folder: the server may still be using it.
            }
        }
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "xtask: warning: could not delete {}: {err}",
                self.dir.display()
            );
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// initdb and pg_ctl: both from PATH, else from the newest /usr/lib/postgresql/<N>/bin.
fn find_pg_bins() -> Option<(PathBuf, PathBuf)> {
    if let (Some(initdb), Some(pg_ctl)) = (find_in_path("initdb"), find_in_path("pg_ctl")) {
        return Some((initdb, pg_ctl));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.into_iter().rev().find_map(|(_, bin)| {
        let initdb = bin.join("initdb");
        let pg_ctl = bin.join("pg_ctl");
        (is_executable(&initdb) && is_executable(&pg_ctl)).then_some((initdb, pg_ctl))
    })
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn effective_uid() -> Result<u32> {
    // The "Uid:" line of /proc/self/status is: real, effective, saved, filesystem.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(euid) = euid {
            return Ok(euid);
        }
    }
    id_of(&["-u"])
}

fn user_ids(user: &str) -> Result<(u32, u32)> {
    Ok((id_of(&["-u", user])?, id_of(&["-g", user])?))
}

fn id_of(args: &[&str]) -> Result<u32> {
    let out = Command::new("id")
        .args(args)
        .output()
        .context("running `id`")?;
    if !out.status.success() {
        bail!(
            "`id {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("parsing the output of `id {}`", args.join(" ")))
}

fn make_temp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("ember-pg-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn wait_for_tcp(port: u16, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the throwaway PostgreSQL did not accept connections on {addr} within {timeout:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Quotes `s` for a POSIX shell.
fn sh_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return s.into_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`, for printing.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(sh_quote(OsStr::new("/tmp/ember-pg-1")), "/tmp/ember-pg-1");
        assert_eq!(sh_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(sh_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(sh_quote(OsStr::new("")), "''");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact(DEFAULT_URL), DEFAULT_URL);
        assert_eq!(
            redact("postgres://u:p@ss@h:1/db?x=y"),
            "postgres://u:***@h:1/db?x=y"
        );
        assert_eq!(redact("host=/tmp user=x"), "host=/tmp user=x");
    }
}
