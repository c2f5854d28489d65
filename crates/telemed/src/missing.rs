//! The `missing-measurements` job: enqueued once per check interval across all
//! instances (its key is the interval, see [`ember_repo::Repo::with_schedule`]), it
//! goes through every active ServiceRequest with an `occurrenceTiming` and, for the
//! last whole timing period (yesterday for a daily measurement, last week for "3
//! times a week") that got fewer measurements than the timing asks for, leaves a
//! routine `MissingMeasurementResolving` Task (focus the ServiceRequest) and a
//! Communication to the care team. Their ids derive from the ServiceRequest and the
//! period, so a gap is reported once however often the check runs.
//!
//! Periods are whole UTC hours, days or weeks (from Monday); a period before the
//! order was authored, or outside the timing's `boundsPeriod`, is not checked.

use std::sync::Arc;

use async_trait::async_trait;
use ember_fhir::instant;
use ember_repo::{JobContext, JobError, JobHandler, Ran, Repo, RepoError};
use ember_store::Job;
use serde_json::{Value, json};

use crate::followup::{self, Context};
use crate::triage::care_team_of;
use crate::{MISSING_JOB, Settings, TRIAGE};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// 1970-01-01 was a Thursday: weeks start 4 days later.
const MONDAY: i64 = 4 * DAY;
/// ServiceRequests read per page.
const PAGE: &str = "200";

pub(crate) struct Missing {
    pub settings: Arc<Settings>,
}

#[async_trait]
impl JobHandler for Missing {
    fn kind(&self) -> &'static str {
        MISSING_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or_default();
        let now = payload["period"].as_i64().unwrap_or_else(instant::now);
        let repo = ctx.repo().for_operation(TRIAGE);
        let query = [
            ("status".to_owned(), "active".to_owned()),
            ("_count".to_owned(), PAGE.to_owned()),
        ];
        let mut checked = 0u64;
        let mut reported = 0u64;
        let mut pages = repo.pages("ServiceRequest", &query).await?;
        while let Some(page) = pages.next().await? {
            for sr in page {
                let Some(gap) = gap(&sr, now) else { continue };
                checked += 1;
                if self.report(&repo, &sr, &gap).await? {
                    reported += 1;
                }
            }
        }
        if reported > 0 {
            tracing::info!(checked, reported, "missing measurements reported");
        }
        Ok(Ran::Done(Some(
            json!({"checked": checked, "reported": reported}),
        )))
    }
}

impl Missing {
    /// Reports the order's gap unless it got its measurements; whether it reported one
    /// now (not before).
    async fn report(&self, repo: &Repo, sr: &Value, gap: &Gap) -> Result<bool, RepoError> {
        let reference = format!("ServiceRequest/{}", sr["id"].as_str().unwrap_or_default());
        let count = repo
            .count_matches(
                "Observation",
                &[
                    ("based-on".to_owned(), reference.clone()),
                    (
                        "date".to_owned(),
                        format!("ge{}", instant::format_instant(gap.start)),
                    ),
                    (
                        "date".to_owned(),
                        format!("lt{}", instant::format_instant(gap.end)),
                    ),
                ],
            )
            .await?;
        if count >= gap.expected {
            return Ok(false);
        }
        let context = Context {
            patient: sr["subject"]["reference"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            care_team: care_team_of(repo, &reference).await?,
            service_request: Some(reference.clone()),
        };
        let what = sr["code"]["coding"][0]["display"]
            .as_str()
            .or(sr["code"]["coding"][0]["code"].as_str())
            .unwrap_or("the ordered measurement");
        let description = format!(
            "{count} of {} expected measurements ({what}) came from {} to {}",
            gap.expected,
            instant::format_instant(gap.start),
            instant::format_instant(gap.end)
        );
        let key = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{reference}@{}", gap.start).as_bytes(),
        );
        let created = repo
            .create_once(followup::missing(
                &self.settings,
                &context,
                &key.to_string(),
                &description,
            ))
            .await?;
        Ok(created.is_some())
    }
}

/// The last whole timing period before `now` that an order covers, and how many
/// measurements it asks for in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gap {
    pub start: i64,
    pub end: i64,
    pub expected: u64,
}

pub(crate) fn gap(sr: &Value, now: i64) -> Option<Gap> {
    let repeat = &sr["occurrenceTiming"]["repeat"];
    let count = repeat["period"]
        .as_f64()
        .filter(|p| *p >= 1.0 && p.fract() == 0.0)? as i64;
    let (unit, origin) = match repeat["periodUnit"].as_str()? {
        "h" => (HOUR, 0),
        "d" => (DAY, 0),
        "wk" => (7 * DAY, MONDAY),
        _ => return None,
    };
    let length = unit.checked_mul(count)?;
    let end = (now - origin).div_euclid(length) * length + origin;
    let start = end - length;
    let expected = repeat["frequency"].as_u64().unwrap_or(1).max(1);
    let from = |v: &Value| v.as_str().and_then(instant::parse_range).map(|(lo, _)| lo);
    let until = |v: &Value| v.as_str().and_then(instant::parse_range).map(|(_, hi)| hi);
    let begun = from(&sr["authoredOn"])
        .into_iter()
        .chain(from(&repeat["boundsPeriod"]["start"]))
        .max();
    if begun.is_some_and(|b| b > start) {
        return None;
    }
    if until(&repeat["boundsPeriod"]["end"]).is_some_and(|e| e < end) {
        return None;
    }
    Some(Gap {
        start,
        end,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        instant::parse_range(s).unwrap().0
    }

    fn order(repeat: Value, authored: &str) -> Value {
        json!({"resourceType": "ServiceRequest", "authoredOn": authored, "occurrenceTiming": {"repeat": repeat}})
    }

    #[test]
    fn a_daily_measurement_is_checked_for_yesterday() {
        let sr = order(
            json!({"frequency": 1, "period": 1, "periodUnit": "d"}),
            "2026-11-01",
        );
        let g = gap(&sr, at("2026-12-06T10:30:00Z")).unwrap();
        assert_eq!(
            (g.start, g.end, g.expected),
            (at("2026-12-05T00:00:00Z"), at("2026-12-06T00:00:00Z"), 1)
        );
        // The same day, later: the same period, so the same report.
        assert_eq!(gap(&sr, at("2026-12-06T23:59:00Z")), Some(g));
    }

    #[test]
    fn three_times_a_week_is_checked_for_last_week() {
        let sr = order(
            json!({"frequency": 3, "period": 1, "periodUnit": "wk"}),
            "2026-01-01",
        );
        // 2026-12-06 is a Sunday: last week began on Monday 2026-11-23.
        let g = gap(&sr, at("2026-12-06T10:00:00Z")).unwrap();
        assert_eq!(
            (g.start, g.end, g.expected),
            (at("2026-11-23T00:00:00Z"), at("2026-11-30T00:00:00Z"), 3)
        );
    }

    #[test]
    fn periods_outside_the_order_are_not_checked() {
        let new = order(
            json!({"frequency": 1, "period": 1, "periodUnit": "d"}),
            "2026-12-05T12:00:00Z",
        );
        assert_eq!(gap(&new, at("2026-12-06T10:00:00Z")), None);
        let ended = order(
            json!({"frequency": 1, "period": 1, "periodUnit": "d", "boundsPeriod": {"end": "2026-12-01"}}),
            "2026-01-01",
        );
        assert_eq!(gap(&ended, at("2026-12-06T10:00:00Z")), None);
        let monthly = order(
            json!({"frequency": 1, "period": 1, "periodUnit": "mo"}),
            "2026-01-01",
        );
        assert_eq!(gap(&monthly, at("2026-12-06T10:00:00Z")), None);
        assert_eq!(gap(&json!({"resourceType": "ServiceRequest"}), 0), None);
    }
}
