//! The `triage` job: judges one submitted Observation or QuestionnaireResponse and
//! stores its follow-up ([`crate::followup`]). The job is enqueued in the commit that
//! stores the submission, and the follow-up is stored in the commit that ends the job.
//! The follow-up's ids derive from the submission's and are created together only when
//! none exists, so even a run whose lease ran out mid-way leaves one result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ember_repo::{JobContext, JobError, JobHandler, Ran, Repo, RepoError};
use ember_store::Job;
use serde_json::{Value, json};

use crate::codes::{FAILED_AUTO_PROCESSING, FOR_ASSESSMENT, INSIDE, OUTSIDE, SNOMED};
use crate::followup::{self, Context};
use crate::zones::{self, Colour, Unjudgeable, array};
use crate::{Settings, TRIAGE, TRIAGE_JOB, questionnaire};

pub(crate) struct Triage {
    pub settings: Arc<Settings>,
    /// Whether this instance has made sure Ember's Device exists.
    pub device: AtomicBool,
}

#[async_trait]
impl JobHandler for Triage {
    fn kind(&self) -> &'static str {
        TRIAGE_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Failed(format!("bad payload: {e}")))?;
        let (Some(res_type), Some(id)) = (payload["type"].as_str(), payload["id"].as_str()) else {
            return Err(JobError::Failed("the payload names no resource".into()));
        };
        let repo = ctx.repo().for_operation(TRIAGE);
        if !self.device.load(Ordering::Relaxed) {
            repo.create_once(vec![followup::device(&self.settings)])
                .await?;
            self.device.store(true, Ordering::Relaxed);
        }
        let resource = parse(&repo.read(res_type, id).await?.body)?;
        let context = context(&repo, &resource).await?;
        let item = format!("{res_type}/{id}");
        let result = match res_type {
            "QuestionnaireResponse" => judge_response(&repo, &resource, item).await?,
            _ => judge_observation(&resource, item),
        };
        let key = format!(
            "{}-{id}",
            if res_type == "Observation" {
                "obs"
            } else {
                "qr"
            }
        );
        let resources = followup::triage(&self.settings, &context, &key, &result);
        let colour = result.colour.map(|c| json!({"colour": c.code()}));
        let ran = ctx.create_once_and_finish(&repo, resources, colour).await?;
        if matches!(ran, Ran::Done(_)) {
            tracing::info!(job = job.id, "triage result already stored");
        }
        Ok(ran)
    }
}

/// The patient, ServiceRequest and care team of a submitted resource.
pub(crate) async fn context(repo: &Repo, resource: &Value) -> Result<Context, RepoError> {
    let patient = resource["subject"]["reference"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let service_request = array(resource, "basedOn")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .find(|r| r.starts_with("ServiceRequest/"))
        .map(str::to_owned);
    let care_team = match &service_request {
        Some(sr) => care_team_of(repo, sr).await?,
        None => None,
    };
    Ok(Context {
        patient,
        service_request,
        care_team,
    })
}

/// The CareTeam of the first CarePlan a ServiceRequest is based on.
pub(crate) async fn care_team_of(
    repo: &Repo,
    service_request: &str,
) -> Result<Option<String>, RepoError> {
    let Some(sr) = read_reference(repo, service_request).await? else {
        return Ok(None);
    };
    for plan in array(&sr, "basedOn")
        .iter()
        .filter_map(|r| r["reference"].as_str())
    {
        if !plan.starts_with("CarePlan/") {
            continue;
        }
        if let Some(plan) = read_reference(repo, plan).await? {
            if let Some(team) = array(&plan, "careTeam")
                .iter()
                .filter_map(|t| t["reference"].as_str())
                .find(|t| t.starts_with("CareTeam/"))
            {
                return Ok(Some(team.to_owned()));
            }
        }
    }
    Ok(None)
}

/// The current version of `Type/id`; `None` when it does not exist or was deleted.
pub(crate) async fn read_reference(
    repo: &Repo,
    reference: &str,
) -> Result<Option<Value>, RepoError> {
    let Some((res_type, id)) = reference.split_once('/') else {
        return Ok(None);
    };
    match repo.read(res_type, id).await {
        Ok(stored) => parse(&stored.body).map(Some),
        Err(
            RepoError::NotFound(_)
            | RepoError::Gone(_)
            | RepoError::UnknownType(_)
            | RepoError::Invalid(_),
        ) => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> Result<Value, RepoError> {
    serde_json::from_str(text)
        .map_err(|e| RepoError::Unprocessable(format!("stored JSON is invalid: {e}")))
}

/// A measurement against the zones copied into its reference ranges.
pub(crate) fn judge_observation(obs: &Value, item: String) -> followup::Result {
    let failed = |e: Unjudgeable| {
        followup::Result::untriaged(
            &item,
            FAILED_AUTO_PROCESSING,
            format!("Triage could not judge the measurement: {e}"),
        )
    };
    let zones = match zones::of_observation(obs) {
        Ok(z) => z,
        Err(e) => return failed(e),
    };
    if zones.is_empty() && obs.get("dataAbsentReason").is_none() {
        return followup::Result::untriaged(
            &item,
            FOR_ASSESSMENT,
            "The measurement has no alarm zones; assess it.".into(),
        );
    }
    let values = match zones::measured(obs) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let judged = match zones::judge(&values, &zones) {
        Ok(j) => j,
        Err(e) => return failed(e),
    };
    let colour = judged
        .iter()
        .map(|j| j.colour)
        .max()
        .unwrap_or(Colour::Green);
    let findings = judged
        .iter()
        .map(|j| {
            let (code, display) = if j.colour == Colour::Green { INSIDE } else { OUTSIDE };
            let a = &j.measured.amount;
            let what = j.measured.component.as_ref().map_or_else(String::new, |(_, c)| format!("component {c}: "));
            json!({
                "itemCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                "basis": format!("{what}{} {} ({})", a.value, a.code, j.colour.code()),
            })
        })
        .collect();
    let when = obs["effectiveDateTime"]
        .as_str()
        .or(obs["effectivePeriod"]["start"].as_str())
        .unwrap_or("an unknown time");
    followup::Result {
        item,
        colour: Some(colour),
        findings,
        category: FOR_ASSESSMENT,
        description: format!(
            "Triage {}: {} measured at {when}",
            colour.code(),
            judged
                .iter()
                .map(|j| format!("{} {}", j.measured.amount.value, j.measured.amount.code))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A questionnaire response against its Questionnaire's answer significance.
async fn judge_response(
    repo: &Repo,
    response: &Value,
    item: String,
) -> Result<followup::Result, RepoError> {
    let failed = |reason: String| {
        followup::Result::untriaged(
            &item,
            FAILED_AUTO_PROCESSING,
            format!("Triage could not judge the answers: {reason}"),
        )
    };
    let canonical = response["questionnaire"].as_str().unwrap_or_default();
    let Some(questionnaire) = questionnaire_of(repo, canonical).await? else {
        return Ok(failed(format!(
            "the Questionnaire {canonical:?} is not known"
        )));
    };
    Ok(match questionnaire::judge(&questionnaire, response) {
        Err(reason) => failed(reason),
        Ok(None) => followup::Result::untriaged(
            &item,
            FOR_ASSESSMENT,
            "The questionnaire defines no answer significance; assess the answers.".into(),
        ),
        Ok(Some(matched)) => {
            let colour = questionnaire::colour(&matched);
            let findings = matched
                .iter()
                .map(|m| {
                    json!({
                        "itemCodeableConcept": {"coding": [{"system": SNOMED, "code": OUTSIDE.0, "display": OUTSIDE.1}]},
                        "basis": format!("{} = {} ({})", m.link_id, m.answer, m.colour.code()),
                    })
                })
                .collect();
            followup::Result {
                item,
                colour: Some(colour),
                findings,
                category: FOR_ASSESSMENT,
                description: if matched.is_empty() {
                    "Triage green: no answer is significant".to_owned()
                } else {
                    format!(
                        "Triage {}: {}",
                        colour.code(),
                        matched
                            .iter()
                            .map(|m| format!("{} = {}", m.link_id, m.answer))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            }
        }
    })
}

/// The Questionnaire a response names: `Questionnaire/id`, or a canonical URL
/// (`|version` honoured) of a stored one.
pub(crate) async fn questionnaire_of(
    repo: &Repo,
    canonical: &str,
) -> Result<Option<Value>, RepoError> {
    if canonical.is_empty() {
        return Ok(None);
    }
    if let Some(id) = canonical.strip_prefix("Questionnaire/") {
        return read_reference(repo, &format!("Questionnaire/{id}")).await;
    }
    let (url, version) = match canonical.split_once('|') {
        Some((u, v)) => (u, Some(v)),
        None => (canonical, None),
    };
    let mut query = vec![("url".to_owned(), url.to_owned())];
    if let Some(v) = version {
        query.push(("version".to_owned(), v.to_owned()));
    }
    query.push(("_sort".to_owned(), "-_lastUpdated".to_owned()));
    query.push(("_count".to_owned(), "1".to_owned()));
    let found = repo.find("Questionnaire", &query).await?;
    Ok(found.into_iter().next())
}
