//! Telemonitoring: patients' home measurements and questionnaire answers, submitted
//! with `$submit-measurement`, triaged against their own thresholds into follow-up
//! work for their care team, and missed measurements reported. Knows nothing of HTTP;
//! takes part in the repository's commits as a rule, a listener and job handlers
//! ([`install`]), and stores and reads through [`ember_repo::Repo`].

pub mod codes;
mod followup;
mod missing;
pub mod questionnaire;
mod rules;
mod submit;
mod triage;
pub mod zones;

use std::sync::Arc;
use std::time::Duration;

use ember_repo::Repo;

pub use submit::submit;

/// The operation name under which submissions are written.
pub const SUBMIT: &str = "submit-measurement";
/// The operation name under which triage and the missing-measurement check write.
pub const TRIAGE: &str = "telemonitoring-triage";
/// The job kind of one submission's triage.
pub const TRIAGE_JOB: &str = "triage";
/// The job kind of the missing-measurement check.
pub const MISSING_JOB: &str = "missing-measurements";

/// Telemonitoring settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `meta.tag` (`system`, `code`) put on every resource telemonitoring creates.
    pub coexistence_tag: Option<(String, String)>,
    /// How often the missing-measurement check runs; `None` never.
    pub missing_check: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            coexistence_tag: None,
            missing_check: Some(Duration::from_secs(3600)),
        }
    }
}

/// `repo` with telemonitoring installed: the immutability rule, the triage outbox,
/// the triage and missing-measurement jobs, and the schedule of the check.
pub fn install(repo: Repo, settings: Settings) -> Repo {
    let settings = Arc::new(settings);
    let repo = repo
        .with_rule(Arc::new(rules::Immutable))
        .with_listener(Arc::new(rules::Submitted))
        .with_handler(Arc::new(triage::Triage {
            settings: Arc::clone(&settings),
            device: Default::default(),
        }))
        .with_handler(Arc::new(missing::Missing {
            settings: Arc::clone(&settings),
        }));
    match settings.missing_check {
        Some(every) => repo.with_schedule(MISSING_JOB, every),
        None => repo,
    }
}
